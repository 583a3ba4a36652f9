//! The Terraform actuator, or any list of commands, run by `relctl runner` in a
//! process of its own (see [`crate::runner`]) with `RELCTL_PROJECT`, `RELCTL_ENVIRONMENT`,
//! `RELCTL_RELEASE_ID` and `RELCTL_IMAGES` (JSON service → URI) in its environment, and
//! the same as `TF_VAR_relctl_project` … `TF_VAR_relctl_images`.
//!
//! At most one run per environment at a time, across replicas and restarts: the run
//! is claimed in the state table before the process starts ([`crate::store::runs`]),
//! its heartbeat refreshed while this controller follows it, its end recorded. The
//! runner stops by itself (gracefully: SIGINT, then SIGTERM, then SIGKILL) when this
//! controller stops sending it keepalives — because it died, was paused, or lost the
//! lease — so a run whose heartbeat is older than that is known to be over, and only
//! then may another start. A superseded run, and on shutdown one still going after
//! `drain_timeout`, is interrupted the same way and recorded `interrupted`; the next
//! leader runs it again. Output lines are logged; what a status message carries of
//! them is bounded.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::{
    process::{Child, Command},
    time::Instant,
};
use tracing::{Instrument, info, warn};

use super::{Actuator, ActuatorError, Progress, Run, Start};

pub mod commands;
mod drift;
pub mod ecs_task;
mod findings;
mod follow;
pub mod lock;
mod runs;
use crate::{
    model::EnvKey,
    runner::{JOB_ENV, Job, plan::PlanStep},
    store::runs::{Claim, RunRecord},
};
use commands::Mode;
use follow::{cut, follow};
use runs::{Local, LocalState, now_ms, signal};
pub use runs::{Runs, settle};

/// What a status message carries of the output: the last lines, at most this many
/// bytes, cut at a line boundary.
const TAIL_BYTES: usize = 2048;
/// One output line kept for a status message is cut to this many characters.
const LINE_CHARS: usize = 300;
/// How often the heartbeat of a followed run is written.
const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct CommandActuator {
    /// The module's directory, or with a `source` the scratch directory it is unpacked in.
    pub dir: PathBuf,
    pub source: Option<crate::runner::source::SourceConfig>,
    /// Where sources are unpacked and plans kept between plan and apply.
    pub scratch: PathBuf,
    /// The controller's region, handed to a runner that fetches its source.
    pub region: Option<String>,
    /// Runs as ECS tasks (`runner = { kind = "ecs_task" }`); none: child processes.
    pub tasks: Option<ecs_task::EcsTasks>,
    /// A protected environment: each run plans first, and applies the plan only once
    /// it is approved (see `crate::runner::plan`).
    pub plan_approval: bool,
    pub commands: Vec<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// After the commands, `terraform plan -detailed-exitcode` must exit 0.
    pub verify_plan: bool,
    /// How often the deployed release is planned again to find drift.
    pub drift_check: Option<Duration>,
    /// How long an interrupted command gets to stop cleanly before SIGTERM.
    pub grace: Duration,
    pub runs: Arc<Runs>,
}

impl CommandActuator {
    /// The runner's environment: the configured `env`, the run's `RELCTL_*` and
    /// `TF_VAR_relctl_*`, and the job; `keepalive` as the runner should watch for it.
    fn environment(
        &self,
        run: &Run<'_>,
        keepalive: Option<Duration>,
        mode: &Mode,
    ) -> Result<Vec<(String, String)>, ActuatorError> {
        let images = serde_json::to_string(run.images).map_err(|e| ActuatorError::Spawn {
            what: "commands".into(),
            source: e.into(),
        })?;
        let mut env = self.env.clone();
        // The same values as Terraform input variables: a module declares
        // `variable "relctl_images" {}` and needs no wrapper script.
        for (name, value) in [
            ("PROJECT", run.key.project.clone()),
            ("ENVIRONMENT", run.key.environment.clone()),
            ("RELEASE_ID", run.intent.release_id.clone()),
            ("IMAGES", images),
        ] {
            env.push((
                format!("TF_VAR_relctl_{}", name.to_lowercase()),
                value.clone(),
            ));
            env.push((format!("RELCTL_{name}"), value));
        }
        let source = match (&self.source, mode) {
            (
                _,
                Mode::Apply {
                    source: Some(pinned),
                    ..
                },
            ) => Some(pinned.clone()),
            (Some(source), _) => Some(source.for_run(run.key).map_err(ActuatorError::Refused)?),
            (None, _) => None,
        };
        if source.is_some()
            && let Some(region) = &self.region
            && std::env::var_os("AWS_REGION").is_none()
        {
            env.push(("AWS_REGION".into(), region.clone()));
        }
        let kept = self.plan_path(run.key, &run.token());
        let job = Job {
            dir: self.dir.clone(),
            source,
            commands: self.commands_for(mode),
            keepalive,
            grace: self.grace,
            plan: match mode {
                Mode::Whole | Mode::Drift => None,
                Mode::Plan => Some(PlanStep::Save { to: kept }),
                Mode::Apply { digest, .. } => Some(PlanStep::Load {
                    from: kept,
                    digest: digest.clone(),
                }),
            },
            drift: *mode == Mode::Drift,
        };
        let job = serde_json::to_string(&job).map_err(|e| ActuatorError::Spawn {
            what: "commands".into(),
            source: e.into(),
        })?;
        env.push((JOB_ENV.into(), job));
        Ok(env)
    }

