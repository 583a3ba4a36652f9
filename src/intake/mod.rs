//! Taking in intents, from the stream or from a resync: refuse what is not configured,
//! keep `last_date_deployed` current, advance the environment's desired pointer (forward
//! only), and supersede what it replaced. The caller queues the environments returned,
//! after its whole batch: intents that arrive together are all seen before any reconcile.
//!
//! Below the reconcile in the pipeline: the watcher and the resync ([`resync`]) feed
//! the queue through here, and neither depends on the reconciler.

pub mod resync;

use tracing::{debug, info, warn};

use crate::{
    context::Context,
    model::{EnvKey, Intent, IntentRef, Release, Status, intent::superseded_message, new_intents},
    store::{StoreError, state::Advance},
};

/// A release item changed on the stream (`old` is `None` for an INSERT); returns the
/// environments to reconcile.
pub async fn on_change(
    ctx: &Context,
    table: &str,
    old: Option<&Release>,
    new: &Release,
) -> Result<Vec<EnvKey>, StoreError> {
    let mut keys: Vec<EnvKey> = approvals(old, new)
        .into_iter()
        .filter(|key| ctx.config.environment(key).is_ok())
        .collect();
    for intent in new_intents(old, new) {
        if intent.status.is_some_and(Status::is_terminal) {
            continue;
        }
        if take(ctx, table, new, &intent).await? {
            keys.push(intent.key);
        }
    }
    Ok(keys)
}

/// Environments whose waiting deployments were approved in this change: an approval
/// is not a new intent, but a blocked deployment may now go ahead.
fn approvals(old: Option<&Release>, new: &Release) -> Vec<EnvKey> {
    let Some(old) = old else {
        return Vec::new();
    };
    new.deployments
        .iter()
        .filter(|entry| entry.approved_by.is_some())
        .filter(|entry| {
            old.deployments
                .iter()
                .any(|o| o.same_intent(entry) && o.approved_by != entry.approved_by)
        })
        .map(|entry| EnvKey::new(&new.project_id, &entry.environment.id))
        .collect()
}

/// One intent: refused with a status (false), or made desired or superseded (true: its
/// environment needs a reconcile).
pub async fn take(
    ctx: &Context,
    table: &str,
    release: &Release,
    intent: &Intent,
) -> Result<bool, StoreError> {
    if let Err(why) = admissible(ctx, table, release, &intent.key) {
        warn!(key = %intent.key, release_id = %release.release_id, reason = %why, "deployment refused");
        ctx.releases
            .write_status(table, &intent.at, Status::Failed, &why, ctx.now())
            .await?;
        return Ok(false);
    }
    if release
        .last_date_deployed
        .is_none_or(|at| at < intent.at.date_created)
    {
        ctx.releases
            .mark_deployed(table, &release.release_id, intent.at.date_created)
            .await?;
    }
    advance(ctx, table, &intent.key, &intent.at).await?;
    crate::failpoint::hit("intake-advanced");
    Ok(true)
}

/// Offers `at` as desired for `key`; whichever of it and the current one is older is
/// marked `superseded` if it has not finished.
pub async fn advance(
    ctx: &Context,
    table: &str,
    key: &EnvKey,
    at: &IntentRef,
) -> Result<(), StoreError> {
    match ctx.state.advance(key, at).await? {
        Advance::Advanced { previous } => {
            debug!(%key, release_id = %at.release_id, "desired intent advanced");
            if let Some(previous) = previous.filter(|p| !p.same_entry(at)) {
                supersede(ctx, table, &previous, at).await?;
            }
        }
        Advance::Current => {}
        Advance::Stale { desired } => supersede(ctx, table, at, &desired).await?,
    }
    Ok(())
}

pub async fn supersede(
    ctx: &Context,
    table: &str,
    older: &IntentRef,
    newer: &IntentRef,
) -> Result<(), StoreError> {
    let written = ctx
        .releases
        .write_status(
            table,
            older,
            Status::Superseded,
            &superseded_message(newer),
            ctx.now(),
        )
        .await?;
    if written == crate::store::releases::StatusWrite::Written {
        info!(release_id = %older.release_id, by = %newer.release_id, "deployment superseded");
    }
    Ok(())
}

/// Why an intent cannot be taken, in words for its `status_message`.
fn admissible(ctx: &Context, table: &str, release: &Release, key: &EnvKey) -> Result<(), String> {
    let (project, _) = ctx.config.environment(key).map_err(|r| r.to_string())?;
    let home = ctx.config.releases_table(project);
    if home != table {
        return Err(format!(
            "project {:?} keeps its releases in table {home}, not {table}; write the release there",
            project.id
        ));
    }
    if let Some(bad) = release.release_id.chars().find(|c| c.is_control()) {
        return Err(format!("release id contains the control character {bad:?}"));
    }
    Ok(())
}
