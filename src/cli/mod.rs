//! The `relctl` command line: one file per subcommand. Exit codes scripts can trust:
//! 0 success, 1 the operation failed or was refused, 2 usage error.

mod controller;
mod deploy;
mod health;
mod release;
mod setup;
mod status;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "relctl",
    version,
    about = "Deploy releases on AWS: a reconciling controller and its CLI",
    after_help = "Exit codes: 0 success; 1 the operation failed or was refused; 2 usage error."
)]
pub struct Cli {
    /// Configuration file (TOML). RELCTL_* environment variables override it.
    #[arg(long, global = true, env = "RELCTL_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller daemon until SIGTERM or SIGINT.
    Controller,
    /// Create the releases and state tables if missing; turn on a missing stream.
    Setup,
    /// Create and inspect releases.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Request a deployment of a release to an environment.
    Deploy(deploy::DeployArgs),
    /// Show every environment: desired and running release, phase, since when.
    Status(status::StatusArgs),
    /// Container health check: exit 0 when the controller's /healthz answers 200.
    Health(health::HealthArgs),
}

/// A failure to report to the person at the terminal, with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::refused(error.to_string())
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let cli = match cli.command {
        Command::Health(args) => return exit(health::run(args).await),
        _ => cli,
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => Arc::new(config),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    crate::telemetry::init(config.log.format);
    let sdk = crate::aws::load(&config).await;
    let result = match cli.command {
        Command::Controller => controller::run(config, &sdk).await,
        Command::Setup => setup::run(&config, &sdk).await,
        Command::Release(command) => release::run(&config, &sdk, command).await,
        Command::Deploy(args) => deploy::run(&config, &sdk, args).await,
        Command::Status(args) => status::run(&config, &sdk, args).await,
        Command::Health(_) => Ok(()),
    };
    exit(result)
}

fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
