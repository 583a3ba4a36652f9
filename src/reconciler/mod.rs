//! The reconcile of one environment: read the facts, [`decide`](decide::decide) the next
//! step, carry it out (reading the pin or the actuator, writing pins, starting a run,
//! writing the outcome through the one [`Writer`](outcome::Writer)), and decide again
//! until a step ends it. Level-triggered and idempotent: running it twice changes
//! nothing. `reconcile` says what to do next; `error_policy` picks the retry delay.

pub mod decide;
pub mod outcome;
mod steps;

use std::time::Duration;

use tracing::warn;

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
pub async fn error_policy(ctx: &Context, key: &EnvKey, error: &Error) -> Option<Duration> {
    let message = error.to_string();
    let retry = match record_error(ctx, key, error.class(), &message).await {
        Ok(retry) => retry,
        Err(store) => {
            warn!(error = %store, "failed to record the error in the state table");
            Some(false)
        }
    };
    let throttled = retry?;
    let delay = ctx.backoffs.failed(key);
    Some(if throttled {
        (delay * 4).min(ctx.config.controller.backoff_max)
    } else {
        delay
    })
}

/// `Some(throttled)` to retry, `None` when the deployment was failed instead.
async fn record_error(
    ctx: &Context,
    key: &EnvKey,
    class: ErrorClass,
    message: &str,
) -> Result<Option<bool>, StoreError> {
    let state = ctx.state.get(key).await?;
    let max = ctx.config.controller.max_attempts;
    let decision = decide::on_error(&state, class, message, max);
    let Ok((project, _)) = ctx.config.environment(key) else {
        return Ok(Some(false));
    };
    let table = ctx.config.releases_table(project).to_owned();
    let mut writer = Writer::new(ctx, key, &table, state);
    match decision {
        OnError::Retry { note, throttled } => {
            if let Some(note) = note {
                writer.attempt_failed(&note, message).await?;
            }
            Ok(Some(throttled))
        }
        OnError::GiveUp { intent, message } => {
            let requested_by = writer
                .state
                .activity
                .current()
                .and_then(|c| c.requested_by.clone());
            writer.fail(&intent, requested_by, &message).await?;
            Ok(None)
        }
    }
}
