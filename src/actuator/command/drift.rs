//! The drift check of a Terraform environment (`drift_check = "6h"`): the deployed
//! release planned again in a run of its own — a child `relctl runner` or an ECS task,
//! like any run, claiming the environment's run slot — with the set-up commands and
//! `terraform plan -detailed-exitcode -lock=false`. Exit 0: nothing would change; 2:
//! the infrastructure drifted from the release (what the plan would change is read from
//! Terraform's own output); anything else: the check could not tell. A deployment that
//! finds a drift check holding the slot interrupts it (see [`super::CommandActuator`]).

use std::time::Duration;

use super::{
    CommandActuator, Mode,
    ecs_task::{EcsTasks, Seen},
    runs::{LocalState, now_ms},
};
use crate::actuator::{ActuatorError, DriftCheck, Run, Start};

/// How soon a running check is looked at again.
const POLL: Duration = Duration::from_secs(5);
/// How soon a check that found the environment busy tries again.
const BUSY: Duration = Duration::from_secs(30);
/// The plan's addresses named in a finding; beyond that, a count.
const NAMED: usize = 10;

/// What a drift plan's output says it would change.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// Terraform's `Plan: 1 to add, 2 to change, 0 to destroy.`
    plan: Option<String>,
    addresses: Vec<String>,
    more: usize,
}

impl Findings {
    /// Takes in one output line (control characters already stripped).
    pub(super) fn see(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Plan: ") {
            self.plan = Some(rest.trim_end_matches('.').to_owned());
            return;
        }
        // `# aws_s3_object.page will be updated in-place`, `… must be replaced`.
        let Some(rest) = line.strip_prefix("# ") else {
            return;
        };
        let Some(address) = [" will be ", " must be "]
            .iter()
            .find_map(|verb| rest.split_once(verb).map(|(a, _)| a))
        else {
            return;
        };
        if self.addresses.len() < NAMED {
            self.addresses.push(address.to_owned());
        } else {
            self.more += 1;
        }
    }

    /// In words: `1 to add, 0 to change, 0 to destroy (null_resource.a, …)`.
    pub(super) fn summary(&self) -> String {
        let mut text = self
            .plan
            .clone()
            .unwrap_or_else(|| "the plan has changes".into());
        if !self.addresses.is_empty() {
            let mut named = self.addresses.join(", ");
            if self.more > 0 {
                named.push_str(&format!(" and {} more", self.more));
            }
            text.push_str(&format!(" ({named})"));
        }
        text
    }
}

/// How a drift check's runner ended, from its exit status and whether every command
/// started (an exit status 2 from `terraform init` is not the plan's).
pub(super) fn ended(
    code: Option<i32>,
    all_ran: bool,
    findings: &Findings,
) -> Result<Option<String>, String> {
    match code {
        Some(0) => Ok(None),
        Some(2) if all_ran => Ok(Some(findings.summary())),
        Some(code) => Err(format!(
            "the drift check's commands failed (exit status {code})"
        )),
        None => Err("the drift check's runner was killed".into()),
    }
}

impl CommandActuator {
    pub(super) async fn drift(
        &self,
        run: &Run<'_>,
        handle: Option<&str>,
    ) -> Result<DriftCheck, ActuatorError> {
        let Some(handle) = handle else {
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
        let mut started = 0;
        for line in &raw {
            findings.see(&super::follow::strip_ansi(line));
            started += usize::from(line.starts_with("relctl runner: running `"));
        }
        let result = ended(
            code,
            started == self.commands_for(&Mode::Drift).len(),
            &findings,
        );
        let (state, message) = match &result {
            Ok(None) => ("succeeded", "no drift: the plan changes nothing".to_owned()),
            Ok(Some(found)) => ("drifted", found.clone()),
            Err(why) => ("failed", why.clone()),
        };
        store
            .finish_run(run.key, handle, state, &message, now_ms())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(DriftCheck::Ended(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_s_output_says_what_drifted() {
        let mut findings = Findings::default();
        for line in [
            "Terraform will perform the following actions:",
            "  # terraform_data.page will be updated in-place",
            "  # aws_s3_object.a must be replaced",
            "# not an address",
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ] {
            findings.see(line);
        }
        assert_eq!(
            findings.summary(),
            "0 to add, 1 to change, 0 to destroy (terraform_data.page, aws_s3_object.a)"
        );
        assert_eq!(
            ended(Some(2), true, &findings),
            Ok(Some(findings.summary()))
        );
        assert_eq!(ended(Some(0), true, &findings), Ok(None));
        // `terraform init` exiting 2 is a failure, not drift.
        assert!(ended(Some(2), false, &findings).is_err());
        assert!(ended(None, true, &findings).is_err());
    }

    #[test]
    fn a_finding_names_at_most_a_handful_of_addresses() {
        let mut findings = Findings::default();
        for i in 0..13 {
            findings.see(&format!("  # null_resource.r{i} will be created"));
        }
        let summary = findings.summary();
        assert!(
            summary.starts_with("the plan has changes (null_resource.r0,"),
            "{summary}"
        );
        assert!(
            summary.ends_with("null_resource.r9 and 3 more)"),
            "{summary}"
        );
    }
}
