//! Writing what happened: the deployment entry's `status` fields and the environment's
//! state item move together, in this order, so a crash between the two is repaired by
//! the next reconcile (the entry is the user's view; the state is the controller's).

use tracing::{info, warn};

use super::{Context, Error};
use crate::{
    model::{EnvKey, Images, IntentRef, Status, Timestamp},
    store::{
        StoreError,
        releases::StatusWrite,
        state::{EnvState, HistoryEntry, HistoryKind, Observed, Phase},
    },
};

fn push_history(
    ctx: &Context,
    state: &mut EnvState,
    intent: &IntentRef,
    status: Status,
    message: &str,
) {
    state.history.insert(
        0,
        HistoryEntry {
            kind: HistoryKind::Deployment,
            release_id: intent.release_id.clone(),
            requested_by: state.requested_by.clone(),
            date_created: intent.date_created,
            status,
            message: message.to_owned(),
            at: ctx.now(),
        },
    );
    state.history.truncate(ctx.config.controller.history_limit);
}

/// Marks the intent relctl was working on `superseded` when a newer one is desired.
pub async fn supersede_active(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    desired: &IntentRef,
) -> Result<(), StoreError> {
    let Some(active) = state.active.clone() else {
        return Ok(());
    };
    if active.same_entry(desired) || state.status.is_some_and(Status::is_terminal) {
        return Ok(());
    }
    let message = superseded_message(desired);
    ctx.releases
        .write_status(table, &active, Status::Superseded, &message, ctx.now())
        .await?;
    info!(superseded = %active.release_id, "older deployment superseded");
    push_history(ctx, state, &active, Status::Superseded, &message);
    state.status = Some(Status::Superseded);
    state.message = Some(message);
    ctx.state.save_progress(key, state).await
}

pub fn superseded_message(by: &IntentRef) -> String {
    format!(
        "superseded by release {} (deployment requested at {})",
        by.release_id, by.date_created
    )
}

/// A run being followed: write the status only when it says something new.
pub async fn waiting(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    intent: &IntentRef,
    status: Status,
    message: &str,
) -> Result<(), StoreError> {
    if state.status == Some(status) && state.message.as_deref() == Some(message) {
        return Ok(());
    }
    let now = ctx.now();
    ctx.releases
        .write_status(table, intent, status, message, now)
        .await?;
    state.phase = Some(Phase::Applying);
    state.status = Some(status);
    state.message = Some(message.to_owned());
    state.updated_at = Some(now);
    ctx.state.save_progress(key, state).await
}

/// Records `intent` as what runs, since `now`.
fn converged(state: &mut EnvState, intent: &IntentRef, images: &Images, now: Timestamp) {
    state.observed = Some(Observed {
        release_id: intent.release_id.clone(),
        date_created: intent.date_created,
        images: images.clone(),
        since: now,
    });
    state.phase = Some(Phase::Converged);
    state.status = Some(Status::Succeeded);
}

/// A deployment held back by a policy: `blocked` (an approval missing) or `frozen` (a
/// freeze window), with why.
pub async fn blocked(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    intent: &IntentRef,
    status: Status,
    message: &str,
) -> Result<(), StoreError> {
    if state.active.as_ref() == Some(intent) && state.message.as_deref() == Some(message) {
        return Ok(());
    }
    let now = ctx.now();
    ctx.releases
        .write_status(table, intent, status, message, now)
        .await?;
    state.active = Some(intent.clone());
    state.phase = Some(Phase::Blocked);
    state.status = Some(status);
    state.message = Some(message.to_owned());
    state.since = Some(now);
    state.updated_at = Some(now);
    ctx.state.save_progress(key, state).await
}

/// Marks `intent` in progress (entry and state). `Refused` means the entry is no longer
/// ours to write: another intent replaced it, or it finished meanwhile.
pub async fn start(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    intent: &IntentRef,
    message: &str,
) -> Result<StatusWrite, StoreError> {
    let now = ctx.now();
    let written = ctx
        .releases
        .write_status(table, intent, Status::InProgress, message, now)
        .await?;
    if written == StatusWrite::Refused {
        return Ok(written);
    }
    if state.active.as_ref() != Some(intent) {
        state.active = Some(intent.clone());
        state.since = Some(now);
        state.attempts = 0;
        state.last_error = None;
    }
    state.phase = Some(Phase::Pinning);
    state.status = Some(Status::InProgress);
    state.message = Some(message.to_owned());
    state.updated_at = Some(now);
    ctx.state.save_progress(key, state).await?;
    Ok(written)
}

pub async fn progress(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    phase: Phase,
    message: &str,
) -> Result<(), StoreError> {
    state.phase = Some(phase);
    state.message = Some(message.to_owned());
    state.updated_at = Some(ctx.now());
    ctx.state.save_progress(key, state).await
}

