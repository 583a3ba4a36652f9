//! The one writer of what a reconcile decided: the deployment entry's `status` fields and
//! the environment's state item move together, the entry first, so a crash between the
//! two is repaired by the next reconcile (the entry is the user's view; the state is the
//! controller's). Each transition is one state write; every write is counted by target
//! and outcome (`relctl_outcome_writes_total`).

use tracing::{info, warn};

mod notice;
mod promotion;

use crate::{
    context::Context,
    metrics::WriteLabels,
    model::{
        EnvKey, Images, IntentRef, Status, Timestamp, images_digest,
        intent::superseded_message,
        state::{
            Activity, Attempts, Current, EnvState, HistoryEntry, HistoryKind, Observed, Outcome,
            Run, Wait,
        },
    },
    store::{StoreError, releases::StatusWrite, verified::Verified},
};

/// Characters of a requester's name kept in the state (a record's field is unbounded).
const REQUESTER: usize = 256;

/// `text`, cut to `max` characters with a marker saying so.
pub fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… [cut]")
}

pub struct Writer<'a> {
    ctx: &'a Context,
    key: &'a EnvKey,
    table: &'a str,
    pub state: EnvState,
    /// The description of the deployment being written about, for notifications.
    pub description: Option<String>,
    /// Its release's `date_created`, for the lead time.
    pub release_created: Option<Timestamp>,
    /// The entry's `rollback_of` and `force`: what its success marks or clears.
    pub rollback_of: Option<String>,
    pub forced: bool,
    /// The deployment starting now was let through a pause or a freeze (see
    /// `Current::break_glass`).
    pub break_glass: Option<String>,
}

impl<'a> Writer<'a> {
    pub fn new(ctx: &'a Context, key: &'a EnvKey, table: &'a str, state: EnvState) -> Self {
        Self {
            ctx,
            key,
            table,
            state,
            description: None,
            release_created: None,
            rollback_of: None,
            forced: false,
            break_glass: None,
        }
    }

    fn count(&self, target: &'static str, outcome: &'static str) {
        self.ctx
            .metrics
            .writes
            .get_or_create(&WriteLabels { target, outcome })
            .inc();
    }

    /// Writes `status` onto the entry `intent` points at.
    pub(super) async fn entry(
        &self,
        intent: &IntentRef,
        status: Status,
        message: &str,
    ) -> Result<StatusWrite, StoreError> {
        let result = self
            .ctx
            .releases
            .write_status(self.table, intent, status, message, self.ctx.now())
            .await;
        self.count_entry(&result);
        result
    }

    fn count_entry(&self, result: &Result<StatusWrite, StoreError>) {
        self.count(
            "entry",
            match result {
                Ok(StatusWrite::Written) => "ok",
                Ok(StatusWrite::Refused) => "conflict",
                Err(_) => "error",
            },
        );
    }

    /// Writes the state item (everything but the desired pointer).
    pub(super) async fn save(&mut self) -> Result<(), StoreError> {
        self.state.updated_at = Some(self.ctx.now());
        let result = self.ctx.state.save_progress(self.key, &self.state).await;
        self.count("state", if result.is_ok() { "ok" } else { "error" });
        result
    }

    pub(super) fn history(
        &mut self,
        current: &Current,
        status: Status,
        message: &str,
        kind: HistoryKind,
    ) {
        self.state.history.insert(
            0,
            HistoryEntry {
                kind,
                release_id: current.intent.release_id.clone(),
                requested_by: current.requested_by.clone(),
                break_glass: current.break_glass.clone(),
                date_created: current.intent.date_created,
                status,
                message: message.to_owned(),
                at: self.ctx.now(),
            },
        );
        self.state
            .history
            .truncate(self.ctx.config.controller.history_limit);
    }

    /// The same intent, since when it was first worked on, or from now. The requester's
    /// name comes from the record: it is cut to [`REQUESTER`] characters.
    pub(super) fn current(&self, intent: &IntentRef, requested_by: Option<String>) -> Current {
        let requested_by = requested_by.map(|r| bounded(&r, REQUESTER));
        let existing = self
            .state
            .activity
            .current()
            .filter(|c| c.intent.same_entry(intent));
        Current {
            intent: intent.clone(),
            requested_by,
            since: existing.map_or_else(|| self.ctx.now(), |c| c.since),
            break_glass: self
                .break_glass
                .clone()
                .or_else(|| existing.and_then(|c| c.break_glass.clone())),
            started: existing.and_then(|c| c.started),
        }
    }

