//! The reconcile: for one environment, compare the newest intent with what is pinned,
//! pin what differs, verify, and write the outcome back, both onto the deployment entry
//! and into the state table. Level-triggered and idempotent: running it twice changes
//! nothing. `reconcile` says what to do next; `error_policy` picks the retry delay.

mod apply;
pub mod context;
pub mod intake;
pub mod outcome;
pub mod resync;

use std::time::Duration;

use tracing::warn;

pub use context::Context;

use crate::{
    config::Environment,
    model::{
        EnvKey, IntentRef, Release, Status, awaiting_approval, gate, record::Deployment,
        resolve_images,
    },
    pin::PinError,
    store::StoreError,
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
    #[error(transparent)]
    Actuator(#[from] crate::actuator::ActuatorError),
    #[error("failed to verify the pins: {service} holds {actual:?}, expected {expected:?}")]
    Verify {
        service: String,
        expected: String,
        actual: Option<String>,
    },
}

pub async fn reconcile(ctx: &Context, key: &EnvKey) -> Result<Action, Error> {
    let mut state = ctx.state.get(key).await?;
    resync::clear_stale(ctx, key, &state).await;
    let Some(desired) = state.desired.clone() else {
        return Ok(Action::Done);
    };
    let (Ok((project, env)), Some(adapters)) = (ctx.config.environment(key), ctx.adapters(key))
    else {
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
    state.requested_by = entry
        .requested_by
        .as_ref()
        .and_then(|p| p.name.clone().or_else(|| p.id.clone()));
    let images = match resolve_images(&release, project.image_uri_template.as_deref())
        .and_then(|images| gate(&release, &key.environment, &env.requires).map(|()| images))
    {
        Ok(images) => images,
        Err(refusal) => {
            if !entry.status.is_some_and(Status::is_terminal) {
                let message = refusal.to_string();
                outcome::fail(ctx, key, &mut state, &table, &intent, &message).await?;
            }
            return Ok(Action::Done);
        }
    };
    // Policies hold a deployment back only before its actuator started.
    let started = state
        .actuation
        .as_ref()
        .is_some_and(|a| a.intent.same_entry(&intent));
    match entry.status {
        Some(Status::Succeeded) => {
            outcome::observe(ctx, key, &mut state, &intent, &images, adapters).await?;
            Ok(Action::Done)
        }
        Some(status) if status.is_terminal() => Ok(Action::Done),
        _ if !started && let Some(why) = approval_missing(env, &entry, &intent) => {
            let status = Status::Blocked;
            outcome::blocked(ctx, key, &mut state, &table, &intent, status, &why).await?;
            Ok(Action::Done)
        }
        _ if !started && let Some((why, wait)) = frozen(env) => {
            let status = Status::Frozen;
            outcome::blocked(ctx, key, &mut state, &table, &intent, status, &why).await?;
            Ok(Action::RequeueAfter(wait))
        }
        _ => {
            let mut job = apply::Job {
                ctx,
                key,
                state: &mut state,
                table: &table,
                intent: &intent,
                images: &images,
                adapters,
            };
            job.run().await
        }
    }
}

/// Why (and how long) a deployment waits for a freeze window to end, if it does.
fn frozen(env: &Environment) -> Option<(String, Duration)> {
    let now = chrono::Utc::now();
    let window = env.frozen_at(now)?;
    let wait = (window.until - now).to_std().unwrap_or_default() + Duration::from_millis(100);
    let reason = window
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some((
        format!(
            "environment {} is frozen until {}{reason}; the deployment goes ahead then",
            env.id,
            window.until.to_rfc3339()
        ),
        wait,
    ))
}

/// Why a deployment to a `protected` environment must wait, if it must.
fn approval_missing(env: &Environment, entry: &Deployment, intent: &IntentRef) -> Option<String> {
    if !env.protected {
        return None;
    }
    awaiting_approval(entry, &intent.release_id, &env.id, env.four_eyes)
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
