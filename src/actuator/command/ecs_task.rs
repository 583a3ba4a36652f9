//! Runs as ECS tasks (`runner = { kind = "ecs_task", … }`): one task per run, started
//! from the runner's task definition with `relctl runner` as its command and the run's
//! environment as container overrides, under the task's own role — Terraform's
//! permissions live there, not on the controller.
//!
//! The run is claimed in the state table before RunTask, whose client token is derived
//! from the run (a retry, or a new leader after a crash between the two, gets the same
//! task back, never a second), and the task's ARN is recorded on the claim. The task is
//! followed by requeue with DescribeTasks; when it has stopped, the runner container's
//! exit code decides the outcome, and the tail of its awslogs stream (GetLogEvents)
//! goes into the status. Controllers come and go without touching it: a rolling deploy
//! of relctl no longer interrupts an apply, and the next leader follows the recorded
//! task. A superseded run is stopped with StopTask (SIGTERM: the runner interrupts
//! Terraform, which stops cleanly and releases its lock; ECS kills it after the task's
//! `stopTimeout`), and the next run of the environment starts only once that task is
//! `STOPPED`.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, TaskOverride,
};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{CommandActuator, LINE_CHARS, Mode, TAIL_BYTES, cut, runs::now_ms};
use crate::{
    actuator::{ActuatorError, Progress, Run, Start},
    config::runner::EcsTaskRunner,
    model::EnvKey,
    runner::{INTERRUPTED, PINNED_LINE, PLAN_LOST, SOURCE_FAILED, SOURCE_LINE, plan::PLAN_LINE},
    store::runs::RunRecord,
};

/// ECS refuses container overrides larger than this (names and values together).
const OVERRIDES_MAX: usize = 8192;
/// How long after a task stopped its last log lines may still be on their way.
const LOGS_SETTLE: Duration = Duration::from_secs(120);
/// How many lines of the output's end are read for the status.
const TAIL_LINES: i32 = 40;

/// The ECS and CloudWatch Logs clients of an `ecs_task` runner, and its configuration.
#[derive(Debug, Clone)]
pub struct EcsTasks {
    pub ecs: aws_sdk_ecs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub config: EcsTaskRunner,
}

/// What a task is doing, as DescribeTasks says.
pub(super) enum Seen {
    Running(String),
    Stopped {
        exit_code: Option<i32>,
        reason: String,
        /// How long ago it stopped, where ECS says.
        ago: Option<Duration>,
    },
    /// ECS no longer knows it (stopped tasks are forgotten after about an hour).
    Gone,
}

