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
    store::{StoreError, releases::StatusUpdate, state::Advance},
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
    let intents = new_intents(old, new);
    if new.deployments.len() > crate::model::limits::DEPLOYMENTS {
        keys.extend(refuse_crowded(ctx, table, new, intents).await?);
        return Ok(keys);
    }
    for intent in &intents {
        if let Some(entry) = new.deployments.iter().find(|e| e.index == intent.at.index) {
            ignore_claims(ctx, table, &intent.at, entry).await?;
        }
    }
    keys.extend(take_all(ctx, table, new, intents).await?);
    Ok(keys)
}

/// The new intents of one release item, taken in together: one decision per
/// environment, not per entry. Refusals are written in batches; `last_date_deployed`
/// moves once; each environment's desired pointer is offered only its newest intent,
/// and every other entry for it is superseded in batches. Returns the environments
/// that need a reconcile.
async fn take_all(
    ctx: &Context,
    table: &str,
    release: &Release,
    intents: Vec<Intent>,
) -> Result<Vec<EnvKey>, StoreError> {
    use crate::model::limits;
    let mut refused = Vec::new();
    let mut taken: Vec<(EnvKey, Vec<IntentRef>)> = Vec::new();
    for intent in intents {
        match admissible(ctx, table, release, &intent.key, &intent.at)
            .and_then(|()| in_the_present(ctx, &intent.at))
        {
            Err(why) => {
                warn!(key = %intent.key, release_id = ?release.release_id, index = intent.at.index, reason = %why, "deployment refused");
                refused.push(StatusUpdate {
                    intent: intent.at,
                    status: Status::Failed,
                    message: why,
                });
            }
            Ok(()) => match taken.iter_mut().find(|(key, _)| *key == intent.key) {
                Some((_, ats)) => ats.push(intent.at),
                None => taken.push((intent.key, vec![intent.at])),
            },
        }
    }
    // What the item can still take: refusals first (they tell the writer why), then
    // supersessions newest first; what does not fit is left without a status, and said.
    let mut room = limits::ITEM_BYTES
        .saturating_sub(limits::RESERVE_BYTES)
        .saturating_sub(limits::item_bytes(release));
    let mut unwritten = 0;
    let mut fits = |u: &StatusUpdate| {
        let cost =
            limits::status_bytes(u.status.as_str(), &crate::model::text::message(&u.message));
        let fits = cost <= room;
        if fits {
            room -= cost;
        } else {
            unwritten += 1;
        }
        fits
    };
    let refusals = refused.len();
    refused.retain(&mut fits);
    let unsaid = refusals - refused.len();
    if unsaid > 0 {
        // A refusal nobody could read in the record: nothing is taken, and the watcher
        // parks the record, which says why where people look (the parked item, the
        // metric, an error log). The resync still covers its environments.
        return Err(StoreError::TooLarge {
            table: table.to_owned(),
            release_id: release.release_id.clone(),
            entries: unsaid,
        });
    }
    ctx.releases
        .write_statuses(table, &release.release_id, &refused, ctx.now())
        .await?;
    let newest_date = taken
        .iter()
        .flat_map(|(_, ats)| ats)
        .map(|at| at.date_created)
        .max();
    if let Some(newest) = newest_date
        && release.last_date_deployed.is_none_or(|at| at < newest)
    {
        ctx.releases
            .mark_deployed(table, &release.release_id, newest)
            .await?;
    }
    let mut superseded = Vec::new();
    let mut keys = Vec::new();
    for (key, ats) in taken {
        let Some(newest) = ats
            .iter()
            .reduce(|a, b| if b.is_newer_than(a) { b } else { a })
        else {
            continue;
        };
        let winner = advance(ctx, table, &key, newest).await?;
        crate::failpoint::hit("intake-advanced");
        superseded.extend(
            ats.iter()
                // The newest is desired, or advance() superseded it already.
                .filter(|at| !at.same_entry(&winner) && !at.same_entry(newest))
                .map(|at| StatusUpdate {
                    intent: at.clone(),
                    status: Status::Superseded,
                    message: superseded_message(&winner),
                }),
        );
        keys.push(key);
    }
    superseded.sort_by(|a, b| b.intent.order_key().cmp(&a.intent.order_key()));
    superseded.retain(&mut fits);
    if unwritten > 0 {
        warn!(
            release_id = ?release.release_id,
            entries = unwritten,
            "left entries of a release without a status: its item has no room for them under DynamoDB's 400 KB limit"
        );
    }
    let written = ctx
        .releases
        .write_statuses(table, &release.release_id, &superseded, ctx.now())
        .await?;
    if written > 0 {
        info!(release_id = ?release.release_id, entries = written, "deployments superseded by newer ones in the same release");
    }
    Ok(keys)
}

