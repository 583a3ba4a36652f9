//! Requesting a deployment (`deploy`, `rollback`): check it as the controller would,
//! then append the entry to the release atomically.

use super::{Failure, lookup::Aws};
use crate::{
    config::Config,
    model::{
        EnvKey, IntentRef, Release, Stamp, Timestamp,
        record::{Deployment, EnvironmentRef},
    },
    store::{
        ReleaseStore,
        attestations::{Kind, subject},
    },
};

/// What a request says beyond the deployment itself.
#[derive(Debug, Default)]
pub struct Marks {
    pub description: String,
    /// Deploy a release that was rolled back in the environment (`--force`).
    pub force: bool,
    /// The release this deployment rolls back.
    pub rollback_of: Option<String>,
    /// Deploy through a freeze or a pause (`--break-glass --reason …`): the reason.
    pub break_glass: Option<String>,
}

/// Validates a deployment of `release` to `environment` and appends its entry (an
/// atomic list append: two people deploying at once both land). Returns the entry and
/// its index.
pub async fn request(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    table: &str,
    release: &Release,
    environment: &str,
    marks: Marks,
) -> Result<(Deployment, usize), Failure> {
    let description = marks.description.as_str();
    let key = EnvKey::new(&release.project_id, environment);
    let (project, environment) = config.environment(&key)?;
    let images = crate::model::resolve_images(release, project.image_uri_template.as_deref())?;
    let digest = crate::model::images_digest(&images);
    // The gate as the controller reads it: its own records, for these very images.
    let verified: Vec<String> = aws
        .state(config)
        .verified(&key.project, &environment.requires, &release.release_id)
        .await?
        .into_iter()
        .filter(|(_, v)| v.images == digest)
        .map(|(env, _)| env)
        .collect();
    crate::model::gate(
        &release.release_id,
        &environment.id,
        &environment.requires,
        &verified,
    )?;
    // A release rolled back there: refused now, as the controller would refuse it.
    if !marks.force
        && let Some(mark) = aws
            .state(config)
            .get(&key)
            .await?
            .rolled_back(&release.release_id)
    {
        return Err(Failure::refused(format!(
            "release {} was rolled back in {} ({}, at {}); deploy it again with --force",
            release.release_id,
            environment.id,
            mark.reason,
            mark.at.to_wire()
        )));
    }
    let date_created = Stamp::new(Timestamp::from_utc(chrono::Utc::now()));
    if let Some(reason) = &marks.break_glass {
        let intent = IntentRef {
            date_created: date_created.at,
            release_id: release.release_id.clone(),
            index: 0,
            date_created_raw: None,
        };
        break_glass(config, aws, &key, environment, &intent, &digest, reason).await?;
    }
    if environment.protected {
        // Who asked, under their own identity, before the entry exists: four eyes
        // compares the approver with this, never with the entry's free-text requester.
        let me = aws.principal().await?;
        let intent = IntentRef {
            date_created: date_created.at,
            release_id: release.release_id.clone(),
            index: 0,
            date_created_raw: None,
        };
        aws.attestations(config)
            .record(
                Kind::Request,
                &me,
                &subject(&key, &intent),
                &digest,
                date_created.at,
            )
            .await?;
    }
    let entry = Deployment {
        index: 0,
        date_created,
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
        force: marks.force.then_some(true),
        rollback_of: marks.rollback_of,
        break_glass: marks.break_glass,
        cancel: None,
    };
    let index = store
        .append_deployment(table, &release.release_id, &entry)
        .await?;
    note!(
        "requested deployment of release {} to {} ({})",
        release.release_id,
        environment.id,
        environment.name
    );
    if environment.protected {
        note!(
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

/// `--break-glass`: refused at once unless the caller is one the environment's
/// `break_glass` lists; then recorded under the caller's own identity, for these
/// images, before the entry exists (the controller counts only this, never the entry).
async fn break_glass(
    config: &Config,
    aws: &Aws,
    key: &EnvKey,
    environment: &crate::config::Environment,
    intent: &IntentRef,
    digest: &str,
    reason: &str,
) -> Result<(), Failure> {
    if reason.trim().is_empty() {
        return Err(Failure::refused(
            "say why with --reason: a break-glass is recorded and notified with it",
        ));
    }
    if environment.break_glass.is_empty() {
        return Err(Failure::refused(format!(
            "environment {} lists nobody in `break_glass`: nobody may deploy there during a freeze or a pause; nothing was written",
            environment.id
        )));
    }
    let me = aws.principal().await?;
    let listed = environment
        .break_glass
        .iter()
        .filter_map(|a| crate::model::principals::IamArn::parse(a).ok())
        .any(|a| a.names(&me.arn));
    if !listed {
        return Err(Failure::refused(format!(
            "environment {} lets only {} break the glass; you are {}, so nothing was written",
            environment.id,
            environment.break_glass.join(", "),
            me.arn
        )));
    }
    let reason = crate::reconciler::outcome::bounded(reason.trim(), 500);
    aws.attestations(config)
        .record_saying(
            Kind::BreakGlass,
            &me,
            &subject(key, intent),
            digest,
            intent.date_created,
            crate::store::attestations::Said {
                reason: Some(&reason),
                ends: &[],
            },
        )
        .await?;
    note!(
        "breaking the glass as {} ({reason}): the deployment goes ahead through a freeze or a pause of {}; this is recorded and notified",
        me.arn,
        environment.id
    );
    Ok(())
}
