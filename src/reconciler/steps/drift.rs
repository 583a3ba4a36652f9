//! Carrying out a drift check of the deployed release (a Terraform environment with
//! `drift_check`): started, followed by requeue, and its finding kept in the state
//! (`plan_drift`), where `relctl status`, the page and `relctl_drifted_environments`
//! show it. A check never blocks a worker, never changes what is deployed, and gives
//! way to a deployment.

use std::time::Duration;

use tracing::{info, warn};

use super::Steps;
use crate::{
    actuator::{DriftCheck, Run as ActuatorRun},
    metrics::ActuatorLabels,
    model::{Images, IntentRef, state::PlanDrift},
    reconciler::{Action, Error},
};

/// How soon a check whose actuator call failed is tried again.
const AFTER_ERROR: Duration = Duration::from_secs(30);

impl Steps<'_> {
    pub(super) async fn check_drift(
        &mut self,
        intent: &IntentRef,
        images: &Images,
        handle: Option<String>,
    ) -> Result<Option<Action>, Error> {
        let Some(actuator) = self.adapters.actuator.clone() else {
            return Ok(Some(Action::Done));
        };
        let pinned = Default::default();
        let run = ActuatorRun {
            key: self.key,
            intent,
            images,
            moved: &[],
            pinned: &pinned,
        };
        let checked = match actuator.check_drift(&run, handle.as_deref()).await {
            Ok(checked) => checked,
            Err(error) => {
                warn!(%error, "the drift check could not be started or followed");
                let plan = self
                    .writer
                    .state
                    .plan_drift
                    .get_or_insert_with(Default::default);
                let why = format!("the drift check could not be started or followed: {error}");
                if plan.error.as_deref() != Some(why.as_str()) {
                    plan.error = Some(why);
                    self.writer.save().await?;
                }
                // What no retry can fix waits for the next interval.
                let after = match error.class() {
                    crate::aws::ErrorClass::Permanent => {
                        actuator.drift_every().unwrap_or(AFTER_ERROR)
                    }
                    _ => AFTER_ERROR,
                };
                return Ok(Some(Action::RequeueAfter(after)));
            }
        };
        match checked {
            DriftCheck::Running { run, after } => {
                if handle.as_deref() != Some(run.as_str()) {
                    info!(run_id = run, "drift check started");
                    let plan = self
                        .writer
                        .state
                        .plan_drift
                        .get_or_insert_with(Default::default);
                    plan.run = Some(run);
                    self.writer.save().await?;
                }
                Ok(Some(Action::RequeueAfter(after)))
            }
            DriftCheck::Busy { after } => Ok(Some(Action::RequeueAfter(after))),
            DriftCheck::Ended(result) => {
                let outcome = match &result {
                    Ok(None) => {
                        info!("drift check: the deployed release still describes what runs");
                        "clean"
                    }
                    Ok(Some(found)) => {
                        warn!(
                            found,
                            "drift check: the infrastructure drifted from the deployed release"
                        );
                        let before = self
                            .writer
                            .state
                            .plan_drift
                            .as_ref()
                            .and_then(|p| p.found.as_ref());
                        if before != Some(found) {
                            self.writer.tell(
                                intent,
                                "drift_found",
                                &format!("drift by plan: {found}"),
                            );
                        }
                        "drifted"
                    }
                    Err(why) => {
                        warn!(reason = why, "drift check failed");
                        "failed"
                    }
                };
                self.ctx
                    .metrics
                    .drift_checks
                    .get_or_create(&ActuatorLabels {
                        kind: actuator.kind(),
                        outcome,
                    })
                    .inc();
                let (found, error) = match result {
                    Ok(found) => (found, None),
                    // Could not tell: what the last check found still stands.
                    Err(why) => (
                        self.writer
                            .state
                            .plan_drift
                            .as_ref()
                            .and_then(|p| p.found.clone()),
                        Some(why),
                    ),
                };
                let drifted = found.is_some() || !self.writer.state.drift.is_empty();
                self.writer.state.plan_drift = Some(PlanDrift {
                    run: None,
                    release_id: Some(intent.release_id.clone()),
                    checked_at: Some(self.ctx.now()),
                    found,
                    error,
                });
                self.writer.save().await?;
                self.set_drifted(drifted);
                Ok(Some(Action::RequeueAfter(
                    actuator.drift_every().unwrap_or(Duration::from_secs(3600)),
                )))
            }
        }
    }
}