/// A release item with more than [`DEPLOYMENTS`](crate::model::limits::DEPLOYMENTS)
/// entries: none of its new intents is taken. The newest per environment is `failed`
/// naming the limit (one write each, however many entries there are); the rest are
/// left as they are, and counted in the log.
async fn refuse_crowded(
    ctx: &Context,
    table: &str,
    release: &Release,
    intents: Vec<Intent>,
) -> Result<Vec<EnvKey>, StoreError> {
    let why = match crate::model::limits::check(release, None) {
        Err(why) => why,
        Ok(()) => format!(
            "the release has more than {} deployment entries",
            crate::model::limits::DEPLOYMENTS
        ),
    };
    let total = intents.len();
    let mut newest: Vec<(EnvKey, IntentRef)> = Vec::new();
    // Only configured environments: a record naming thousands of made-up ones costs
    // no more writes than one naming the real ones.
    for intent in intents
        .into_iter()
        .filter(|i| ctx.config.environment(&i.key).is_ok())
    {
        match newest.iter_mut().find(|(key, _)| *key == intent.key) {
            Some((_, at)) if intent.at.is_newer_than(at) => *at = intent.at,
            Some(_) => {}
            None => newest.push((intent.key, intent.at)),
        }
    }
    warn!(
        release_id = ?release.release_id,
        entries = total,
        reason = %why,
        "deployments refused"
    );
    for (_, at) in &newest {
        ctx.releases
            .write_status(table, at, Status::Failed, &why, ctx.now())
            .await?;
    }
    Ok(Vec::new())
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
        .is_some_and(|s| ["succeeded", "failed", "superseded", "cancelled"].contains(&s))
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

/// Environments whose waiting deployments were approved (or asked to be cancelled) in
/// this change: that is not a new intent, but a blocked deployment may now go ahead
/// (or stop).
fn approvals(old: Option<&Release>, new: &Release) -> Vec<EnvKey> {
    let Some(old) = old else {
        return Vec::new();
    };
    new.deployments
        .iter()
        .filter(|entry| entry.approved_by.is_some() || entry.cancel.is_some())
        .filter(|entry| {
            old.deployments.iter().any(|o| {
                o.same_intent(entry)
                    && (o.approved_by != entry.approved_by
                        || o.approved_at != entry.approved_at
                        || o.cancel != entry.cancel)
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
    // Checked when it was taken in; a release that grew past a limit since must not
    // fail the deployment under way.
    // The pointer as last read or written this term is the table's (only the leader
    // moves it); read only when this term has not seen it yet.
    let desired = match ctx.state.desired_hint(&intent.key) {
        Some(known) => Some(known),
        None => ctx.state.get(&intent.key).await?.desired,
    }
    .is_some_and(|d| d.same_entry(&intent.at));
    if !desired
        && let Err(why) = admissible(ctx, table, release, &intent.key, &intent.at)
            .and_then(|()| in_the_present(ctx, &intent.at))
    {
        warn!(key = %intent.key, release_id = ?release.release_id, reason = %why, "deployment refused");
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
/// marked `superseded` if it has not finished. Returns the one that is desired now.
pub async fn advance(
    ctx: &Context,
    table: &str,
    key: &EnvKey,
    at: &IntentRef,
) -> Result<IntentRef, StoreError> {
    match ctx.state.advance(key, at).await? {
        Advance::Advanced { previous } => {
            debug!(%key, release_id = ?at.release_id, "desired intent advanced");
            // An entry the controller saw finish needs no write (it would be refused).
            if let Some(previous) =
                previous.filter(|p| !p.same_entry(at) && !ctx.state.known_finished(key, p))
            {
                supersede(ctx, table, &previous, at).await?;
            }
            Ok(at.clone())
        }
        Advance::Current => Ok(at.clone()),
        Advance::Stale { desired } => {
            supersede(ctx, table, at, &desired).await?;
            Ok(desired)
        }
    }
}

async fn supersede(
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
        info!(release_id = ?older.release_id, by = ?newer.release_id, "deployment superseded");
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
