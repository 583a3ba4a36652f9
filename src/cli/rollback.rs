//! `relctl rollback --project P --env E [--to RELEASE]`: deploy the release that last
//! succeeded in the environment before the current one (or the one named), as an
//! ordinary deployment whose description says it is a rollback.

use aws_config::SdkConfig;
use clap::Args;

use super::{Failure, deploy, history, release};
use crate::{config::Config, model::EnvKey, store::ReleaseStore};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// Roll back to this release instead of the previous success.
    #[arg(long)]
    pub to: Option<String>,
}

pub async fn run(config: &Config, sdk: &SdkConfig, args: RollbackArgs) -> Result<(), Failure> {
    release::project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    let store = ReleaseStore::new(aws_sdk_dynamodb::Client::new(sdk));
    let past = history::deployments(config, &store, &key, 200).await?;
    let current = past.first().map(|(p, _)| p.release_id.clone());
    let (table, target) = match &args.to {
        Some(id) => release::find(config, &store, id).await?,
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
            release::find(config, &store, &succeeded.0.release_id).await?
        }
    };
    let description = format!(
        "rollback of {} to release {}",
        current.as_deref().unwrap_or("nothing"),
        target.release_id
    );
    deploy::request(
        config,
        sdk,
        &store,
        &table,
        &target,
        &args.environment,
        &description,
    )
    .await?;
    println!("{}", target.release_id);
    Ok(())
}