    fn attempts(&self, intent: &IntentRef) -> Attempts {
        self.state
            .activity
            .attempts()
            .filter(|_| {
                self.state
                    .activity
                    .intent()
                    .is_some_and(|i| i.same_entry(intent))
            })
            .cloned()
            .unwrap_or_default()
    }

    /// The services an earlier attempt at `intent` was moving, if it is the one in flight.
    fn moving(&self, intent: &IntentRef) -> Vec<String> {
        let same = self
            .state
            .activity
            .intent()
            .is_some_and(|i| i.same_entry(intent));
        if same {
            self.state.activity.moving().to_vec()
        } else {
            Vec::new()
        }
    }

    /// About to write the pins of `services`: recorded first (see
    /// `Activity::Pinning::moving`), so an attempt that stops part-way still has them
    /// redeployed.
    pub async fn moving_pins(&mut self, services: &[String]) -> Result<(), StoreError> {
        let Activity::Pinning { moving, .. } = &mut self.state.activity else {
            return Ok(());
        };
        let before = moving.len();
        for service in services {
            if !moving.contains(service) {
                moving.push(service.clone());
            }
        }
        if moving.len() == before {
            return Ok(());
        }
        moving.sort();
        self.save().await
    }

    /// The intent in flight lost to `by`.
    pub async fn supersede(&mut self, older: &Current, by: &IntentRef) -> Result<(), StoreError> {
        let message = superseded_message(by);
        self.entry(&older.intent, Status::Superseded, &message)
            .await?;
        info!(superseded = %older.intent.release_id, "older deployment superseded");
        self.tell(&older.intent, "superseded", &message);
        self.history(older, Status::Superseded, &message, HistoryKind::Deployment);
        self.state.activity = Activity::Finished {
            current: older.clone(),
            outcome: Outcome::Superseded,
            message,
        };
        self.save().await
    }

    /// Held back by a policy: `blocked` (an approval) or `frozen` (a freeze window).
    pub async fn wait(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        why: Wait,
        message: &str,
    ) -> Result<(), StoreError> {
        let status = match why {
            Wait::Approval | Wait::Gate => Status::Blocked,
            Wait::Freeze => Status::Frozen,
            Wait::Pause => Status::Paused,
        };
        self.entry(intent, status, message).await?;
        self.tell(intent, status.as_str(), message);
        self.state.activity = Activity::Waiting {
            current: self.current(intent, requested_by),
            why,
            message: message.to_owned(),
        };
        self.save().await
    }

    /// Marks `intent` in progress. `Refused`: the entry is no longer ours to write
    /// (another intent replaced it, or it finished meanwhile).
    pub async fn start(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        message: &str,
        claimed: Option<Status>,
    ) -> Result<StatusWrite, StoreError> {
        let written = match claimed {
            None => self.entry(intent, Status::InProgress, message).await?,
            Some(claimed) => {
                self.ctx
                    .releases
                    .write_status_over(
                        self.table,
                        intent,
                        claimed,
                        Status::InProgress,
                        message,
                        self.ctx.now(),
                    )
                    .await?
            }
        };
        if written == StatusWrite::Refused {
            return Ok(written);
        }
        let moving = self.moving(intent);
        let hooked = self.state.activity.hooked(intent);
        let mut current = self.current(intent, requested_by);
        current.started = current.started.or(Some(self.ctx.now()));
        self.state.activity = Activity::Pinning {
            current,
            message: message.to_owned(),
            verifying: false,
            attempts: self.attempts(intent),
            moving,
            hooked,
        };
        self.save().await?;
        Ok(written)
    }

    /// The `before` hooks of the intent being pinned passed: saved, so a retry of the
    /// pinning does not run them again.
    pub async fn hooks_passed(&mut self) -> Result<(), StoreError> {
        if let Activity::Pinning { hooked, .. } = &mut self.state.activity {
            *hooked = true;
            return self.save().await;
        }
        Ok(())
    }

    /// Pins written: now reading them back.
    /// Pins written, being read back: kept in memory and saved with the next write (the
    /// run's start or the outcome) — a write of its own would cost one per deployment
    /// and a crash here repeats nothing but the read.
    pub fn verifying(&mut self) {
        if let Activity::Pinning {
            verifying, message, ..
        } = &mut self.state.activity
        {
            *verifying = true;
            *message = "verifying pins".into();
        }
    }

