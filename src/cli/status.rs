//! `relctl status`: every environment the controller tracks.

use aws_config::SdkConfig;
use clap::Args;

use super::Failure;
use crate::{config::Config, store::StateStore};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub project: Option<String>,
}

pub async fn run(config: &Config, sdk: &SdkConfig, args: StatusArgs) -> Result<(), Failure> {
    let state = StateStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.tables.state);
    println!(
        "{:<16} {:<12} {:<38} {:<38} {:<10} {:<26} MESSAGE",
        "PROJECT", "ENVIRONMENT", "DESIRED", "RUNNING", "PHASE", "SINCE"
    );
    for (key, env) in state.list().await? {
        if args.project.as_ref().is_some_and(|p| p != &key.project) {
            continue;
        }
        println!(
            "{:<16} {:<12} {:<38} {:<38} {:<10} {:<26} {}",
            key.project,
            key.environment,
            env.desired
                .map(|d| d.release_id)
                .unwrap_or_else(|| "-".into()),
            env.observed
                .map(|o| o.release_id)
                .unwrap_or_else(|| "-".into()),
            env.phase
                .map(|p| format!("{p:?}").to_lowercase())
                .unwrap_or_else(|| "-".into()),
            env.since.map(|s| s.to_wire()).unwrap_or_else(|| "-".into()),
            env.message.unwrap_or_default()
        );
    }
    Ok(())
}
