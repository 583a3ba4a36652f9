//! End-to-end tests: one binary, one module per area, each test against its own
//! `moto_server` on a free 127.0.0.1 port, through the real SDK clients (and the real
//! `relctl` binary where a test says so). Wire-level stubs in `support/` stand in where
//! moto lacks an API.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

mod approvals;
mod binary;
mod board;
mod burst;
mod calls;
mod cli;
mod cli_commands;
mod cli_look;
mod cli_truths;
mod codepipeline;
mod controller;
mod controls;
mod crash;
mod docs;
mod ecs;
mod ecs_runner;
mod ecs_tags;
mod faults;
mod fuzz;
mod hooks;
mod iam;
mod legacy;
mod limits;
mod migration;
mod notify;
mod observe;
mod pins;
mod promotion;
mod records;
mod replicas;
mod restart;
mod runs;
mod shedding;
mod shown;
mod streams;
mod tables;
mod terminal;
mod terraform;
mod terraform_drift;
mod terraform_plan;
mod terraform_source;
mod unlock;
mod unrecorded;