/// The task's id: the last part of its ARN.
fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl EcsTasks {
    /// RunTask's idempotency token for a run of `key`: at most 64 characters, and the
    /// same for every attempt at that run.
    fn client_token(key: &EnvKey, run_id: &str) -> String {
        let digest = Sha256::digest(format!("{key}\n{run_id}"));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn run_task(
        &self,
        token: &str,
        run_id: &str,
        env: Vec<(String, String)>,
    ) -> Result<String, ActuatorError> {
        // As ECS counts it: the overrides' JSON, names, values and their quoting.
        let size: usize = env
            .iter()
            .map(|(k, v)| {
                let escaped = v.chars().filter(|c| matches!(c, '"' | '\\')).count();
                k.len() + v.len() + escaped + r#"{"name":"","value":""},"#.len()
            })
            .sum::<usize>()
            + self
                .config
                .command
                .iter()
                .map(|c| c.len() + 3)
                .sum::<usize>()
            + 64;
        if size > OVERRIDES_MAX {
            return Err(ActuatorError::Refused(format!(
                "the run's environment is {size} bytes; ECS takes at most {OVERRIDES_MAX} in a task's overrides (a release with fewer images, or less `env`, fits)"
            )));
        }
        let c = &self.config;
        let container = ContainerOverride::builder()
            .name(&c.container)
            .set_command(Some(c.command.clone()))
            .set_environment(Some(
                env.into_iter()
                    .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
                    .collect(),
            ))
            .build();
        let mut request = self
            .ecs
            .run_task()
            .cluster(&c.cluster)
            .task_definition(&c.task_definition)
            .count(1)
            .started_by(run_id)
            .client_token(token)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(container)
                    .build(),
            );
        if !c.launch_type.is_empty() {
            request = request.launch_type(LaunchType::from(c.launch_type.as_str()));
        }
        if !c.subnets.is_empty() {
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(c.subnets.clone()))
                .set_security_groups(Some(c.security_groups.clone()))
                .assign_public_ip(if c.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| {
                    ActuatorError::Refused(format!("the runner's network configuration: {e}"))
                })?;
            request = request.network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            );
        }
        let output = request
            .send()
            .await
            .map_err(|e| ActuatorError::aws("RunTask", e))?;
        if let Some(task) = output.tasks().first()
            && let Some(arn) = task.task_arn()
        {
            return Ok(arn.to_owned());
        }
        let why: Vec<String> = output
            .failures()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.reason().unwrap_or("unknown"),
                    f.detail().unwrap_or_default()
                )
            })
            .collect();
        Err(ActuatorError::Refused(format!(
            "ECS did not start the runner task from {} in {}: {}",
            c.task_definition,
            c.cluster,
            why.join("; ")
        )))
    }

    pub(super) async fn describe(&self, arn: &str) -> Result<Seen, ActuatorError> {
        let output = self
            .ecs
            .describe_tasks()
            .cluster(&self.config.cluster)
            .tasks(arn)
            .send()
            .await
            .map_err(|e| ActuatorError::aws("DescribeTasks", e))?;
        let Some(task) = output.tasks().iter().find(|t| t.task_arn() == Some(arn)) else {
            return Ok(Seen::Gone);
        };
        let status = task.last_status().unwrap_or("PENDING");
        if status != "STOPPED" {
            return Ok(Seen::Running(status.to_owned()));
        }
        let container = task
            .containers()
            .iter()
            .find(|c| c.name() == Some(self.config.container.as_str()));
        let mut reason = task.stopped_reason().unwrap_or_default().to_owned();
        if let Some(why) = container.and_then(|c| c.reason()) {
            reason = format!("{reason} ({why})");
        }
        let ago = task.stopped_at().and_then(|at| {
            let at = std::time::UNIX_EPOCH + Duration::from_secs(at.secs().max(0) as u64);
            std::time::SystemTime::now().duration_since(at).ok()
        });
        Ok(Seen::Stopped {
            exit_code: container.and_then(|c| c.exit_code()),
            reason,
            ago,
        })
    }

    /// The task still running `run_id` (recorded, or found by `startedBy` when a crash
    /// came between RunTask and recording it), if one is not yet `STOPPED`.
    async fn live_task(&self, record: &RunRecord) -> Result<Option<String>, ActuatorError> {
        if let Some(arn) = &record.task_arn
            && matches!(self.describe(arn).await?, Seen::Running(_))
        {
            return Ok(Some(arn.clone()));
        }
        if record.run_id.is_empty() {
            return Ok(None);
        }
        Ok(self.started_for(&record.run_id).await?.into_iter().next())
    }

    async fn stop(&self, arn: &str, reason: &str) -> Result<(), ActuatorError> {
        self.ecs
            .stop_task()
            .cluster(&self.config.cluster)
            .task(arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| ActuatorError::aws("StopTask", e))?;
        Ok(())
    }

    /// Tasks started for `run_id` that have not stopped (ListTasks takes `startedBy` as
    /// its only filter: tasks whose desired status is RUNNING).
    async fn started_for(&self, run_id: &str) -> Result<Vec<String>, ActuatorError> {
        let listed = self
            .ecs
            .list_tasks()
            .cluster(&self.config.cluster)
            .started_by(run_id)
            .send()
            .await
            .map_err(|e| ActuatorError::aws("ListTasks", e))?;
        let mut found = Vec::new();
        for arn in listed.task_arns() {
            if matches!(self.describe(arn).await?, Seen::Running(_)) {
                found.push(arn.clone());
            }
        }
        Ok(found)
    }

    /// The first line of the task's output (where the runner says the source's
    /// revision) and its last lines.
    /// The revision the runner said first, the output's tail for people, and the last
    /// lines as written (the runner's own lines are read from these).
    pub(super) async fn output(&self, arn: &str) -> (Option<String>, Vec<String>, Vec<String>) {
        let stream = format!(
            "{}/{}/{}",
            self.config.log_stream_prefix,
            self.config.container,
            task_id(arn)
        );
        let read = |head: bool, limit: i32| {
            self.logs
                .get_log_events()
                .log_group_name(&self.config.log_group)
                .log_stream_name(&stream)
                .start_from_head(head)
                .limit(limit)
                .send()
        };
        let lines =
            |output: aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput| {
                output
                    .events()
                    .iter()
                    .filter_map(|e| e.message())
                    .map(|m| cut(&super::follow::strip_ansi(m.trim_end()), LINE_CHARS))
                    .collect::<Vec<String>>()
            };
        let first = match read(true, 1).await {
            Ok(output) => lines(output).into_iter().next(),
            Err(error) => {
                warn!(stream, error = %crate::aws::AwsError::from_sdk(error), "cannot read the runner task's output");
                return (None, Vec::new(), Vec::new());
            }
        };
        let raw: Vec<String> = match read(false, TAIL_LINES).await {
            Ok(output) => output
                .events()
                .iter()
                .filter_map(|e| e.message())
                .map(|m| m.trim_end().to_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut tail: Vec<String> = raw
            .iter()
            .map(|m| cut(&super::follow::strip_ansi(m), LINE_CHARS))
            .collect();
        while tail.iter().map(|l| l.len() + 1).sum::<usize>() > TAIL_BYTES {
            tail.remove(0);
        }
        let revision = first.and_then(|l| l.strip_prefix(SOURCE_LINE).map(str::to_owned));
        (revision, tail, raw)
    }
}

impl CommandActuator {
    pub(super) async fn start_task(
        &self,
        tasks: &EcsTasks,
        run: &Run<'_>,
        run_id: String,
        mode: Mode,
    ) -> Result<Start, ActuatorError> {
        let store = &self.runs.store;
        let mut recorded = store.run(run.key).await.map_err(|e| self.store_error(e))?;
        // An approved plan's apply claimed, its task not recorded (RunTask failed, or a
        // crash came between): adopt the task if it started; else the run is over,
        // and the plan is made again (for a new approval) by the claim below.
        if recorded.as_ref().is_some_and(|r| {
            r.run_id == run_id
                && r.state == "running"
                && r.task_arn.is_none()
                && r.run_mode.as_deref() == Some("apply")
        }) {
            if let Some(arn) = tasks.started_for(&run_id).await?.into_iter().next() {
                store
                    .set_run_task(run.key, &run_id, &arn)
                    .await
                    .map_err(|e| self.store_error(e))?;
                return Ok(Start::Started(run_id));
            }
            store
                .finish_run(
                    run.key,
                    &run_id,
                    "interrupted",
                    "the approved plan's apply did not start",
                    now_ms(),
                )
                .await
                .map_err(|e| self.store_error(e))?;
            recorded = store.run(run.key).await.map_err(|e| self.store_error(e))?;
        }
        if let Some(record) = &recorded {
            if record.run_id == run_id && record.state == "running" {
                if record.task_arn.is_some() {
                    // A retry, or a new leader: follow the task already started.
                    return Ok(Start::Started(run_id));
                }
                // Claimed, the task perhaps started but not recorded (a crash between
                // the two): RunTask again with the claim's own token gets that task
                // back rather than a second one. (An approved plan's apply is not
                // started again from here: its plan is made again, for a new approval.)
                let claimed = match record.run_mode.as_deref() {
                    Some("plan") => Mode::Plan,
                    Some("drift") => Mode::Drift,
                    _ => Mode::Whole,
                };
                return self
                    .run_claimed(tasks, run, &run_id, record.started_ms, claimed)
                    .await;
            }
            if let Some(arn) = tasks.live_task(record).await? {
                // A drift check gives way to a deployment.
                if record.run_mode.as_deref() == Some("drift") && mode != Mode::Drift {
                    info!(
                        run_id = record.run_id,
                        "stopping a drift check for a deployment"
                    );
                    tasks
                        .stop(&arn, "a deployment needs the environment (relctl)")
                        .await?;
                }
                return Ok(Start::Busy(Progress::Waiting {
                    after: tasks.config.poll_interval,
                    message: format!(
                        "waiting for the runner task {} of the run {} to stop",
                        task_id(&arn),
                        record.run_id
                    ),
                }));
            }
        }
        // No task is live: claim the slot over the record as read, so of two leaders
        // that both found it free only one starts a task.
        let now = now_ms();
        let images = (mode == Mode::Plan).then(|| crate::model::images_digest(run.images));
        let claim = crate::store::runs::NewClaim {
            run_id: &run_id,
            owner: &self.runs.owner,
            now_ms: now,
            mode: mode.name(),
            // What the plan is made with: its approval is of these images.
            images: images.as_deref(),
        };
        let claimed = store
            .claim_run_replacing(run.key, claim, recorded.as_ref())
            .await
            .map_err(|e| self.store_error(e))?;
        if !claimed {
            return Ok(Start::Busy(Progress::Waiting {
                after: Duration::from_secs(1),
                message: "another controller claimed this environment's run meanwhile".into(),
            }));
        }
        self.run_claimed(tasks, run, &run_id, now, mode).await
    }

    /// Starts the task of the run claimed at `claimed_ms` (its token: the same for a
    /// retry of that claim, new for a new claim) and records it.
    pub(super) async fn run_claimed(
        &self,
        tasks: &EcsTasks,
        run: &Run<'_>,
        run_id: &str,
        claimed_ms: i64,
        mode: Mode,
    ) -> Result<Start, ActuatorError> {
        let env = self.environment(run, None, &mode)?;
        let token = EcsTasks::client_token(run.key, &format!("{run_id}@{claimed_ms}"));
        let arn = tasks.run_task(&token, run_id, env).await?;
        info!(run_id, task = arn, "runner task started");
        let recorded = self
            .runs
            .store
            .set_run_task(run.key, run_id, &arn)
            .await
            .map_err(|e| self.store_error(e))?;
        if !recorded {
            // The slot went to another run meanwhile: this task must not run.
            warn!(
                run_id,
                task = arn,
                "the run's claim was taken over; stopping its task"
            );
            tasks
                .stop(&arn, "its run's claim was taken over (relctl)")
                .await?;
            return Ok(Start::Busy(Progress::Waiting {
                after: Duration::from_secs(1),
                message: "another run holds this environment".into(),
            }));
        }
        Ok(Start::Started(run_id.to_owned()))
    }

    pub(super) async fn check_task(
        &self,
        tasks: &EcsTasks,
        run: &Run<'_>,
        handle: &str,
    ) -> Result<Progress, ActuatorError> {
        let store = &self.runs.store;
        let record = store.run(run.key).await.map_err(|e| self.store_error(e))?;
        let Some(record) = record.filter(|r| r.run_id == handle) else {
            return self.restart(run).await;
        };
        match record.state.as_str() {
            "succeeded" => {
                return Ok(Progress::Done {
                    message: record.message.unwrap_or_default(),
                });
            }
            "failed" => {
                return Ok(Progress::Failed {
                    message: record.message.unwrap_or_default(),
                });
            }
            "planned" => {
                let message = record.message.unwrap_or_default();
                let (digest, summary) = message.split_once(' ').unwrap_or((&message, ""));
                return Ok(self.awaiting_approval(run, digest, summary));
            }
            _ => {}
        }
        let Some(arn) = record.task_arn.clone() else {
            // Claimed, but the task was never recorded (a crash between the two): start
            // it, with the same token — ECS answers with the task if it exists.
            return self.restart(run).await;
        };
        let mut stopped_ago = None;
        let (exit_code, reason) = match tasks.describe(&arn).await? {
            Seen::Running(status) => {
                let _ = store.heartbeat_run(run.key, handle, now_ms()).await;
                return Ok(Progress::Waiting {
                    after: tasks.config.poll_interval,
                    message: format!(
                        "applying in ECS task {}: {}",
                        task_id(&arn),
                        status.to_lowercase()
                    ),
                });
            }
            Seen::Gone => (None, "ECS no longer knows the task".to_owned()),
            Seen::Stopped {
                exit_code,
                reason,
                ago,
            } => {
                stopped_ago = ago;
                (exit_code, reason)
            }
        };
        let (revision, tail, raw) = tasks.output(&arn).await;
        let fetched = revision.is_some();
        let on = revision.map(|r| format!(" on {r}")).unwrap_or_default();
        let task = task_id(&arn);
        let planning = record.run_mode.as_deref() == Some("plan");
        if exit_code == Some(0) && planning {
            // awslogs delivers a stopped task's last lines a little after it stopped.
            let settling = stopped_ago.is_some_and(|ago| ago < LOGS_SETTLE);
            return self
                .planned_by_task(
                    run,
                    handle,
                    &raw,
                    &on,
                    settling,
                    record.plan_images.as_deref(),
                )
                .await;
        }
        // The runner's "plan lost" is said before any command runs; a command's own
        // exit status 4 is not it.
        let ran = raw
            .iter()
            .any(|l| l.starts_with("relctl runner: running `"));
        if exit_code == Some(PLAN_LOST) && record.run_mode.as_deref() == Some("apply") && !ran {
            warn!(
                run_id = handle,
                task, "the approved plan was gone when its apply started; planning again"
            );
            let _ = store
                .finish_run(
                    run.key,
                    handle,
                    "interrupted",
                    "the approved plan was gone",
                    now_ms(),
                )
                .await;
            return self.restart(run).await;
        }
        let (state, message) = match exit_code {
            Some(0) if record.run_mode.as_deref() == Some("apply") => (
                "succeeded",
                format!("applied the approved plan{on} (ECS task {task})"),
            ),
            Some(0) => {
                let message = format!(
                    "{} commands succeeded{on} (ECS task {task})",
                    self.steps().len()
                );
                ("succeeded", message)
            }
            Some(INTERRUPTED) => {
                warn!(
                    run_id = handle,
                    task, "the runner task was stopped before it finished"
                );
                let _ = store
                    .finish_run(run.key, handle, "interrupted", &reason, now_ms())
                    .await;
                return self.restart(run).await;
            }
            Some(SOURCE_FAILED) if !fetched => {
                let why = tail
                    .iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("relctl runner: "))
                    .unwrap_or("(no reason given)");
                let message = format!(
                    "the module's source could not be fetched, so nothing ran (ECS task {task}): {why}"
                );
                ("failed", message)
            }
            code => {
                let status = code.map_or("did not run to an exit code".to_owned(), |c| {
                    format!("exit status {c}")
                });
                let output = tail.join("\n");
                let unlock = super::lock::unlock_hint(&output, run.key);
                let message = format!(
                    "the commands failed ({status}){on} in ECS task {task}: {reason}{unlock}; last output (at most {TAIL_BYTES} bytes; all of it is in {}):\n{output}",
                    tasks.config.log_group,
                );
                ("failed", message)
            }
        };
        info!(run_id = handle, task, outcome = state, "runner task ended");
        store
            .finish_run(run.key, handle, state, &message, now_ms())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(if state == "succeeded" {
            Progress::Done { message }
        } else {
            Progress::Failed { message }
        })
    }

    /// A plan task ended well: its plan (digest, summary) and source revision, read from
    /// the runner's last lines, are recorded, and the run waits for its approval.
    async fn planned_by_task(
        &self,
        run: &Run<'_>,
        handle: &str,
        raw: &[String],
        on: &str,
        settling: bool,
        planned_with: Option<&str>,
    ) -> Result<Progress, ActuatorError> {
        let last = |prefix: &str| {
            raw.iter()
                .rev()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        };
        let Some((digest, summary)) = last(PLAN_LINE).and_then(|p| {
            p.split_once(' ')
                .map(|(d, s)| (d.to_owned(), format!("{s}{on}")))
        }) else {
            if settling {
                return Ok(Progress::Waiting {
                    after: Duration::from_secs(5),
                    message: "reading the plan task's output".into(),
                });
            }
            let message = "the plan task ended without saying which plan it kept".to_owned();
            let _ = self
                .runs
                .store
                .finish_run(run.key, handle, "failed", &message, now_ms())
                .await;
            return Ok(Progress::Failed { message });
        };
        let store = &self.runs.store;
        store
            .set_run_plan(
                run.key,
                handle,
                // The images the task was started with (recorded with its claim).
                planned_with.unwrap_or("unknown"),
                last(PINNED_LINE).as_deref(),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        store
            .finish_run(
                run.key,
                handle,
                "planned",
                &format!("{digest} {summary}"),
                now_ms(),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(self.awaiting_approval(run, &digest, &summary))
    }

    pub(super) async fn stop_task(
        &self,
        tasks: &EcsTasks,
        key: &EnvKey,
        handle: &str,
    ) -> Result<(), ActuatorError> {
        let record = self
            .runs
            .store
            .run(key)
            .await
            .map_err(|e| self.store_error(e))?;
        // The recorded task, and any started for the run but not recorded (a crash
        // between RunTask and the record).
        let mut arns = tasks.started_for(handle).await?;
        if let Some(arn) = record
            .filter(|r| r.run_id == handle)
            .and_then(|r| r.task_arn)
            && !arns.contains(&arn)
        {
            arns.push(arn);
        }
        for arn in arns {
            info!(
                run_id = handle,
                task = arn,
                "stopping a superseded runner task"
            );
            tasks
                .stop(&arn, "superseded by a newer deployment (relctl)")
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_token_fits_ecs_and_differs_per_environment() {
        let a = EcsTasks::client_token(&EnvKey::new("p", "stage"), "relctl-1-r1");
        let b = EcsTasks::client_token(&EnvKey::new("p", "prod"), "relctl-1-r1");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(
            a,
            EcsTasks::client_token(&EnvKey::new("p", "stage"), "relctl-1-r1")
        );
    }

    #[test]
    fn a_task_id_is_the_end_of_its_arn() {
        assert_eq!(
            task_id("arn:aws:ecs:eu-west-1:1:task/runners/abc123"),
            "abc123"
        );
    }
}
