//! `relctl deploy RELEASE --env E [--wait]`: append a deployment entry; with `--wait`,
//! follow the status the controller writes until it finishes.

use std::time::Duration;

use clap::Args;

use super::{
    Failure, follow,
    lookup::{self, Aws},
};
use crate::{
    config::Config,
    model::{
        EnvKey, Release, Timestamp,
        record::{Deployment, EnvironmentRef},
    },
    store::ReleaseStore,
};

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
}

pub async fn run(config: &Config, aws: &Aws, args: DeployArgs) -> Result<(), Failure> {
    let store = aws.releases();
    let (table, release) = lookup::find(config, &store, &args.release_id).await?;
    let (entry, index) = request(
        config,
        aws,
        &store,
        &table,
        &release,
        &args.environment,
        &args.description,
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

/// Validates a deployment of `release` to `environment` and appends its entry (an
/// atomic list append: two people deploying at once both land). Returns the entry and
/// its index.
pub(super) async fn request(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    table: &str,
    release: &Release,
    environment: &str,
    description: &str,
) -> Result<(Deployment, usize), Failure> {
    let key = EnvKey::new(&release.project_id, environment);
    let (project, environment) = config.environment(&key)?;
    crate::model::resolve_images(release, project.image_uri_template.as_deref())?;
    crate::model::gate(release, &environment.id, &environment.requires)?;
    let entry = Deployment {
        date_created: Timestamp::from_utc(chrono::Utc::now()),
        description: Some(description.to_owned()),
        environment: EnvironmentRef {
            id: environment.id.clone(),
            name: Some(environment.name.clone()),
        },
        requested_by: Some(aws.caller().await),
        status: None,
        status_message: None,
        status_updated_at: None,
        approved_by: None,
        approved_at: None,
    };
    let index = store
        .append_deployment(table, &release.release_id, &entry)
        .await?;
    eprintln!(
        "requested deployment of release {} to {} ({})",
        release.release_id, environment.id, environment.name
    );
    if environment.protected {
        eprintln!(
            "{} is protected: the deployment waits for `relctl approve {} --env {}`{}",
            environment.id,
            release.release_id,
            environment.id,
            if environment.four_eyes {
                " by someone else"
            } else {
                ""
            }
        );
    }
    Ok((entry, index))
}
