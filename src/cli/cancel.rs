//! `relctl cancel RELEASE --env E [--reason …]`: stop a deployment that is waiting or in
//! flight. The cancel is recorded under the caller's own AWS identity in the approvals
//! table (what the controller acts on), then asked for on the entry (`cancel`, which
//! wakes the controller). The controller stops the run as its actuator allows —
//! interrupts Terraform, stops the pipeline execution, stops following an ECS rollout —
//! and records `cancelled` with who and why.

use clap::Args;

use super::{
    Failure,
    lookup::{self, Aws},
};
use crate::{
    config::Config,
    model::{EnvKey, IntentRef, Status, Timestamp},
    store::attestations::{Kind, Said, subject},
};

#[derive(Debug, Args)]
pub struct CancelArgs {
    pub release_id: String,
    #[arg(long = "env")]
    pub environment: String,
    /// Why (recorded with the status, the history and the notifications).
    #[arg(long, default_value = "no reason given")]
    pub reason: String,
}

pub async fn run(config: &Config, aws: &Aws, args: CancelArgs) -> Result<(), Failure> {
    let store = aws.releases();
    let (table, found) = lookup::find(config, &store, &args.release_id).await?;
    let key = EnvKey::new(&found.project_id, &args.environment);
    let (_, environment) = config.environment(&key)?;
    let entry = found
        .deployments
        .iter()
        .filter(|d| d.environment.id == environment.id)
        .filter(|d| !d.status.is_some_and(Status::is_terminal))
        .max_by_key(|d| d.date_created.clone())
        .ok_or_else(|| {
            Failure::refused(format!(
                "no deployment of release {} to {} is waiting or in progress; nothing to cancel",
                found.release_id, environment.id
            ))
        })?;
    let intent = IntentRef::of(&found.release_id, entry);
    let reason = crate::reconciler::outcome::bounded(args.reason.trim(), 500);
    let me = aws.principal().await?;
    let now = Timestamp::from_utc(chrono::Utc::now());
    aws.attestations(config)
        .record_saying(
            Kind::Cancel,
            &me,
            &subject(&key, &intent),
            "",
            now,
            Said {
                reason: Some(&reason),
                ends: &[],
            },
        )
        .await?;
    if !store.request_cancel(&table, &intent, &reason).await? {
        return Err(Failure::refused(format!(
            "the deployment of release {} to {} finished meanwhile; nothing to cancel",
            found.release_id, environment.id
        )));
    }
    note!(
        "asked to cancel the deployment of release {} to {} (requested at {}) as {}: the controller stops it as its actuator allows and records `cancelled`",
        found.release_id,
        environment.id,
        intent.date_created,
        me.arn
    );
    Ok(())
}