    fn spawn(&self, run: &Run<'_>, run_id: &str, mode: &Mode) -> Result<Child, ActuatorError> {
        let exe = match &self.runs.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(|e| ActuatorError::Spawn {
                what: "relctl runner".into(),
                source: e.into(),
            })?,
        };
        Command::new(exe)
            .arg("runner")
            .envs(self.environment(run, Some(self.runs.keepalive), mode)?)
            .env_remove("RELCTL_FAILPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ActuatorError::Spawn {
                what: format!("the runner for {run_id} in {}", self.dir.display()),
                source: e.into(),
            })
    }

    fn store_error(&self, error: crate::store::StoreError) -> ActuatorError {
        ActuatorError::Spawn {
            what: "the run record".into(),
            source: Box::new(error),
        }
    }

    /// Writes the heartbeat of `handle`, a run this controller follows, when due.
    async fn beat(&self, key: &EnvKey, handle: &str) -> Result<(), ActuatorError> {
        let due = self
            .runs
            .local()
            .get(handle)
            .is_some_and(|l| l.heartbeat.elapsed() >= HEARTBEAT);
        if due {
            self.runs
                .store
                .heartbeat_run(key, handle, now_ms())
                .await
                .map_err(|e| self.store_error(e))?;
            if let Some(local) = self.runs.local().get_mut(handle) {
                local.heartbeat = Instant::now();
            }
        }
        Ok(())
    }

    /// Another run holds the environment: say which, and look again soon.
    fn busy(record: &RunRecord) -> Progress {
        Progress::Waiting {
            after: Duration::from_secs(5),
            message: format!(
                "waiting for the previous run of this environment ({} by {}) to end",
                record.run_id, record.owner
            ),
        }
    }
}

#[async_trait]
impl Actuator for CommandActuator {
    fn kind(&self) -> &'static str {
        "terraform"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError> {
        let run_id = run.token();
        let mode = if self.plan_approval {
            Mode::Plan
        } else {
            Mode::Whole
        };
        if let Some(tasks) = &self.tasks {
            return self.start_task(tasks, run, run_id, mode).await;
        }
        self.start_local(run, run_id, mode).await
    }

    fn approves_plans(&self) -> bool {
        self.plan_approval
    }

    async fn plan_ready(
        &self,
        run: &Run<'_>,
        handle: &str,
        digest: &str,
    ) -> Result<bool, ActuatorError> {
        Ok(self.approved_mode(run, handle, digest).await?.is_some())
    }

    async fn replan(&self, run: &Run<'_>) -> Result<Progress, ActuatorError> {
        self.restart(run).await
    }

    async fn approved(
        &self,
        run: &Run<'_>,
        handle: &str,
        digest: &str,
    ) -> Result<Progress, ActuatorError> {
        let Some(mode) = self.approved_mode(run, handle, digest).await? else {
            return self.restart(run).await;
        };
        info!(run_id = handle, plan = digest, "plan approved; applying it");
        let started = match &self.tasks {
            Some(tasks) => self.start_task(tasks, run, handle.to_owned(), mode).await?,
            None => self.start_local(run, handle.to_owned(), mode).await?,
        };
        Ok(match started {
            Start::Started(_) => Progress::Waiting {
                after: Duration::from_secs(1),
                message: format!("applying the approved plan {digest}"),
            },
            Start::Busy(progress) => progress,
        })
    }

