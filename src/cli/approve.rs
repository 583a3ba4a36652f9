//! `relctl approve RELEASE --env E`: record the caller's approval on the release's
//! waiting deployment to a `protected` environment; the controller then applies it.

use clap::Args;

use super::{
    Failure,
    lookup::{self, Aws},
};
use crate::{
    config::Config,
    model::{EnvKey, IntentRef, Status, Timestamp},
};

#[derive(Debug, Args)]
pub struct ApproveArgs {
    pub release_id: String,
    #[arg(long = "env")]
    pub environment: String,
}

pub async fn run(config: &Config, aws: &Aws, args: ApproveArgs) -> Result<(), Failure> {
    let store = aws.releases();
    let (table, found) = lookup::find(config, &store, &args.release_id).await?;
    let key = EnvKey::new(&found.project_id, &args.environment);
    let (_, environment) = config.environment(&key)?;
    if !environment.protected {
        return Err(Failure::refused(format!(
            "environment {} is not protected: its deployments need no approval",
            environment.id
        )));
    }
    let waiting = found
        .deployments
        .iter()
        .enumerate()
        .filter(|(_, d)| d.environment.id == environment.id)
        .filter(|(_, d)| !d.status.is_some_and(Status::is_terminal))
        .max_by_key(|(_, d)| d.date_created)
        .ok_or_else(|| {
            Failure::refused(format!(
                "no deployment of release {} to {} is waiting; `relctl deploy {} --env {}` first",
                found.release_id, environment.id, found.release_id, environment.id
            ))
        })?;
    let intent = IntentRef {
        date_created: waiting.1.date_created,
        release_id: found.release_id.clone(),
        index: waiting.0,
    };
    let by = aws.caller().await;
    // Refuse now what the controller would refuse later (four eyes).
    let mut approved = waiting.1.clone();
    approved.approved_by = Some(by.clone());
    if let Some(why) = crate::model::awaiting_approval(
        &approved,
        &found.release_id,
        &environment.id,
        environment.four_eyes,
    ) {
        return Err(Failure::refused(format!("{why}; nothing was approved")));
    }
    let now = Timestamp::from_utc(chrono::Utc::now());
    if !store.approve(&table, &intent, &by, now).await? {
        return Err(Failure::refused(
            "the deployment finished or changed meanwhile; nothing was approved",
        ));
    }
    eprintln!(
        "approved the deployment of release {} to {} (requested at {}) as {}",
        found.release_id,
        environment.id,
        intent.date_created,
        by.name.or(by.id).unwrap_or_default()
    );
    Ok(())
}
