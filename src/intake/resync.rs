//! The full resync: the table is the truth and the stream only a hint, so every
//! configured environment is re-read at start-up and on a jittered interval, paced under
//! `controller.resync_rate` so it never eats the API quota a fresh deployment needs.
//!
//! For one environment it reads the project's releases newest-deployed first
//! (`deployment_gsi`) and stops at the first release whose `last_date_deployed` is older
//! than the best intent found: nothing older can be newer.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{context::Context, intake};
use crate::{
    model::{
        EnvKey, Intent, Release, Status,
        intent::{intents_of, superseded_message},
    },
    queue::Priority,
    store::{StoreError, releases::StatusUpdate},
};

pub async fn resync_key(ctx: &Context, key: &EnvKey) -> Result<(), StoreError> {
    let Ok((project, _)) = ctx.config.environment(key) else {
        return Ok(());
    };
    let table = ctx.config.releases_table(project).to_owned();
    let horizon = ctx.now().as_utc() + ctx.config.controller.max_clock_skew;
    let mut best: Option<Intent> = None;
    let mut unfinished: Vec<Intent> = Vec::new();
    // Dated beyond the allowed skew: never the best; taken in only to be refused.
    let mut future: Vec<Intent> = Vec::new();
    let releases = ctx
        .releases
        .recently_deployed(&table, &key.project, |release| {
            if let (Some(best), Some(deployed)) = (&best, release.last_date_deployed)
                && deployed < best.at.date_created
            {
                return false;
            }
            for intent in intents_of(release).filter(|i| &i.key == key) {
                // A failed or superseded intent never becomes desired again (one refused
                // as dated in the future must not come back when its date arrives).
                if matches!(
                    intent.status,
                    Some(Status::Failed | Status::Superseded | Status::Cancelled)
                ) {
                    continue;
                }
                if intent.at.date_created.as_utc() > horizon {
                    future.push(intent);
                } else if best.as_ref().is_none_or(|b| intent.at.is_newer_than(&b.at)) {
                    if let Some(previous) = best.replace(intent) {
                        unfinished.push(previous);
                    }
                } else {
                    unfinished.push(intent);
                }
            }
            true
        })
        .await?;
    let readable: Vec<&Release> = releases.iter().filter_map(|r| r.as_ref().ok()).collect();
    for skipped in releases.iter().filter_map(|r| r.as_ref().err()) {
        warn!(%key, error = %skipped, "skipped an undecodable release item");
    }
    for release in &readable {
        for rejected in release
            .rejected
            .iter()
            .filter(|r| r.environment.as_deref() == Some(&key.environment))
        {
            intake::reject(ctx, &table, release, rejected).await?;
        }
    }
    let unfinished_of = |intent: &Intent| !intent.status.is_some_and(|s| s.is_terminal());
    for intent in future.iter().filter(|i| unfinished_of(i)) {
        if let Some(release) = readable
            .iter()
            .find(|r| r.release_id == intent.at.release_id)
        {
            intake::take(ctx, &table, release, intent).await?;
        }
    }
    let Some(best) = best else {
        return Ok(());
    };
    let Some(release) = readable.iter().find(|r| r.release_id == best.at.release_id) else {
        return Ok(());
    };
    if !intake::take(ctx, &table, release, &best).await? {
        // Refused: it supersedes nothing.
        return Ok(());
    }
    // Superseded in batches, one release item at a time.
    let mut by_release: Vec<(&str, Vec<StatusUpdate>)> = Vec::new();
    for older in unfinished.iter().filter(|i| unfinished_of(i)) {
        let update = StatusUpdate {
            intent: older.at.clone(),
            status: Status::Superseded,
            message: superseded_message(&best.at),
        };
        match by_release
            .iter_mut()
            .find(|(id, _)| *id == older.at.release_id)
        {
            Some((_, updates)) => updates.push(update),
            None => by_release.push((&older.at.release_id, vec![update])),
        }
    }
    for (release_id, updates) in by_release {
        ctx.releases
            .write_statuses(&table, release_id, &updates, ctx.now())
            .await?;
    }
    Ok(())
}

/// Why `key`'s releases table cannot be read now, if it cannot.
fn unusable_table(ctx: &Context, key: &EnvKey) -> Option<String> {
    let (project, _) = ctx.config.environment(key).ok()?;
    let table = ctx.config.releases_table(project);
    let problems = ctx.tables.of(table)?;
    Some(format!(
        "table {table} cannot be used: {}",
        problems.join("; ")
    ))
}

/// Keeps the environment's `resync_error` in the state table as it is now, writing
/// only when it changes. A success not seen before in this term writes nothing: a stale
/// error from an earlier term is cleared by [`clear_stale`] when the state is next read.
async fn record(ctx: &Context, key: &EnvKey, error: Option<String>) {
    let known = ctx
        .resync_errors
        .lock()
        .ok()
        .and_then(|errors| errors.get(key).cloned());
    let unchanged = match &known {
        Some(known) => *known == error,
        None => error.is_none(),
    };
    if !unchanged
        && let Err(store) = ctx
            .state
            .set_resync_error(key, error.as_deref(), ctx.now())
            .await
    {
        warn!(%key, error = %store, "failed to record the resync error");
        return;
    }
    if let Ok(mut errors) = ctx.resync_errors.lock() {
        errors.insert(key.clone(), error);
    }
}

/// Clears a resync error that an earlier term or process recorded, once a resync in
/// this term succeeded; called by the reconcile, which reads the state anyway.
pub async fn clear_stale(ctx: &Context, key: &EnvKey, state: &crate::store::state::EnvState) {
    if state.resync_error.is_none() {
        return;
    }
    let clean = ctx
        .resync_errors
        .lock()
        .is_ok_and(|errors| errors.get(key) == Some(&None));
    if clean && let Err(error) = ctx.state.set_resync_error(key, None, ctx.now()).await {
        warn!(%key, %error, "failed to clear an old resync error");
    }
}

/// One pass over every configured environment, paced.
pub async fn resync_all(ctx: &Context, cancel: &CancellationToken) {
    let pace = Duration::from_secs_f64(1.0 / ctx.config.controller.resync_rate);
    let keys: Vec<EnvKey> = ctx.config.keys().collect();
    info!(environments = keys.len(), "resync started");
    for key in keys {
        if cancel.is_cancelled() {
            return;
        }
        let result = match unusable_table(ctx, &key) {
            Some(why) => Err(why),
            None => resync_key(ctx, &key).await.map_err(|e| e.to_string()),
        };
        if let Err(error) = &result {
            warn!(%key, %error, "failed to resync environment");
        }
        record(ctx, &key, result.err()).await;
        ctx.queue.schedule(key, Duration::ZERO, Priority::Resync);
        tokio::select! {
            _ = tokio::time::sleep(pace) => {}
            _ = cancel.cancelled() => return,
        }
    }
    ctx.metrics.resyncs.inc();
    info!("resync finished");
}

/// Resync at start-up, then every `resync_interval` (±10%), or at once when asked.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    loop {
        resync_all(&ctx, &cancel).await;
        let base = ctx.config.controller.resync_interval.as_secs_f64();
        let jittered = base * rand::rng().random_range(0.9..1.1);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(jittered)) => {}
            _ = ctx.resync_now.notified() => info!("resync requested"),
            _ = cancel.cancelled() => return,
        }
    }
}
