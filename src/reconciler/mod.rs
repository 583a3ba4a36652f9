//! The reconcile of one environment: read the facts, [`decide`](decide::decide) the next
//! step, carry it out (reading the pin or the actuator, writing pins, starting a run,
//! writing the outcome through the one [`Writer`](outcome::Writer)), and decide again
//! until a step ends it. Level-triggered and idempotent: running it twice changes
//! nothing. `reconcile` says what to do next; `error_policy` picks the retry delay.

pub mod decide;
pub mod outcome;
mod steps;
pub(crate) mod waves;

use std::time::Duration;

use tracing::{error, warn};

use crate::{aws::ErrorClass, context::Context, model::EnvKey, pin::PinError, store::StoreError};
use decide::OnError;
use outcome::Writer;

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
    #[error("failed to decide: the reconcile took more than {0} steps")]
    Runaway(usize),
}

impl Error {
    /// What a retry can do about this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::Pin(e) => e.class(),
            Self::Actuator(e) => e.class(),
            Self::Verify { .. } | Self::Runaway(_) => ErrorClass::Transient,
        }
    }
}

pub async fn reconcile(ctx: &Context, key: &EnvKey) -> Result<Action, Error> {
    let state = ctx.state.get(key).await?;
    crate::intake::resync::clear_stale(ctx, key, &state).await;
    if state.desired.is_none() {
        return Ok(Action::Done);
    }
    let (Ok((project, env)), Some(adapters)) = (ctx.config.environment(key), ctx.adapters(key))
    else {
        return Ok(Action::Done);
    };
    let table = ctx.config.releases_table(project).to_owned();
    let writer = Writer::new(ctx, key, &table, state);
    steps::Steps::new(ctx, key, project, env, adapters, writer)
        .run()
        .await
}

/// After a failed reconcile: count the attempt at the deployment in flight, and either
/// retry with backoff (longer when throttled) or, once the attempts are used up or no
/// retry can help, mark it `failed` so it is never stuck.
///
/// Failures the state item does not count (it cannot be written, or the reconcile
/// failed before a deployment was under way) are counted here, in memory: after
/// `max_attempts` of them in a row the environment is given up on — its desired
/// deployment `failed` in its record where that can still be written, an error log,
/// `relctl_given_up_total` — until a new intent, an approval or the resync queues it
/// again, rather than retried for ever.
pub async fn error_policy(ctx: &Context, key: &EnvKey, error: &Error) -> Option<Duration> {
    let message = error.to_string();
    let delay = ctx.backoffs.failed(key);
    let failures = ctx.backoffs.failures(key);
    let (throttled, unrecorded) = match record_error(ctx, key, error.class(), &message).await {
        Ok(Recorded::GaveUp) => {
            ctx.backoffs.succeeded(key);
            return None;
        }
        Ok(Recorded::Counted { throttled }) => {
            // The state counts this attempt, and gives up by its own count.
            ctx.backoffs.forget_failures(key);
            return Some(retry_delay(ctx, delay, throttled));
        }
        Ok(Recorded::NotCounted { throttled }) => (throttled, None),
        Err(store) => {
            warn!(error = %store, failures, "failed to record the error in the state table");
            (false, Some(store))
        }
    };
    if failures >= ctx.config.controller.max_attempts {
        give_up(ctx, key, failures, &message, unrecorded.as_ref()).await;
        ctx.backoffs.succeeded(key);
        return None;
    }
    Some(retry_delay(ctx, delay, throttled))
}

fn retry_delay(ctx: &Context, delay: Duration, throttled: bool) -> Duration {
    if throttled {
        (delay * 4).min(ctx.config.controller.backoff_max)
    } else {
        delay
    }
}

/// What recording a failed reconcile did.
enum Recorded {
    /// Counted as an attempt at the deployment in flight; retry.
    Counted { throttled: bool },
    /// No deployment is under way to count it against; retry.
    NotCounted { throttled: bool },
    /// The deployment was failed instead.
    GaveUp,
}

/// Gives up on `key` after `failures` in a row: logged, counted, and its desired
/// deployment `failed` in the release record (another table, which may still take
/// writes), so that the person who deployed sees why.
async fn give_up(
    ctx: &Context,
    key: &EnvKey,
    failures: u32,
    message: &str,
    unrecorded: Option<&StoreError>,
) {
    let recording = unrecorded.map_or_else(String::new, |e| {
        format!(" that relctl could not record in its state table ({e})")
    });
    error!(
        %key,
        failures,
        error = %message,
        "gave up on the environment after {failures} failed attempts in a row{recording}; it is tried again on a new intent, an approval or the next resync"
    );
    ctx.metrics
        .given_up
        .get_or_create(&crate::metrics::EnvLabels {
            project: key.project.clone(),
            environment: key.environment.clone(),
        })
        .inc();
    let (Ok((project, _)), Ok(state)) = (ctx.config.environment(key), ctx.state.get(key).await)
    else {
        return;
    };
    let Some(intent) = state.desired else {
        return;
    };
    let why = format!(
        "gave up after {failures} failed attempts in a row{recording}; the last: {message}. See the controller's log, fix the cause and deploy again"
    );
    let table = ctx.config.releases_table(project);
    if let Err(e) = ctx
        .releases
        .write_status(
            table,
            &intent,
            crate::model::Status::Failed,
            &why,
            ctx.now(),
        )
        .await
    {
        error!(%key, error = %e, "failed to mark the deployment failed");
    }
}

/// Counts the failure against the deployment in flight, or fails it.
async fn record_error(
    ctx: &Context,
    key: &EnvKey,
    class: ErrorClass,
    message: &str,
) -> Result<Recorded, StoreError> {
    let state = ctx.state.get(key).await?;
    let max = ctx.config.controller.max_attempts;
    let decision = decide::on_error(&state, class, message, max);
    let Ok((project, _)) = ctx.config.environment(key) else {
        return Ok(Recorded::NotCounted { throttled: false });
    };
    let table = ctx.config.releases_table(project).to_owned();
    let mut writer = Writer::new(ctx, key, &table, state);
    match decision {
        OnError::Retry { note, throttled } => match note {
            Some(note) => {
                writer.attempt_failed(&note, message).await?;
                Ok(Recorded::Counted { throttled })
            }
            None => Ok(Recorded::NotCounted { throttled }),
        },
        OnError::GiveUp { intent, message } => {
            let requested_by = writer
                .state
                .activity
                .current()
                .and_then(|c| c.requested_by.clone());
            // Out of attempts after pins were (perhaps partly) written, or a run started.
            let applied = matches!(
                writer.state.activity,
                crate::model::state::Activity::Pinning { .. }
                    | crate::model::state::Activity::Applying { .. }
                    | crate::model::state::Activity::Baking { .. }
            );
            writer.plan_rollback(&intent, &message, applied);
            writer.fail(&intent, requested_by, &message).await?;
            writer.roll_back().await?;
            Ok(Recorded::GaveUp)
        }
    }
}
