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
    model::{
        Deployment, EnvKey, Intent, IntentRef, Release, Status, intent::superseded_message,
        new_intents, record::Rejected,
    },
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
    let known = |r: &Rejected| {
        old.is_some_and(|old| {
            old.rejected
                .iter()
                .any(|o| o.index == r.index && o.date_created == r.date_created)
        })
    };
    for rejected in new.rejected.iter().filter(|r| !known(r)) {
        reject(ctx, table, new, rejected).await?;
    }
    for intent in new_intents(old, new) {
        if let Some(entry) = new.deployments.iter().find(|e| e.index == intent.at.index) {
            ignore_claims(ctx, table, &intent.at, entry).await?;
        }
        if take(ctx, table, new, &intent).await? {
            keys.push(intent.key);
        }
    }
    Ok(keys)
}

/// An entry that cannot be used is refused on its own: `failed` with which field and
/// why (where it can be addressed), a warning, and a count; the rest of its release, and
/// every other release, go on.
pub async fn reject(
    ctx: &Context,
    table: &str,
    release: &Release,
    rejected: &Rejected,
) -> Result<(), StoreError> {
    if rejected
        .status
        .as_deref()
        .is_some_and(|s| ["succeeded", "failed", "superseded"].contains(&s))
    {
        return Ok(());
    }
    ctx.metrics
        .rejected_entries
        .get_or_create(&crate::metrics::TableLabels {
            table: table.to_owned(),
        })
        .inc();
    warn!(
        table,
        release_id = ?release.release_id,
        index = rejected.index,
        reason = %rejected.why,
        "deployment entry refused"
    );
    if rejected.date_created.is_some() {
        ctx.releases
            .write_rejected(table, &release.release_id, rejected, ctx.now())
            .await?;
    }
    Ok(())
}

/// Outcome and approval fields in a fresh entry are claims no writer may make: they are
/// removed, and the entry is taken as a plain intent. (Approvals count only where the
/// approvers' table records them; outcomes only as the controller writes them.)
async fn ignore_claims(
    ctx: &Context,
    table: &str,
    intent: &IntentRef,
    entry: &Deployment,
) -> Result<(), StoreError> {
    let claimed: Vec<&str> = [
        ("status", entry.status.is_some()),
        ("status_message", entry.status_message.is_some()),
        ("status_updated_at", entry.status_updated_at.is_some()),
        ("approved_by", entry.approved_by.is_some()),
        ("approved_at", entry.approved_at.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();
    if claimed.is_empty() {
        return Ok(());
    }
    warn!(
        table,
        release_id = ?intent.release_id,
        fields = ?claimed,
        "a new deployment entry claimed fields only relctl writes; ignored them"
    );
    ctx.releases.clear_claims(table, intent, &claimed).await?;
    Ok(())
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
            old.deployments.iter().any(|o| {
                o.same_intent(entry)
                    && (o.approved_by != entry.approved_by || o.approved_at != entry.approved_at)
            })
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
    if let Err(why) = admissible(ctx, table, release, &intent.key, &intent.at)
        .and_then(|()| in_the_present(ctx, &intent.at))
    {
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

/// An entry dated further ahead of the controller's clock than `max_clock_skew` is
/// refused: applied, it would supersede every real deployment until that time.
fn in_the_present(ctx: &Context, at: &IntentRef) -> Result<(), String> {
    let skew = ctx.config.controller.max_clock_skew;
    let now = ctx.now().as_utc();
    let ahead = (at.date_created.as_utc() - now)
        .to_std()
        .unwrap_or_default();
    if ahead <= skew {
        return Ok(());
    }
    Err(format!(
        "date_created {} is in the future: {} ahead of the controller's clock, more than controller.max_clock_skew ({}); refused, so it cannot supersede real deployments. Correct the writer's clock and deploy again",
        at.stored_date().text(),
        humantime::format_duration(std::time::Duration::from_secs(ahead.as_secs())),
        humantime::format_duration(skew)
    ))
}

/// Why an intent cannot be taken, in words for its `status_message`.
fn admissible(
    ctx: &Context,
    table: &str,
    release: &Release,
    key: &EnvKey,
    at: &IntentRef,
) -> Result<(), String> {
    let (project, _) = ctx.config.environment(key).map_err(|r| r.to_string())?;
    let home = ctx.config.releases_table(project);
    if home != table {
        return Err(format!(
            "project {:?} keeps its releases in table {home}, not {table}; write the release there",
            project.id
        ));
    }
    let entry = release.deployments.iter().find(|e| e.index == at.index);
    crate::model::limits::check(release, entry)
}