    async fn check(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        if let Some(tasks) = &self.tasks {
            return self.check_task(tasks, run, handle).await;
        }
        let local = self
            .runs
            .local()
            .get(handle)
            .map(|l| (l.state.clone(), l.heartbeat, l.key.clone()));
        match local {
            Some((LocalState::Running { last_line }, _, key)) => {
                self.beat(&key, handle).await?;
                Ok(Progress::Waiting {
                    after: Duration::from_secs(1),
                    message: match last_line {
                        Some(line) => format!("applying: {line}"),
                        None => "applying: starting".into(),
                    },
                })
            }
            Some((finished, _, _)) => {
                self.runs.local().remove(handle);
                Ok(match finished {
                    LocalState::Planned { digest, summary } => {
                        self.awaiting_approval(run, &digest, &summary)
                    }
                    LocalState::Succeeded(message) => Progress::Done { message },
                    LocalState::Failed(message) => Progress::Failed { message },
                    LocalState::Interrupted
                    | LocalState::Running { .. }
                    | LocalState::Drifted(_) => self.restart(run).await?,
                })
            }
            None => self.check_recorded(run, handle).await,
        }
    }

    fn drift_every(&self) -> Option<Duration> {
        self.drift_check
    }

    async fn check_drift(
        &self,
        run: &Run<'_>,
        handle: Option<&str>,
    ) -> Result<super::DriftCheck, ActuatorError> {
        self.drift(run, handle).await
    }

    async fn stop(&self, key: &EnvKey, handle: &str) -> Result<(), ActuatorError> {
        if let Some(tasks) = &self.tasks {
            return self.stop_task(tasks, key, handle).await;
        }
        let pid = self.runs.local().get(handle).and_then(|l| l.pid);
        if pid.is_some() {
            info!(run_id = handle, "interrupting a superseded run");
            signal(pid, rustix::process::Signal::INT);
        }
        Ok(())
    }
}

