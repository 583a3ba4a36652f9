//! `relctl deploy RELEASE --env E [--wait]`: append a deployment entry; with `--wait`,
//! follow the status the controller writes until it finishes.

use std::time::Duration;

use clap::Args;

use super::{
    Failure, follow,
    lookup::{self, Aws},
    request,
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub release_id: String,
    #[arg(long = "env")]
    pub environment: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Follow the deployment until it succeeds (exit 0) or fails (exit 1).
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Deploy a release that was rolled back in this environment (recorded on the entry).
    #[arg(long)]
    pub force: bool,
    /// Deploy during a freeze or a pause, as a principal the environment's
    /// `break_glass` lists; needs --reason (recorded and notified).
    #[arg(long, requires = "reason")]
    pub break_glass: bool,
    /// Why the glass is broken.
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(config: &Config, aws: &Aws, args: DeployArgs) -> Result<(), Failure> {
    let store = aws.releases();
    let (table, release) = lookup::find(config, &store, &args.release_id).await?;
    let (entry, index) = request::request(
        config,
        aws,
        &store,
        &table,
        &release,
        &args.environment,
        request::Marks {
            description: args.description.clone(),
            force: args.force,
            rollback_of: None,
            break_glass: if args.break_glass {
                args.reason.clone()
            } else {
                None
            },
        },
    )
    .await?;
    if !args.wait {
        return Ok(());
    }
    let key = EnvKey::new(&release.project_id, &args.environment);
    follow::follow(
        config,
        aws,
        &follow::Followed {
            key: &key,
            table: &table,
            release_id: &release.release_id,
            entry: &entry,
            index,
        },
        args.timeout,
    )
    .await
}
