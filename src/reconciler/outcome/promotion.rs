//! The writer's transitions of promotion: a deployment baking, an automatic rollback.

use tracing::{info, warn};

use super::Writer;
use crate::{
    model::{
        Images, IntentRef, Status, Timestamp,
        record::Deployment,
        state::{Activity, Current, HistoryKind, RollbackMark},
    },
    store::StoreError,
};

impl Writer<'_> {
    /// Applied and verified: the deployment bakes until `until`, still `in_progress`.
    pub async fn bake(
        &mut self,
        intent: &IntentRef,
        requested_by: Option<String>,
        images: &Images,
        applied: &str,
        until: Timestamp,
        alarms: &[String],
    ) -> Result<(), StoreError> {
        let watching = if alarms.is_empty() {
            String::new()
        } else {
            format!(", watching alarms {}", alarms.join(", "))
        };
        let status = format!(
            "baking until {}{watching} (then it succeeds); {applied}",
            until.to_wire()
        );
        self.entry(intent, Status::InProgress, &status).await?;
        self.state.activity = Activity::Baking {
            current: self.current(intent, requested_by),
            images: images.clone(),
            until,
            message: applied.to_owned(),
            attempts: Default::default(),
        };
        self.save().await
    }
}

/// Characters of a failure's reason kept in a rollback's description.
const REASON: usize = 300;

impl Writer<'_> {
    /// Before the failure of `intent` is saved: where the environment rolls back on
    /// failure and the apply had started, mark the rollback to the release that last
    /// succeeded here as pending (saved with the failure, so a crash before the entry
    /// is written still writes it). Never a rollback of a rollback, nor of a release
    /// to itself, nor once a newer intent is desired.
    pub fn plan_rollback(&mut self, intent: &IntentRef, why: &str, applied: bool) {
        let Ok((_, env)) = self.ctx.config.environment(self.key) else {
            return;
        };
        if env.on_failure != crate::config::promotion::OnFailure::Rollback || !applied {
            return;
        }
        if self.state.rollback.as_ref().is_some_and(|m| m.is(intent)) {
            warn!("the automatic rollback itself failed; not rolling back again");
            return;
        }
        if self
            .state
            .desired
            .as_ref()
            .is_some_and(|d| !d.same_entry(intent))
        {
            return;
        }
        let Some(target) = self.state.observed.clone() else {
            warn!("no release succeeded here before; nothing to roll back to");
            return;
        };
        if target.release_id == intent.release_id {
            warn!("the release that last succeeded here is the one that failed; not rolling back");
            return;
        }
        // It sticks: not deployed here again without --force, nor promoted here.
        self.state.mark_rolled_back(
            &intent.release_id,
            format!(
                "automatic rollback after it failed: {}",
                super::bounded(why, REASON)
            ),
            self.ctx.now(),
        );
        // Newer than the failed intent even where its writer's clock ran ahead: an
        // older entry would be taken in as superseded, and the rollback lost.
        let after_failed = crate::model::Timestamp::from_utc(
            intent.date_created.as_utc() + chrono::Duration::microseconds(1),
        );
        self.state.rollback = Some(RollbackMark {
            failed_release: intent.release_id.clone(),
            failed_date_created: intent.date_created,
            reason: super::bounded(why, REASON),
            images: crate::model::images_digest(&target.images),
            release_id: target.release_id,
            date_created: self.ctx.now().max(after_failed),
            pending: true,
        });
    }

    /// Writes the pending rollback's deployment entry (then it goes through the loop
    /// like any deployment), and records it in the history.
    pub async fn roll_back(&mut self) -> Result<(), StoreError> {
        let Some(mark) = self.state.rollback.clone().filter(|m| m.pending) else {
            return Ok(());
        };
        let Ok((_, env)) = self.ctx.config.environment(self.key) else {
            return Ok(());
        };
        let description = format!(
            "automatic rollback: release {} failed in {}: {}",
            mark.failed_release, env.id, mark.reason
        );
        let entry = Deployment::by_relctl(
            mark.date_created,
            &env.id,
            &env.name,
            "automatic rollback",
            description.clone(),
        );
        let written = match self
            .ctx
            .releases
            .append_deployment(self.table, &mark.release_id, &entry)
            .await
        {
            Ok(_) => {
                info!(to = mark.release_id, "automatic rollback recorded");
                true
            }
            // The release it would go back to is gone: nothing to write, ever.
            Err(e) if e.class() == crate::aws::ErrorClass::Permanent => {
                warn!(error = %e, to = mark.release_id, "the automatic rollback could not be recorded");
                false
            }
            Err(e) => return Err(e),
        };
        let current = Current {
            intent: IntentRef {
                release_id: mark.release_id.clone(),
                date_created: mark.date_created,
                index: 0,
                date_created_raw: None,
            },
            requested_by: Some("relctl (automatic rollback)".into()),
            since: self.ctx.now(),
            break_glass: None,
            started: None,
        };
        let said = if written {
            format!("rolling back to release {}: {description}", mark.release_id)
        } else {
            format!(
                "could not roll back to release {} (it cannot be written to): {description}",
                mark.release_id
            )
        };
        self.history(&current, Status::Pending, &said, HistoryKind::Rollback);
        if written {
            self.tell(&current.intent, "rollback_started", &said);
        }
        if let Some(mark) = &mut self.state.rollback {
            mark.pending = false;
        }
        self.save().await
    }
}

/// The window of the delivery metrics on `/metrics`.
const DORA_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

impl Writer<'_> {
    /// A deployment finished: kept for the delivery metrics, and their gauges updated.
    pub(super) fn delivered(&mut self, succeeded: bool, lead_seconds: Option<u64>) {
        let now = self.ctx.now();
        self.state.deliveries.insert(
            0,
            crate::model::dora::Delivery {
                at: now,
                succeeded,
                lead_seconds,
            },
        );
        self.state.deliveries.truncate(crate::model::dora::KEPT);
        let figures = crate::model::dora::figures(&self.state.deliveries, now, DORA_WINDOW);
        self.ctx.metrics.dora(self.key, &figures);
    }
}