pub async fn succeed(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    intent: &IntentRef,
    images: &Images,
    message: &str,
) -> Result<(), StoreError> {
    let now = ctx.now();
    ctx.releases
        .write_status(table, intent, Status::Succeeded, message, now)
        .await?;
    crate::failpoint::hit("status-succeeded");
    ctx.releases
        .mark_deployed(table, &intent.release_id, now)
        .await?;
    converged(state, intent, images, now);
    state.message = Some(message.to_owned());
    state.last_error = None;
    state.attempts = 0;
    state.drift.clear();
    if let Ok(mut drifted) = ctx.drifted.lock() {
        drifted.remove(key);
    }
    state.since = Some(now);
    state.updated_at = Some(now);
    push_history(ctx, state, intent, Status::Succeeded, message);
    ctx.backoffs.succeeded(key);
    ctx.state.save_progress(key, state).await
}

/// Refuses `intent` for good: `failed` with `message`, nothing pinned.
pub async fn fail(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    table: &str,
    intent: &IntentRef,
    message: &str,
) -> Result<(), StoreError> {
    warn!(reason = message, "deployment refused");
    let now = ctx.now();
    ctx.releases
        .write_status(table, intent, Status::Failed, message, now)
        .await?;
    state.active = Some(intent.clone());
    state.phase = Some(Phase::Failed);
    state.status = Some(Status::Failed);
    state.message = Some(message.to_owned());
    state.last_error = Some(message.to_owned());
    state.updated_at = Some(now);
    push_history(ctx, state, intent, Status::Failed, message);
    ctx.state.save_progress(key, state).await
}

/// For an intent already `succeeded`: record it as observed if the state lost track, and
/// report drift when the pins no longer hold its images.
pub async fn observe(
    ctx: &Context,
    key: &EnvKey,
    state: &mut EnvState,
    intent: &IntentRef,
    images: &Images,
    adapters: &crate::adapters::Adapters,
) -> Result<(), Error> {
    let target = crate::pin::Target {
        key,
        release_id: &intent.release_id,
    };
    let changes = match adapters.pin.diff(&target, images).await {
        Ok(changes) => changes,
        Err(crate::pin::PinError::Refused(why)) => {
            warn!(reason = %why, "cannot check the pins of the deployed release");
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    };
    let self_heal = ctx
        .config
        .environment(key)
        .is_ok_and(|(_, env)| env.self_heal);
    let healed = self_heal && !changes.is_empty();
    let drift: Vec<String> = if healed {
        let services: Vec<&str> = changes.iter().map(|c| c.service.as_str()).collect();
        warn!(services = ?services, "pins drifted; self_heal is on: pinning the deployed release again");
        adapters.pin.write(&target, images, &changes).await?;
        let message = format!("self-healed drift in {}", services.join(", "));
        push_history(ctx, state, intent, Status::Succeeded, &message);
        if let Some(entry) = state.history.first_mut() {
            entry.kind = HistoryKind::SelfHeal;
        }
        state.message = Some(message);
        Vec::new()
    } else {
        changes.into_iter().map(|c| c.service).collect()
    };
    let known = state.observed.as_ref().is_some_and(|o| {
        o.release_id == intent.release_id && o.date_created == intent.date_created
    });
    if known && drift == state.drift && !healed {
        return Ok(());
    }
    if !drift.is_empty() {
        warn!(services = ?drift, "pinned images drifted from the deployed release");
    }
    if let Ok(mut drifted) = ctx.drifted.lock() {
        if drift.is_empty() {
            drifted.remove(key);
        } else {
            drifted.insert(key.clone());
        }
    }
    if !known {
        converged(state, intent, images, ctx.now());
    }
    state.drift = drift;
    state.updated_at = Some(ctx.now());
    ctx.state.save_progress(key, state).await?;
    Ok(())
}

/// Counts a failed attempt at the deployment in progress; past `max_attempts` it is
/// marked `failed`. Returns whether to retry.
pub async fn record_error(ctx: &Context, key: &EnvKey, error: &Error) -> Result<bool, StoreError> {
    let mut state = ctx.state.get(key).await?;
    let message = error.to_string();
    state.attempts = state.attempts.saturating_add(1);
    state.last_error = Some(message.clone());
    state.updated_at = Some(ctx.now());
    let attempts = state.attempts;
    let exhausted = attempts >= ctx.config.controller.max_attempts;
    // Only the deployment being applied has attempts to use up; an error before one
    // started (a table read, say) is retried with backoff until the next succeeds.
    let active = state
        .active
        .clone()
        .filter(|_| state.status == Some(Status::InProgress));
    if let (Some(intent), Ok((project, _))) = (active, ctx.config.environment(key)) {
        let table = ctx.config.releases_table(project).to_owned();
        if exhausted {
            let message = format!("gave up after {attempts} attempts: {message}");
            fail(ctx, key, &mut state, &table, &intent, &message).await?;
            return Ok(false);
        }
        let note = format!("attempt {attempts} failed, retrying: {message}");
        ctx.releases
            .write_status(&table, &intent, Status::InProgress, &note, ctx.now())
            .await?;
        state.message = Some(note);
    }
    ctx.state.save_progress(key, &state).await?;
    Ok(true)
}
