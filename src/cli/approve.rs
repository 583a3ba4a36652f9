//! `relctl approve RELEASE --env E`: record the caller's approval of the release's
//! waiting deployment to a `protected` environment in the approvals table, under the
//! caller's own AWS identity (which IAM makes the item's key); the controller then
//! applies it. Refused at once where the controller would refuse it.

use clap::Args;

use super::{
    Failure,
    lookup::{self, Aws},
};
use crate::{
    config::Config,
    model::{
        EnvKey, IntentRef, Person, Status, Timestamp, approval::approval_missing, images_digest,
        resolve_images,
    },
    store::attestations::{Kind, approvals, subject},
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
        .filter(|d| d.environment.id == environment.id)
        .filter(|d| !d.status.is_some_and(Status::is_terminal))
        .max_by_key(|d| d.date_created.clone())
        .ok_or_else(|| {
            Failure::refused(format!(
                "no deployment of release {} to {} is waiting; `relctl deploy {} --env {}` first",
                found.release_id, environment.id, found.release_id, environment.id
            ))
        })?;
    let intent = IntentRef::of(&found.release_id, waiting);
    let (project, _) = config.environment(&key)?;
    let images = resolve_images(&found, project.image_uri_template.as_deref())?;
    // A Terraform environment approves the plan it made, bound by the plan's digest;
    // any other, the images.
    let plan = if plans_first(environment) {
        Some(waiting_plan(config, aws, &key, &intent).await?)
    } else {
        None
    };
    let digest = match &plan {
        Some((digest, _)) => digest.clone(),
        None => images_digest(&images),
    };
    let me = aws.principal().await?;
    if !environment.approvers.is_empty()
        && !environment
            .approvers
            .iter()
            .filter_map(|a| crate::model::principals::IamArn::parse(a).ok())
            .any(|a| a.names(&me.arn))
    {
        return Err(Failure::refused(format!(
            "environment {} takes approvals only from {}; you are {}, so nothing was approved",
            environment.id,
            environment.approvers.join(", "),
            me.arn
        )));
    }
    // Refuse now what the controller would refuse later (four eyes).
    let attestations = aws.attestations(config);
    let subject = subject(&key, &intent);
    let mut approvals = approvals(&attestations.of(&subject).await?, &digest);
    approvals.approvers = vec![me.clone()];
    if let Some(why) = approval_missing(
        &approvals,
        &found.release_id,
        &environment.id,
        environment.four_eyes,
    ) {
        return Err(Failure::refused(format!("{why}; nothing was approved")));
    }
    // What is approved is exactly these images, or this plan: shown, and bound by its
    // digest.
    note!(
        "approving the deployment of release {} to {} (requested at {}):",
        found.release_id,
        environment.id,
        intent.date_created
    );
    for (service, uri) in &images {
        note!("  {service}: {uri}");
    }
    if let Some((digest, summary)) = &plan {
        note!("  the plan: {summary}");
        note!("  (plan {digest}; this plan exactly is applied)");
    }
    let now = Timestamp::from_utc(chrono::Utc::now());
    attestations
        .record(Kind::Approve, &me, &subject, &digest, now)
        .await?;
    // Shown on the entry for people, where this role may write it; the controller
    // trusts only the approvals table, and notices the approval within seconds anyway.
    let shown = Person::from_arn(&me.arn);
    match store.approve(&table, &intent, &shown, now).await {
        Ok(true) => {}
        Ok(false) => note!("note: the deployment finished or changed meanwhile"),
        Err(error) => {
            note!("note: the approval is recorded; showing it on the entry failed: {error}")
        }
    }
    note!("approved ({digest}) as {}", me.arn);
    Ok(())
}

/// Whether `environment`'s approvals are of a Terraform plan (made before the apply).
fn plans_first(environment: &crate::config::Environment) -> bool {
    environment.protected
        && matches!(
            &environment.actuator,
            crate::config::ActuatorConfig::Terraform { .. }
        )
}

/// The plan the controller made for `intent` and keeps for an approval: its digest and
/// summary. Refused while there is none yet (or the run went on without one).
async fn waiting_plan(
    config: &Config,
    aws: &Aws,
    key: &EnvKey,
    intent: &IntentRef,
) -> Result<(String, String), Failure> {
    let record = aws.state(config).run(key).await?;
    let run_id = crate::actuator::token(intent);
    match record {
        Some(r) if r.run_id == run_id && r.state == "planned" => {
            let message = r.message.unwrap_or_default();
            let (digest, summary) = message.split_once(' ').unwrap_or((&message, ""));
            Ok((digest.to_owned(), summary.to_owned()))
        }
        Some(r) if r.run_id == run_id && r.state == "running" => Err(Failure::refused(format!(
            "the plan for release {} in {} is still being made; approve it once `relctl status` says it waits for an approval",
            intent.release_id, key.environment
        ))),
        _ => Err(Failure::refused(format!(
            "no plan of release {} for {} is waiting for an approval yet: the controller plans first (`relctl status --project {} --env {}` says when); nothing was approved",
            intent.release_id, key.environment, key.project, key.environment
        ))),
    }
}
