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
//!  DynamoDB stream ──▶ watcher ──┐                      ┌──▶ pin: SSM /{p}/images/{env}/{svc}
//!  (hint, fast path)             ├─▶ queue ─▶ reconcile ┤
//!  periodic resync ──────────────┘   (dedup by          └──▶ verify, write status
//!  (truth: query the table)          project+env)
//! ```
//!
//! - [`model`]: pure domain (ids, records, intents, `plan`); no I/O.
//! - [`config`]: figment-layered operator configuration.
//! - [`store`]: DynamoDB adapters (releases table, state table, set-up).
//! - [`watcher`]: DynamoDB Streams → intents, with checkpoints.
//! - [`queue`]: keyed delay queue with per-key backoff.
//! - [`reconciler`]: intake, resync, reconcile and outcome writing.
//! - [`pin`]: where desired images are recorded (SSM parameters, an SSM JSON document,
//!   an ECR tag).
//! - [`actuator`]: what applies them (commands/Terraform, CodePipeline, ECS, Lambda).
//! - [`adapters`]: builds each environment's pin and actuator for its account.
//! - [`controller`]: wires the above into the daemon, with graceful shutdown.
//! - [`http`] and [`metrics`]: `/metrics`, `/healthz`, `/readyz` and the status page.
//! - [`cli`]: the `relctl` commands.

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
pub mod intake;
pub mod metrics;
pub mod model;
pub mod pin;
pub mod queue;
pub mod reconciler;
pub mod store;
pub mod telemetry;
pub mod watcher;
