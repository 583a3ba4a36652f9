//! # relctl
//!
//! A Kubernetes-style reconciling controller for releases on AWS. Teams record *what*
//! should run *where* as deployment entries on release items in DynamoDB (Wellcome RFC
//! 013's shape); relctl pins the release's images for that environment in SSM and writes
//! the outcome back.
//!
//! # Layout
//!
//! ```text
//!  DynamoDB stream ──▶ watcher ──┐                      ┌──▶ pin: SSM /{p}/images/{env}/{svc},
//!  (hint, fast path)             ├▶ intake ▶ queue ▶ reconcile │      a JSON document, an ECR tag
//!  periodic resync ──────────────┘  (desired    (dedup by  ├──▶ actuator: Terraform, CodePipeline,
//!  (truth: query the table)          pointer)   project+env)│     ECS, Lambda
//!                                                          └──▶ verify, write the outcome
//! ```
//!
//! A reconcile reads the facts, asks [`reconciler::decide`] (pure: no clock, no AWS
//! types) for the next step, carries it out, and asks again; an environment's state is
//! one [`model::state::Activity`] enum, changed only by carrying out steps, written by
//! one writer.
//!
//! From the bottom up (a module imports only those below it):
//! - [`model`]: pure domain (ids, records, intents, the environment's state, `plan`).
//! - [`config`]: figment-layered operator configuration, every problem at once.
//! - [`aws`], [`metrics`], [`aws_metrics`], [`telemetry`]: SDK set-up, rate limits,
//!   error classes; the Prometheus registry.
//! - [`store`]: DynamoDB adapters (releases table, state table, lease, set-up checks).
//! - [`pin`] and [`actuator`]: where desired images are recorded, and what applies them;
//!   [`adapters`] builds both per environment, with clients for its account.
//! - [`watch`]: what a landed deployment is watched by (CloudWatch alarms).
//! - [`notify`]: deployment outcomes told to SNS, EventBridge and webhooks.
//! - [`iam`]: least-privilege policies from the configuration and the calls the
//!   stores, pins and actuators make (`relctl iam-policy`).
//! - [`queue`]: keyed delay queue with per-key backoff.
//! - [`context`]: what one leadership term shares.
//! - [`intake`]: intents taken in (desired pointer, supersede) and the resync.
//! - [`watcher`]: DynamoDB Streams → intake, with checkpoints.
//! - [`reconciler`]: `decide`, the steps that carry it out, the outcome writer.
//! - [`health`] and [`http`]: readiness; `/metrics`, `/healthz`, `/readyz`, the page.
//! - [`controller`]: the daemon: lease, table checks, watchers, dispatch, shutdown.
//! - [`cli`]: the `relctl` commands, one file each.

pub mod actuator;
pub mod adapters;
pub mod aws;
pub mod aws_metrics;
pub mod cli;
pub mod config;
pub mod context;
pub mod controller;
pub mod emf;
pub mod failpoint;
pub mod health;
pub mod http;
pub mod iam;
pub mod intake;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pin;
pub mod queue;
pub mod reconciler;
pub mod runner;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod watcher;