impl CommandActuator {
    async fn start_local(
        &self,
        run: &Run<'_>,
        run_id: String,
        mode: Mode,
    ) -> Result<Start, ActuatorError> {
        if self.runs.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Start::Busy(Progress::Waiting {
                after: Duration::from_secs(5),
                message: "the controller is shutting down; the run starts on the next leader"
                    .into(),
            }));
        }
        if let Some(local) = self.runs.local().get(&run_id)
            && matches!(local.state, LocalState::Running { .. })
        {
            return Ok(Start::Started(run_id));
        }
        let stale = self.runs.stale_before_ms(self.grace);
        let claim = self
            .runs
            .store
            .claim_run(
                run.key,
                &run_id,
                &self.runs.owner,
                now_ms(),
                stale,
                mode.name(),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        if let Claim::Busy(record) = claim {
            // A drift check of this controller's gives way to a deployment. Another
            // replica's (it held the lease before) stops when that replica lost the
            // lease, and its record goes stale within keepalive + grace.
            if record.run_mode.as_deref() == Some("drift") && mode != Mode::Drift {
                let pid = self.runs.local().get(&record.run_id).and_then(|l| l.pid);
                if pid.is_some() {
                    info!(
                        run_id = record.run_id,
                        "interrupting a drift check for a deployment"
                    );
                    signal(pid, rustix::process::Signal::INT);
                }
            }
            return Ok(Start::Busy(Self::busy(&record)));
        }
        let child = match self.spawn(run, &run_id, &mode) {
            Ok(child) => child,
            Err(error) => {
                // Claimed, but nothing runs: free the slot at once.
                let _ = self
                    .runs
                    .store
                    .finish_run(run.key, &run_id, "failed", &error.to_string(), now_ms())
                    .await;
                return Err(error);
            }
        };
        let pid = child.id();
        info!(run_id, pid, "runner started");
        self.runs.local().insert(
            run_id.clone(),
            Local {
                key: run.key.clone(),
                pid,
                state: LocalState::Running { last_line: None },
                heartbeat: Instant::now(),
            },
        );
        tokio::spawn(
            follow(
                child,
                self.runs.clone(),
                run.key.clone(),
                run_id.clone(),
                self.commands_for(&mode).len(),
                mode,
                crate::model::images_digest(run.images),
            )
            .in_current_span(),
        );
        Ok(Start::Started(run_id))
    }

    /// The apply of the approved plan `digest`, if it can be applied as approved: the
    /// run is planned with that digest, the plan is still kept with it, it was made
    /// with the release's images as they are, and (with a source) its revision is
    /// known. None: it must be made again.
    async fn approved_mode(
        &self,
        run: &Run<'_>,
        handle: &str,
        digest: &str,
    ) -> Result<Option<Mode>, ActuatorError> {
        let record = self
            .runs
            .store
            .run(run.key)
            .await
            .map_err(|e| self.store_error(e))?;
        let Some(record) = record.filter(|r| {
            r.run_id == handle
                && r.state == "planned"
                && r.message.as_deref().and_then(|m| m.split(' ').next()) == Some(digest)
        }) else {
            warn!(
                run_id = handle,
                "the run holds no such plan; planning again"
            );
            return Ok(None);
        };
        // A plan kept on this host is checked here; one in S3 (runner tasks) by the
        // runner, which plans again if it is gone or changed.
        let kept = match &self.tasks {
            Some(_) => Some(digest.to_owned()),
            None => std::fs::read(self.plan_path(run.key, handle))
                .ok()
                .map(|bytes| crate::runner::plan::digest(&bytes)),
        };
        if kept.as_deref() != Some(digest) {
            warn!(
                run_id = handle,
                "the approved plan is no longer kept here; planning again"
            );
            return Ok(None);
        }
        if record.plan_images.as_deref() != Some(&crate::model::images_digest(run.images)) {
            warn!(
                run_id = handle,
                "the release's images changed since its plan; planning again"
            );
            return Ok(None);
        }
        let source = match &self.source {
            None => None,
            Some(configured) => {
                let wanted = configured
                    .for_run(run.key)
                    .map_err(ActuatorError::Refused)?;
                let pinned = record
                    .source_pin
                    .as_deref()
                    .and_then(|pin| {
                        serde_json::from_str::<crate::runner::source::JobSource>(pin).ok()
                    })
                    .filter(|p| p.same_source(&wanted));
                if pinned.is_none() {
                    warn!(
                        run_id = handle,
                        "the plan's source revision is unknown; planning again"
                    );
                    return Ok(None);
                }
                pinned
            }
        };
        Ok(Some(Mode::Apply {
            digest: digest.to_owned(),
            source,
        }))
    }

    /// A plan kept and waiting: what an approver approves, and how.
    fn awaiting_approval(&self, run: &Run<'_>, digest: &str, summary: &str) -> Progress {
        Progress::AwaitingApproval {
            after: Duration::from_secs(5),
            message: format!(
                "planned {summary} (plan {digest}); waiting for its approval (`relctl approve {} --env {}`)",
                run.intent.release_id, run.key.environment
            ),
            plan: Some(digest.to_owned()),
        }
    }

    /// A run this controller does not follow (a restart, a new leader): its record says
    /// whether it ended, is still live elsewhere, or is presumed dead.
    async fn check_recorded(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        let record = self
            .runs
            .store
            .run(run.key)
            .await
            .map_err(|e| self.store_error(e))?;
        match record {
            Some(record) if record.run_id == handle => match record.state.as_str() {
                "succeeded" => Ok(Progress::Done {
                    message: record
                        .message
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| format!("{} commands succeeded", self.steps().len())),
                }),
                "failed" => Ok(Progress::Failed {
                    message: record.message.unwrap_or_default(),
                }),
                "planned" => {
                    let message = record.message.unwrap_or_default();
                    let (digest, summary) = message.split_once(' ').unwrap_or((&message, ""));
                    Ok(self.awaiting_approval(run, digest, summary))
                }
                "running" if record.heartbeat_ms >= self.runs.stale_before_ms(self.grace) => {
                    Ok(Progress::Waiting {
                        after: Duration::from_secs(5),
                        message: format!(
                            "a run of this environment by {} is still going; waiting for it to end before running again",
                            record.owner
                        ),
                    })
                }
                // Interrupted, or its owner is gone (its runner stopped by itself).
                _ => self.restart(run).await,
            },
            _ => self.restart(run).await,
        }
    }

    /// Runs the commands again (the last run was interrupted or lost).
    async fn restart(&self, run: &Run<'_>) -> Result<Progress, ActuatorError> {
        Ok(match self.start(run).await? {
            Start::Started(_) => {
                warn!("the last run did not finish; running the commands again");
                Progress::Waiting {
                    after: Duration::from_secs(1),
                    message: "running the apply commands again (the last run did not finish)"
                        .into(),
                }
            }
            Start::Busy(progress) => progress,
        })
    }
}
