//! `relctl status`: every environment the controller tracks.

use aws_config::SdkConfig;
use clap::Args;

use serde::Serialize;

use super::{Failure, Output};
use crate::{config::Config, store::StateStore};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub project: Option<String>,
}

/// One environment in `status --output json`.
#[derive(Debug, Serialize)]
struct Row {
    project: String,
    environment: String,
    desired_release: Option<String>,
    running_release: Option<String>,
    phase: Option<String>,
    status: Option<String>,
    since: Option<String>,
    message: Option<String>,
    drift: Vec<String>,
}

pub async fn run(
    config: &Config,
    sdk: &SdkConfig,
    args: StatusArgs,
    output: Output,
) -> Result<(), Failure> {
    let state = StateStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.tables.state);
    let states = state.list().await?;
    let rows: Vec<Row> = config
        .keys()
        .filter(|key| args.project.as_ref().is_none_or(|p| p == &key.project))
        .map(|key| {
            let env = states
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            Row {
                desired_release: env.desired.map(|d| d.release_id),
                running_release: env.observed.map(|o| o.release_id),
                phase: env.phase.map(|p| format!("{p:?}").to_lowercase()),
                status: env.status.map(|s| s.as_str().to_owned()),
                since: env.since.map(|s| s.to_wire()),
                message: env.message,
                drift: env.drift,
                project: key.project,
                environment: key.environment,
            }
        })
        .collect();
    if output.json(&rows)? {
        return Ok(());
    }
    println!(
        "{:<16} {:<12} {:<38} {:<38} {:<10} {:<26} MESSAGE",
        "PROJECT", "ENVIRONMENT", "DESIRED", "RUNNING", "PHASE", "SINCE"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for row in rows {
        let drift = if row.drift.is_empty() {
            String::new()
        } else {
            format!(" (drift: {})", row.drift.join(", "))
        };
        println!(
            "{:<16} {:<12} {:<38} {:<38} {:<10} {:<26} {}{drift}",
            row.project,
            row.environment,
            dash(row.desired_release),
            dash(row.running_release),
            dash(row.phase),
            dash(row.since),
            row.message.unwrap_or_default()
        );
    }
    Ok(())
}
