//! `relctl retry --project P --env E`: run the newest intent for an environment again,
//! when it failed, as a new deployment entry of the same release (a new attempt,
//! through every policy again). Refused when the newest intent did not fail — a newer
//! one exists, or it is still going, or it succeeded.

use clap::Args;

use super::{
    Failure, follow,
    lookup::{self, Aws},
    past, request,
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// Retry a release that was rolled back there (recorded on the entry).
    #[arg(long)]
    pub force: bool,
    /// Follow the new attempt until it succeeds (exit 0) or fails (exit 1).
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

pub async fn run(config: &Config, aws: &Aws, args: RetryArgs) -> Result<(), Failure> {
    lookup::project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    config.environment(&key)?;
    let store = aws.releases();
    let past = past::deployments(config, &store, &key, 1).await?;
    let Some((newest, release)) = past.into_iter().next() else {
        return Err(Failure::refused(format!(
            "nothing was deployed to {} yet; `relctl deploy RELEASE --env {}` first",
            args.environment, args.environment
        )));
    };
    if newest.status != "failed" {
        return Err(Failure::refused(format!(
            "the newest deployment to {} is of release {} (requested at {}) and it is {}, not failed: retry runs again only a newest intent that failed; nothing was written",
            args.environment, newest.release_id, newest.date_created, newest.status
        )));
    }
    let (project, _) = config.environment(&key)?;
    let table = config.releases_table(project).to_owned();
    let description = format!(
        "retry of the deployment of {} requested at {} ({})",
        newest.release_id,
        newest.date_created,
        crate::model::text::message(newest.status_message.as_deref().unwrap_or("failed"))
    );
    let (entry, index) = request::request(
        config,
        aws,
        &store,
        &table,
        &release,
        &args.environment,
        request::Marks {
            description,
            force: args.force,
            rollback_of: None,
            break_glass: None,
        },
    )
    .await?;
    out!("{}", release.release_id);
    if !args.wait {
        return Ok(());
    }
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