    /// Pinned, but the actuator cannot start yet: say why.
    pub async fn not_started(
        &mut self,
        intent: &IntentRef,
        message: &str,
    ) -> Result<(), StoreError> {
        let unchanged = self.state.activity.message() == Some(message);
        if unchanged {
            return Ok(());
        }
        self.entry(intent, Status::InProgress, message).await?;
        if let Activity::Pinning { message: m, .. } = &mut self.state.activity {
            *m = message.to_owned();
        }
        self.save().await
    }

    /// The actuator's run started; from now on it is followed, never started again.
    pub async fn applying(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        run: Run,
    ) -> Result<(), StoreError> {
        let message = format!("{}; started {}", run.pinned, run.kind);
        self.state.activity = Activity::Applying {
            current: self.current(intent, requested_by),
            attempts: self.attempts(intent),
            run,
            message,
            awaiting_approval: false,
        };
        self.save().await
    }

    /// The run being followed says something new.
    pub async fn follow(
        &mut self,
        intent: &IntentRef,
        awaiting_approval: bool,
        message: &str,
    ) -> Result<(), StoreError> {
        let status = if awaiting_approval {
            Status::AwaitingApproval
        } else {
            Status::InProgress
        };
        self.entry(intent, status, message).await?;
        let was_awaiting = matches!(
            self.state.activity,
            Activity::Applying {
                awaiting_approval: true,
                ..
            }
        );
        if awaiting_approval && !was_awaiting {
            self.tell(intent, "awaiting_approval", message);
        }
        let now = self.ctx.now();
        if let Activity::Applying {
            message: m,
            awaiting_approval: a,
            run,
            ..
        } = &mut self.state.activity
        {
            // A Terraform plan approved: its apply is a run of its own, timed from now
            // (saved with this write, so a failure later cannot undo it).
            if *a && !awaiting_approval && run.kind == "terraform" {
                run.started_at = now;
            }
            *m = message.to_owned();
            *a = awaiting_approval;
        }
        self.save().await
    }

    /// What runs is what was asked for.
    pub async fn succeed(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        images: &Images,
        message: &str,
    ) -> Result<(), StoreError> {
        let now = self.ctx.now();
        // The controller's own record first: an entry saying `succeeded` counts only
        // where this exists, so a crash between the two re-applies, never trusts.
        let verified = Verified {
            date_created: intent.date_created,
            images: images_digest(images),
        };
        self.ctx
            .state
            .record_verified(self.key, &intent.release_id, &verified, now)
            .await?;
        // The status and `last_date_deployed` in one write.
        let written = self
            .ctx
            .releases
            .write_succeeded(self.table, intent, message, now)
            .await;
        self.count_entry(&written);
        written?;
        crate::failpoint::hit("status-succeeded");
        self.tell(intent, "succeeded", message);
        let lead = self
            .release_created
            .and_then(|c| (now.as_utc() - c.as_utc()).to_std().ok())
            .map(|d| d.as_secs());
        self.delivered(true, lead);
        if let Some(rolled_back) = self.rollback_of.clone().filter(|r| r != &intent.release_id) {
            let by = self
                .state
                .activity
                .current()
                .and_then(|c| c.requested_by.clone())
                .unwrap_or_else(|| "someone".into());
            self.state.mark_rolled_back(
                &rolled_back,
                format!("rolled back to release {} by {by}", intent.release_id),
                now,
            );
        }
        if self.forced {
            // Deployed again on purpose, and it ran: no longer held back.
            self.state
                .rolled_back
                .retain(|r| r.release_id != intent.release_id);
        }
        let current = self.current(intent, requested_by);
        self.observed(intent, images, now);
        self.state.drift.clear();
        // A new release: what the last drift check found was of the one before.
        self.state.plan_drift = None;
        self.history(
            &current,
            Status::Succeeded,
            message,
            HistoryKind::Deployment,
        );
        self.state.activity = Activity::Finished {
            current: Current {
                since: now,
                ..current
            },
            outcome: Outcome::Succeeded,
            message: message.to_owned(),
        };
        self.save().await
    }

    /// `intent` failed for good: refused, or its run failed.
    pub async fn fail(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        message: &str,
    ) -> Result<(), StoreError> {
        warn!(reason = message, "deployment failed");
        // A record that cannot take its status (too large, say) must not stop the
        // environment's own state from saying what happened.
        let message = &match self.entry(intent, Status::Failed, message).await {
            Err(e) if e.class() == crate::aws::ErrorClass::Permanent => format!(
                "{message}\n(relctl could not write this status into the release record: {e})"
            ),
            Err(e) => return Err(e),
            Ok(_) => message.to_owned(),
        };
        self.tell(intent, "failed", message);
        self.delivered(false, None);
        let current = self.current(intent, requested_by);
        self.history(&current, Status::Failed, message, HistoryKind::Deployment);
        self.state.activity = Activity::Finished {
            current,
            outcome: Outcome::Failed,
            message: message.to_owned(),
        };
        self.save().await
    }

