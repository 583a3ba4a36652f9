//! `relctl deploy RELEASE --env E [--wait]`: append a deployment entry; with `--wait`,
//! follow the status the controller writes until it finishes.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use clap::Args;

use super::{Failure, release};
use crate::{
    config::Config,
    model::{
        EnvKey, Release, Status, Timestamp,
        record::{Deployment, EnvironmentRef},
    },
    store::{ReleaseStore, StateStore},
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
    let (entry, index) = request(
        config,
        sdk,
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
    let state = StateStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.tables.state);
    follow(
        &store,
        &state,
        &key,
        &table,
        &release.release_id,
        &entry,
        index,
        args.timeout,
    )
    .await
}

/// Validates a deployment of `release` to `environment` and appends its entry (an
/// atomic list append: two people deploying at once both land). Returns the entry and
/// its index.
pub(super) async fn request(
    config: &Config,
    sdk: &SdkConfig,
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
        requested_by: Some(release::caller(sdk).await),
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

/// Prints each change of status, phase or message until the deployment finishes.
#[allow(clippy::too_many_arguments)]
async fn follow(
    store: &ReleaseStore,
    state: &StateStore,
    key: &EnvKey,
    table: &str,
    release_id: &str,
    entry: &Deployment,
    index: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut last: Option<(Option<Status>, Option<String>, String)> = None;
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
        // The environment's phase, while this deployment is the one being applied.
        let phase = match state.get(key).await {
            Ok(env)
                if env.active.as_ref().is_some_and(|a| {
                    a.release_id == release_id && a.date_created == entry.date_created
                }) =>
            {
                env.phase
                    .map(|p| format!(" [{}]", format!("{p:?}").to_lowercase()))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let seen = (current.status, current.status_message.clone(), phase);
        if last.as_ref() != Some(&seen) {
            eprintln!(
                "[{:>5.1}s] {}{}: {}",
                started.elapsed().as_secs_f64(),
                current.status.map_or("pending", Status::as_str),
                seen.2,
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
