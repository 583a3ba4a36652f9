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

use super::{Context, intake};
use crate::{
    model::{EnvKey, Intent, intent::intents_of},
    queue::Priority,
    store::StoreError,
};

pub async fn resync_key(ctx: &Context, key: &EnvKey) -> Result<(), StoreError> {
    let Ok((project, _)) = ctx.config.environment(key) else {
        return Ok(());
    };
    let table = ctx.config.releases_table(project).to_owned();
    let mut best: Option<Intent> = None;
    let mut unfinished: Vec<Intent> = Vec::new();
    let releases = ctx
        .releases
        .recently_deployed(&table, &key.project, |release| {
            if let (Some(best), Some(deployed)) = (&best, release.last_date_deployed)
                && deployed < best.at.date_created
            {
                return false;
            }
            for intent in intents_of(release).filter(|i| &i.key == key) {
                if best.as_ref().is_none_or(|b| intent.at.is_newer_than(&b.at)) {
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
    for skipped in releases.iter().filter_map(|r| r.as_ref().err()) {
        warn!(%key, error = %skipped, "skipped an undecodable release item");
    }
    let Some(best) = best else {
        return Ok(());
    };
    let release = releases
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|r| r.release_id == best.at.release_id);
    if let Some(release) = release {
        intake::take(ctx, &table, release, &best).await?;
    }
    for older in unfinished
        .iter()
        .filter(|i| !i.status.is_some_and(|s| s.is_terminal()))
    {
        intake::supersede(ctx, &table, &older.at, &best.at).await?;
    }
    Ok(())
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
        if let Err(error) = resync_key(ctx, &key).await {
            warn!(%key, %error, "failed to resync environment");
        }
        ctx.queue.schedule(key, Duration::ZERO, Priority::Resync);
        tokio::select! {
            _ = tokio::time::sleep(pace) => {}
            _ = cancel.cancelled() => return,
        }
    }
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