    /// `intent` was cancelled by a person: recorded `cancelled` (not counted as a
    /// change failure). False: the entry is no longer that intent's to write (it
    /// finished or was superseded meanwhile), and nothing was recorded.
    pub async fn cancel(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        message: &str,
    ) -> Result<bool, StoreError> {
        warn!(reason = message, "deployment cancelled");
        // A record that cannot take its status must not stop the state saying it.
        let message = &match self.entry(intent, Status::Cancelled, message).await {
            Ok(StatusWrite::Refused) => {
                self.state.rollback = self.state.rollback.take().filter(|m| !m.pending);
                return Ok(false);
            }
            Err(e) if e.class() == crate::aws::ErrorClass::Permanent => format!(
                "{message}\n(relctl could not write this status into the release record: {e})"
            ),
            Err(e) => return Err(e),
            Ok(StatusWrite::Written) => message.to_owned(),
        };
        self.tell(intent, "cancelled", message);
        let current = self.current(intent, requested_by);
        self.history(
            &current,
            Status::Cancelled,
            message,
            HistoryKind::Deployment,
        );
        self.state.activity = Activity::Finished {
            current,
            outcome: Outcome::Cancelled,
            message: message.to_owned(),
        };
        self.save().await?;
        Ok(true)
    }

    fn observed(&mut self, intent: &IntentRef, images: &Images, since: Timestamp) {
        self.state.observed = Some(Observed {
            release_id: intent.release_id.clone(),
            date_created: intent.date_created,
            images: images.clone(),
            since,
        });
    }

    /// A succeeded intent the state lost track of (a crash after its status was written):
    /// it is what the environment converged on.
    pub fn converged(&mut self, intent: &IntentRef, requested_by: Option<String>, message: &str) {
        let current = Current {
            since: self.ctx.now(),
            ..self.current(intent, requested_by)
        };
        self.state.activity = Activity::Finished {
            current,
            outcome: Outcome::Succeeded,
            message: message.to_owned(),
        };
    }

    /// A succeeded intent: what runs, and how the pins drifted from it.
    pub async fn observe(
        &mut self,
        intent: &IntentRef,
        images: &Images,
        drift: Vec<String>,
        record_observed: bool,
    ) -> Result<(), StoreError> {
        if record_observed {
            self.observed(intent, images, self.ctx.now());
        }
        self.state.drift = drift;
        self.save().await
    }

    /// Drifted pins were put back: say so in the history.
    pub async fn healed(
        &mut self,
        intent: &IntentRef,
        images: &Images,
        services: &[&str],
        record_observed: bool,
    ) -> Result<(), StoreError> {
        let message = format!("self-healed drift in {}", services.join(", "));
        let current = Current {
            intent: intent.clone(),
            requested_by: None,
            since: self.ctx.now(),
            break_glass: None,
            started: None,
        };
        self.history(&current, Status::Succeeded, &message, HistoryKind::SelfHeal);
        if let Activity::Finished { message: m, .. } = &mut self.state.activity {
            *m = message;
        }
        self.observe(intent, images, Vec::new(), record_observed)
            .await
    }

    /// A failed attempt at the deployment in flight, to be retried.
    pub async fn attempt_failed(&mut self, note: &str, error: &str) -> Result<(), StoreError> {
        let Some(intent) = self.state.activity.intent().cloned() else {
            return Ok(());
        };
        self.entry(&intent, Status::InProgress, note).await?;
        if let Activity::Pinning {
            attempts, message, ..
        }
        | Activity::Applying {
            attempts, message, ..
        } = &mut self.state.activity
        {
            attempts.count = attempts.count.saturating_add(1);
            attempts.last_error = Some(error.to_owned());
            *message = note.to_owned();
        }
        // A bake keeps what applying did (its final message); the note is on the entry.
        if let Activity::Baking { attempts, .. } = &mut self.state.activity {
            attempts.count = attempts.count.saturating_add(1);
            attempts.last_error = Some(error.to_owned());
        }
        self.save().await
    }
}
