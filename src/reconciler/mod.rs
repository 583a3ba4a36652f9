//! The reconcile: for one environment, compare the newest intent with what is pinned,
//! pin what differs, verify, and write the outcome back, both onto the deployment entry
//! and into the state table. Level-triggered and idempotent: running it twice changes
//! nothing. `reconcile` says what to do next; `error_policy` picks the retry delay.

pub mod context;
pub mod intake;
pub mod outcome;
pub mod resync;

use std::time::Duration;

use tracing::{info, warn};

pub use context::Context;

use crate::{
    model::{EnvKey, Images, IntentRef, Release, Status, plan, record::Deployment, resolve_images},
    pin::{PinError, Target},
    store::{StoreError, releases::StatusWrite, state::Phase},
};

/// What to do with the key after a reconcile that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Converged, refused, or nothing to do: wait for a new intent or the next resync.
    Done,
    /// Look again after this long (a long-running apply being followed).
    RequeueAfter(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("failed to verify the pins: {service} reads {actual:?}, expected {expected:?}")]
    Verify {
        service: String,
        expected: String,
        actual: Option<String>,
    },
}

pub async fn reconcile(ctx: &Context, key: &EnvKey) -> Result<Action, Error> {
    let mut state = ctx.state.get(key).await?;
    let Some(desired) = state.desired.clone() else {
        return Ok(Action::Done);
    };
    let Ok((project, _)) = ctx.config.environment(key) else {
        return Ok(Action::Done);
    };
    let table = ctx.config.releases_table(project).to_owned();
    outcome::supersede_active(ctx, key, &mut state, &table, &desired).await?;

    let release = ctx.releases.get(&table, &desired.release_id).await?;
    let Some((release, intent, entry)) = release.and_then(|r| locate(r, key, &desired)) else {
        warn!(release_id = %desired.release_id, "desired intent is no longer in the releases table");
        return Ok(Action::Done);
    };
    tracing::Span::current().record("release_id", intent.release_id.as_str());
    let images = match resolve_images(&release, project.image_uri_template.as_deref()) {
        Ok(images) => images,
        Err(refusal) => {
            if !entry.status.is_some_and(Status::is_terminal) {
                let message = refusal.to_string();
                outcome::fail(ctx, key, &mut state, &table, &intent, &message).await?;
            }
            return Ok(Action::Done);
        }
    };
    match entry.status {
        Some(Status::Succeeded) => {
            outcome::observe(ctx, key, &mut state, &intent, &images).await?;
            Ok(Action::Done)
        }
        Some(status) if status.is_terminal() => Ok(Action::Done),
        _ => apply(ctx, key, &mut state, &table, &intent, &images).await,
    }
}

/// The entry `desired` points at, found again by `date_created` if the list moved.
fn locate(
    release: Release,
    key: &EnvKey,
    desired: &IntentRef,
) -> Option<(Release, IntentRef, Deployment)> {
    let index = match release.deployments.get(desired.index) {
        Some(entry)
            if entry.date_created == desired.date_created
                && entry.environment.id == key.environment =>
        {
            desired.index
        }
        _ => release.deployments.iter().position(|entry| {
            entry.date_created == desired.date_created && entry.environment.id == key.environment
        })?,
    };
    let entry = release.deployments.get(index)?.clone();
    let intent = IntentRef {
        index,
        ..desired.clone()
    };
    Some((release, intent, entry))
}

async fn apply(
    ctx: &Context,
    key: &EnvKey,
    state: &mut crate::store::state::EnvState,
    table: &str,
    intent: &IntentRef,
    images: &Images,
) -> Result<Action, Error> {
    let message = format!(
        "pinning {} images of release {}",
        images.len(),
        intent.release_id
    );
    if outcome::start(ctx, key, state, table, intent, &message).await? == StatusWrite::Refused {
        // Superseded (or rewritten) under us: whoever did it queued the key again.
        return Ok(Action::Done);
    }
    let pin = ctx.pin_for(key);
    let target = Target {
        key,
        release_id: &intent.release_id,
    };
    let before = pin.read(&target).await?;
    let plan = plan(images, &before);
    pin.write(&target, &plan.changes).await?;
    outcome::progress(ctx, key, state, Phase::Verifying, "verifying pinned images").await?;
    let after = pin.read(&target).await?;
    if let Some((service, expected)) = images.iter().find(|(s, uri)| after.get(*s) != Some(*uri)) {
        return Err(Error::Verify {
            service: service.clone(),
            expected: expected.clone(),
            actual: after.get(service).cloned(),
        });
    }
    let changed: Vec<&str> = plan.changes.iter().map(|c| c.service.as_str()).collect();
    let message = if changed.is_empty() {
        format!("all {} images were already pinned; verified", images.len())
    } else {
        format!(
            "pinned {} of {} images ({}); verified",
            changed.len(),
            images.len(),
            changed.join(", ")
        )
    };
    info!(changed = changed.len(), "deployment succeeded");
    outcome::succeed(ctx, key, state, table, intent, images, &message).await?;
    Ok(Action::Done)
}

/// After a failed reconcile: record the error, and either retry with backoff or, once
/// the attempts are used up, mark the deployment `failed` so it is never stuck.
pub async fn error_policy(ctx: &Context, key: &EnvKey, error: &Error) -> Option<Duration> {
    let retry = outcome::record_error(ctx, key, error)
        .await
        .unwrap_or_else(|store| {
            warn!(error = %store, "failed to record the error in the state table");
            true
        });
    retry.then(|| ctx.backoffs.failed(key))
}
