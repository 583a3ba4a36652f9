//! Applying one intent: pin what differs, verify the pins, then start the actuator and
//! follow it by requeue until it is done, waiting on an approval, or failed. Every step
//! is safe to repeat: pins are diffed first, and a started actuator run is recorded in
//! the state table and followed, never started again for the same intent.

use tracing::info;

use super::{Action, Context, Error, outcome};
use crate::{
    actuator::{Actuator, Progress, Run},
    adapters::Adapters,
    metrics::{ActuatorLabels, KindLabels},
    model::{EnvKey, Images, IntentRef, Status},
    pin::{PinError, Target},
    store::{
        releases::StatusWrite,
        state::{Actuation, EnvState, Phase},
    },
};

pub struct Job<'a> {
    pub ctx: &'a Context,
    pub key: &'a EnvKey,
    pub state: &'a mut EnvState,
    pub table: &'a str,
    pub intent: &'a IntentRef,
    pub images: &'a Images,
    pub adapters: &'a Adapters,
}

impl Job<'_> {
    pub async fn run(&mut self) -> Result<Action, Error> {
        let started = self
            .state
            .actuation
            .clone()
            .filter(|a| a.intent.same_entry(self.intent));
        if let (Some(actuation), Some(actuator)) = (started, self.adapters.actuator.clone()) {
            return self.follow(actuator.as_ref(), &actuation).await;
        }
        let message = format!(
            "pinning {} images of release {}",
            self.images.len(),
            self.intent.release_id
        );
        let (ctx, key, table, intent) = (self.ctx, self.key, self.table, self.intent);
        if outcome::start(ctx, key, self.state, table, intent, &message).await?
            == StatusWrite::Refused
        {
            // Superseded (or rewritten) under us: whoever did it queued the key again.
            return Ok(Action::Done);
        }
        let pinned = match self.pin().await {
            Ok(pinned) => pinned,
            Err(Error::Pin(PinError::Refused(why))) => {
                outcome::fail(ctx, key, self.state, table, intent, &why).await?;
                return Ok(Action::Done);
            }
            Err(other) => return Err(other),
        };
        let Some(actuator) = self.adapters.actuator.clone() else {
            info!("deployment succeeded");
            outcome::succeed(ctx, key, self.state, table, intent, self.images, &pinned).await?;
            return Ok(Action::Done);
        };
        let kind = actuator.kind();
        let starting = format!("{pinned}; starting {kind}");
        outcome::progress(ctx, key, self.state, Phase::Applying, &starting).await?;
        let handle = actuator.start(&self.as_run()).await?;
        self.count(kind, "started");
        crate::failpoint::hit("actuator-started");
        info!(kind, handle, "actuator started");
        let actuation = Actuation {
            intent: intent.clone(),
            kind: kind.to_owned(),
            handle,
            started_at: ctx.now(),
            pinned,
        };
        self.state.actuation = Some(actuation.clone());
        ctx.state.save_progress(key, self.state).await?;
        self.follow(actuator.as_ref(), &actuation).await
    }

    fn count(&self, kind: &'static str, outcome: &'static str) {
        self.ctx
            .metrics
            .actuator_runs
            .get_or_create(&ActuatorLabels { kind, outcome })
            .inc();
    }

    fn as_run(&self) -> Run<'_> {
        Run {
            key: self.key,
            intent: self.intent,
            images: self.images,
        }
    }

    /// Writes what differs and reads it back; returns what it did, in words.
    async fn pin(&mut self) -> Result<String, Error> {
        let pin = self.adapters.pin.clone();
        let target = Target {
            key: self.key,
            release_id: &self.intent.release_id,
        };
        let changes = pin.diff(&target, self.images).await?;
        pin.write(&target, self.images, &changes).await?;
        self.ctx
            .metrics
            .pins_written
            .get_or_create(&KindLabels { kind: pin.kind() })
            .inc_by(changes.len() as u64);
        crate::failpoint::hit("pinned");
        let (ctx, key) = (self.ctx, self.key);
        outcome::progress(ctx, key, self.state, Phase::Verifying, "verifying pins").await?;
        if let Some(left) = pin.diff(&target, self.images).await?.into_iter().next() {
            return Err(Error::Verify {
                service: left.service,
                expected: left.to,
                actual: left.from,
            });
        }
        let changed: Vec<&str> = changes.iter().map(|c| c.service.as_str()).collect();
        Ok(if changed.is_empty() {
            format!(
                "all {} images were already pinned; verified",
                self.images.len()
            )
        } else {
            format!(
                "pinned {} of {} images ({}); verified",
                changed.len(),
                self.images.len(),
                changed.join(", ")
            )
        })
    }

    async fn follow(
        &mut self,
        actuator: &dyn Actuator,
        actuation: &Actuation,
    ) -> Result<Action, Error> {
        let (ctx, key, table, intent) = (self.ctx, self.key, self.table, self.intent);
        let elapsed = (ctx.now().as_utc() - actuation.started_at.as_utc())
            .to_std()
            .unwrap_or_default();
        if elapsed > actuator.timeout() {
            let why = format!(
                "{} did not finish within {} (handle {})",
                actuation.kind,
                humantime::format_duration(actuator.timeout()),
                actuation.handle
            );
            self.state.actuation = None;
            self.count(actuator.kind(), "timed_out");
            outcome::fail(ctx, key, self.state, table, intent, &why).await?;
            return Ok(Action::Done);
        }
        match actuator.check(&self.as_run(), &actuation.handle).await? {
            Progress::Done { message } => {
                info!(kind = actuation.kind, "deployment succeeded");
                self.count(actuator.kind(), "succeeded");
                self.state.actuation = None;
                let message = format!("{}; {message}", actuation.pinned);
                outcome::succeed(ctx, key, self.state, table, intent, self.images, &message)
                    .await?;
                Ok(Action::Done)
            }
            Progress::Waiting { after, message } => {
                outcome::waiting(
                    ctx,
                    key,
                    self.state,
                    table,
                    intent,
                    Status::InProgress,
                    &message,
                )
                .await?;
                Ok(Action::RequeueAfter(after))
            }
            Progress::AwaitingApproval { after, message } => {
                let status = Status::AwaitingApproval;
                outcome::waiting(ctx, key, self.state, table, intent, status, &message).await?;
                Ok(Action::RequeueAfter(after))
            }
            Progress::Failed { message } => {
                self.state.actuation = None;
                self.count(actuator.kind(), "failed");
                outcome::fail(ctx, key, self.state, table, intent, &message).await?;
                Ok(Action::Done)
            }
        }
    }
}
