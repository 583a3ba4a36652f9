//! The drift check of a Terraform environment (`drift_check = "6h"`): the deployed
//! release planned again in a run of its own — a child `relctl runner` or an ECS task,
//! like any run, claiming the environment's run slot — with the set-up commands and
//! `terraform plan -detailed-exitcode -lock=false`. Exit 0: nothing would change; 2:
//! the infrastructure drifted from the release (what the plan would change is read from
//! Terraform's own output); anything else: the check could not tell. A deployment that
//! finds a drift check holding the slot interrupts it (see [`super::CommandActuator`]).

use std::time::Duration;

use tracing::warn;

use super::{
    CommandActuator, Mode,
    ecs_task::{EcsTasks, Seen},
    findings::{Findings, ended},
    runs::{LocalState, now_ms},
};
use crate::actuator::{ActuatorError, DriftCheck, Run, Start};

/// How soon a running check is looked at again.
const POLL: Duration = Duration::from_secs(5);
/// How soon a check that found the environment busy tries again.
const BUSY: Duration = Duration::from_secs(30);

impl CommandActuator {
    pub(super) async fn drift(
        &self,
        run: &Run<'_>,
        handle: Option<&str>,
    ) -> Result<DriftCheck, ActuatorError> {
        let recorded = self
            .runs
            .store
            .run(run.key)
            .await
            .map_err(|e| self.store_error(e))?;
        let Some(handle) = handle else {
            // A check started but not kept in the state (a crash, a failed write): follow
            // it rather than wait for it to end and start another.
            if let Some(r) = recorded.as_ref().filter(|r| {
                r.run_mode.as_deref() == Some("drift")
                    && r.state == "running"
                    && match &self.tasks {
                        Some(_) => r.task_arn.is_some(),
                        None => self.runs.local().contains_key(&r.run_id),
                    }
            }) {
                return Ok(DriftCheck::Running {
                    run: r.run_id.clone(),
                    after: POLL,
                });
            }
            let run_id = format!("relctl-drift-{}", now_ms());
            let started = match &self.tasks {
                Some(tasks) => self.start_task(tasks, run, run_id, Mode::Drift).await?,
                None => self.start_local(run, run_id, Mode::Drift).await?,
            };
            return Ok(match started {
                Start::Started(run) => DriftCheck::Running { run, after: POLL },
                Start::Busy(_) => DriftCheck::Busy { after: BUSY },
            });
        };
        // A check that hangs would hold the slot (and every later check) back.
        if let Some(r) = recorded.as_ref().filter(|r| {
            r.run_id == handle
                && r.state == "running"
                && now_ms() - r.started_ms > self.timeout.as_millis() as i64
        }) {
            let why = format!(
                "the drift check took longer than the actuator's timeout ({}); stopped",
                humantime::format_duration(self.timeout)
            );
            warn!(run_id = r.run_id, "{why}");
            use crate::actuator::Actuator as _;
            self.stop(run.key, handle).await?;
            self.runs
                .store
                .finish_run(run.key, handle, "failed", &why, now_ms())
                .await
                .map_err(|e| self.store_error(e))?;
            self.runs.local().remove(handle);
            return Ok(DriftCheck::Ended(Err(why)));
        }
        if let Some(tasks) = &self.tasks {
            return self.drift_task(tasks, run, handle).await;
        }
        let local = self.runs.local().get(handle).map(|l| l.state.clone());
        match local {
            Some(LocalState::Running { .. }) => {
                self.beat(run.key, handle).await?;
                Ok(DriftCheck::Running {
                    run: handle.to_owned(),
                    after: POLL,
                })
            }
            Some(finished) => {
                self.runs.local().remove(handle);
                Ok(DriftCheck::Ended(match finished {
                    LocalState::Succeeded(_) => Ok(None),
                    LocalState::Drifted(found) => Ok(Some(found)),
                    LocalState::Failed(why) => Err(why),
                    _ => Err("the drift check was interrupted".into()),
                }))
            }
            None => self.drift_recorded(run, handle).await,
        }
    }

    /// A check this controller does not follow (a restart): its record says how it
    /// ended, or that it is lost.
    async fn drift_recorded(
        &self,
        run: &Run<'_>,
        handle: &str,
    ) -> Result<DriftCheck, ActuatorError> {
        let record = self
            .runs
            .store
            .run(run.key)
            .await
            .map_err(|e| self.store_error(e))?
            .filter(|r| r.run_id == handle);
        let Some(record) = record else {
            return Ok(DriftCheck::Ended(Err(
                "the drift check's run is gone".into()
            )));
        };
        let message = record.message.clone().unwrap_or_default();
        Ok(match record.state.as_str() {
            "succeeded" => DriftCheck::Ended(Ok(None)),
            "drifted" => DriftCheck::Ended(Ok(Some(message))),
            "failed" => DriftCheck::Ended(Err(message)),
            "running" if record.heartbeat_ms >= self.runs.stale_before_ms(self.grace) => {
                DriftCheck::Busy { after: BUSY }
            }
            _ => DriftCheck::Ended(Err("the drift check did not finish".into())),
        })
    }

    /// A check in an ECS task: followed by its record and DescribeTasks, its finding
    /// read from the task's log once it stopped.
    async fn drift_task(
        &self,
        tasks: &EcsTasks,
        run: &Run<'_>,
        handle: &str,
    ) -> Result<DriftCheck, ActuatorError> {
        let store = &self.runs.store;
        let record = store
            .run(run.key)
            .await
            .map_err(|e| self.store_error(e))?
            .filter(|r| r.run_id == handle);
        let Some(record) = record else {
            return Ok(DriftCheck::Ended(Err(
                "the drift check's run is gone".into()
            )));
        };
        if record.state != "running" {
            return self.drift_recorded(run, handle).await;
        }
        let Some(arn) = record.task_arn.clone() else {
            // Claimed, the task not recorded: RunTask again with the claim's own token.
            return Ok(
                match self
                    .run_claimed(tasks, run, handle, record.started_ms, Mode::Drift)
                    .await?
                {
                    Start::Started(run) => DriftCheck::Running { run, after: POLL },
                    Start::Busy(_) => DriftCheck::Busy { after: BUSY },
                },
            );
        };
        let code = match tasks.describe(&arn).await? {
            Seen::Running(_) => {
                let _ = store.heartbeat_run(run.key, handle, now_ms()).await;
                return Ok(DriftCheck::Running {
                    run: handle.to_owned(),
                    after: tasks.config.poll_interval,
                });
            }
            Seen::Gone => None,
            Seen::Stopped { exit_code, .. } => exit_code,
        };
        let (_, _, raw) = tasks.output(&arn).await;
        let mut findings = Findings::default();
        for line in &raw {
            findings.see(&super::follow::strip_ansi(line));
        }
        let (state, message, result) = ended(code, &findings).record();
        store
            .finish_run(run.key, handle, state, &message, now_ms())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(DriftCheck::Ended(result))
    }
}
