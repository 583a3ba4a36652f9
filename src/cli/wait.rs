//! `relctl wait RELEASE --env E`: follow the newest deployment of a release to an
//! environment, whoever requested it, until it finishes (exit codes as `deploy --wait`).

use std::time::Duration;

use clap::Args;

use super::{
    Failure, follow,
    lookup::{self, Aws},
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct WaitArgs {
    pub release_id: String,
    #[arg(long = "env")]
    pub environment: String,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(config: &Config, aws: &Aws, args: WaitArgs) -> Result<(), Failure> {
    let (table, release) = lookup::find(config, &aws.releases(), &args.release_id).await?;
    let key = EnvKey::new(&release.project_id, &args.environment);
    config.environment(&key)?;
    let entry = release
        .deployments
        .iter()
        .filter(|d| d.environment.id == args.environment)
        .max_by_key(|d| d.date_created.at)
        .ok_or_else(|| {
            Failure::refused(format!(
                "release {} has no deployment to {}; `relctl deploy {} --env {}` requests one",
                release.release_id, args.environment, release.release_id, args.environment
            ))
        })?;
    follow::follow(
        config,
        aws,
        &follow::Followed {
            key: &key,
            table: &table,
            release_id: &release.release_id,
            entry,
            index: entry.index,
        },
        args.timeout,
    )
    .await
}
