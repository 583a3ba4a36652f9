//! `relctl rollback --project P --env E [--to RELEASE]`: deploy the release that last
//! succeeded in the environment before the current one (or the one named), as an
//! ordinary deployment whose description says it is a rollback.

use clap::Args;

use super::{
    Failure, follow,
    lookup::{self, Aws},
    past, request,
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// Roll back to this release instead of the previous success.
    #[arg(long)]
    pub to: Option<String>,
    /// Follow the rollback until it succeeds (exit 0) or fails (exit 1), as `deploy --wait`.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

pub async fn run(config: &Config, aws: &Aws, args: RollbackArgs) -> Result<(), Failure> {
    lookup::project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    let store = aws.releases();
    let past = past::deployments(config, &store, &key, 200).await?;
    let current = past.first().map(|(p, _)| p.release_id.clone());
    let (table, target) = match &args.to {
        Some(id) => lookup::find(config, &store, id).await?,
        None => {
            let succeeded = past
                .iter()
                .filter(|(p, _)| p.status == "succeeded")
                .find(|(p, _)| Some(&p.release_id) != current.as_ref())
                .ok_or_else(|| {
                    Failure::refused(format!(
                        "no earlier release succeeded in {}; name one with --to RELEASE",
                        args.environment
                    ))
                })?;
            lookup::exact(config, &store, &succeeded.0.release_id)
                .await?
                .ok_or_else(|| {
                    Failure::refused(format!(
                        "release {} (the last that succeeded in {}) is no longer in its table; name one with --to RELEASE",
                        succeeded.0.release_id, args.environment
                    ))
                })?
        }
    };
    let description = format!(
        "rollback of {} to release {}",
        current.as_deref().unwrap_or("nothing"),
        target.release_id
    );
    let (entry, index) = request::request(
        config,
        aws,
        &store,
        &table,
        &target,
        &args.environment,
        request::Marks {
            description,
            force: false,
            rollback_of: current.clone().filter(|c| c != &target.release_id),
            break_glass: None,
        },
    )
    .await?;
    out!("{}", target.release_id);
    if !args.wait {
        return Ok(());
    }
    follow::follow(
        config,
        aws,
        &follow::Followed {
            key: &key,
            table: &table,
            release_id: &target.release_id,
            entry: &entry,
            index,
        },
        args.timeout,
    )
    .await
}
