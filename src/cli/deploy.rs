//! `relctl deploy RELEASE --env E [--wait]`: append a deployment entry; with `--wait`,
//! follow the status the controller writes until it finishes.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use clap::Args;

use super::{Failure, release};
use crate::{
    config::Config,
    model::{
        EnvKey, Status, Timestamp,
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

pub async fn run(config: &Config, sdk: &SdkConfig, args: DeployArgs) -> Result<(), Failure> {
    let store = ReleaseStore::new(aws_sdk_dynamodb::Client::new(sdk));
    let (table, release) = release::find(config, &store, &args.release_id).await?;
    let key = EnvKey::new(&release.project_id, &args.environment);
    let (project, environment) = config.environment(&key)?;
    crate::model::resolve_images(&release, project.image_uri_template.as_deref())?;
    let entry = Deployment {
        date_created: Timestamp::from_utc(chrono::Utc::now()),
        description: Some(args.description.clone()),
        environment: EnvironmentRef {
            id: environment.id.clone(),
            name: Some(environment.name.clone()),
        },
        requested_by: Some(release::caller(sdk).await),
        status: None,
        status_message: None,
        status_updated_at: None,
    };
    let index = store
        .append_deployment(&table, &release.release_id, &entry)
        .await?;
    eprintln!(
        "requested deployment of release {} to {} ({})",
        release.release_id, environment.id, environment.name
    );
    if !args.wait {
        return Ok(());
    }
    follow(
        &store,
        &table,
        &release.release_id,
        &entry,
        index,
        args.timeout,
    )
    .await
}

async fn follow(
    store: &ReleaseStore,
    table: &str,
    release_id: &str,
    entry: &Deployment,
    index: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut last: Option<(Option<Status>, Option<String>)> = None;
    loop {
        let current = store
            .get(table, release_id)
            .await?
            .and_then(|r| {
                r.deployments
                    .get(index)
                    .filter(|d| d.same_intent(entry))
                    .cloned()
                    .or_else(|| r.deployments.into_iter().find(|d| d.same_intent(entry)))
            })
            .ok_or_else(|| Failure::refused("the deployment entry disappeared from the release"))?;
        let seen = (current.status, current.status_message.clone());
        if last.as_ref() != Some(&seen) {
            eprintln!(
                "[{:>5.1}s] {}: {}",
                started.elapsed().as_secs_f64(),
                current.status.map_or("pending", Status::as_str),
                current
                    .status_message
                    .as_deref()
                    .unwrap_or("waiting for the controller")
            );
            last = Some(seen);
        }
        match current.status {
            Some(Status::Succeeded) => return Ok(()),
            Some(status @ (Status::Failed | Status::Superseded)) => {
                return Err(Failure::refused(format!(
                    "deployment {status}: {}",
                    current.status_message.unwrap_or_default()
                )));
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(Failure::refused(format!(
                "gave up waiting after {}; the deployment goes on (see `relctl status`)",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
