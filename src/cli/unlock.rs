//! `relctl unlock --project P --env E --reason …`: releases the Terraform state lock a
//! run left behind when it died (a host lost, a SIGKILL: Terraform had no chance to
//! release it), so the environment's deployments can run again.
//!
//! Never while a run may be alive: the environment's run record (the controller's
//! claim of its one run slot, see [`crate::store::runs`]) must say the last run ended,
//! or its heartbeat must be older than the time its runner takes to stop by itself.
//! The lock is named by its ID (`--lock-id`, or read from the controller's record of
//! the last run, whose output Terraform printed it in), and `terraform force-unlock`
//! removes only a lock with that ID: a run that starts meanwhile holds a lock of its
//! own, which this cannot release. An ECS-task run is over once ECS says its task
//! stopped.
//!
//! It runs here, with the caller's credentials (which must reach the state's backend),
//! the way the controller's runner would: the module's `terraform init` commands in
//! its directory (or its `source`, fetched into a scratch directory), then `terraform
//! force-unlock -force ID`. Once it has, who did it and why is recorded as an
//! attestation.

use std::{path::PathBuf, process::Stdio};

use clap::Args;
use tokio::io::BufReader;

use super::{
    Failure,
    lookup::{self, Aws},
};
use crate::{
    actuator::command::{commands::inits, lock, settle},
    config::{Config, environment::ActuatorConfig, runner::RunnerConfig},
    model::{EnvKey, Timestamp},
    runner::{JOB_ENV, Job},
    store::attestations::{Kind, Said, env_subject},
};

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// The lock's ID, as Terraform's "Error acquiring the state lock" names it (`Lock
    /// Info: ID:`); by default, the one the environment's last run could not take.
    #[arg(long)]
    pub lock_id: Option<String>,
    /// The module's directory here; by default the actuator's `dir` (a `source` is
    /// fetched into a scratch directory instead).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Why (recorded with who did it).
    #[arg(long)]
    pub reason: String,
}

pub async fn run(config: &Config, aws: &Aws, args: UnlockArgs) -> Result<(), Failure> {
    lookup::project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    let (_, environment) = config.environment(&key)?;
    let ActuatorConfig::Terraform {
        dir,
        source,
        runner,
        commands,
        env,
        interrupt_grace,
        ..
    } = &environment.actuator
    else {
        return Err(Failure::refused(format!(
            "{}/{} is not applied by Terraform: it has no state lock to release",
            key.project, key.environment
        )));
    };
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Failure::refused(
            "say why with --reason: it is recorded with who released the lock",
        ));
    }
    if let Some(id) = args.lock_id.as_ref().filter(|id| !lock::valid_lock_id(id)) {
        return Err(Failure::refused(format!(
            "{id:?} is not a Terraform lock ID (8 to 64 letters, digits and dashes, as in Terraform's `Lock Info: ID:`); nothing was unlocked"
        )));
    }
    let record = aws.state(config).run(&key).await?;
    if let Some(run) = record.as_ref().filter(|r| r.state == "running") {
        alive(config, aws, &key, runner, run, *interrupt_grace).await?;
    }
    // The lock is named by the caller, or by the controller's own record of the last
    // run (never by a field of the releases table, which any writer may set).
    let lock_id = match args.lock_id.clone() {
        Some(id) => id,
        None => record
            .as_ref()
            .and_then(|r| r.message.as_deref())
            .and_then(lock::held_lock)
            .ok_or_else(|| {
                Failure::refused(format!(
                    "the last run of {}/{} names no state lock it could not take; give the lock's ID with --lock-id (Terraform's `Lock Info: ID:`); nothing was unlocked",
                    key.project, key.environment
                ))
            })?,
    };
    let workdir = match (&args.dir, source, runner, dir) {
        (Some(dir), _, _, _) => Workdir::Given(dir.clone()),
        (None, Some(_), _, _) => Workdir::Scratch(tempfile::tempdir()?),
        (None, None, RunnerConfig::Local, Some(dir)) => Workdir::Given(dir.clone()),
        (None, None, _, _) => {
            return Err(Failure::refused(
                "the module is not on this machine (its runner is an ECS task): give its directory with --dir",
            ));
        }
    };
    let mut steps = inits(commands);
    steps.push(
        ["terraform", "force-unlock", "-force", &lock_id]
            .map(str::to_owned)
            .to_vec(),
    );
    let job = Job {
        dir: workdir.path(),
        source: match (&args.dir, source) {
            (None, Some(source)) => Some(source.for_run(&key).map_err(Failure::refused)?),
            _ => None,
        },
        commands: steps,
        keepalive: None,
        grace: *interrupt_grace,
        plan: None,
        drift: false,
    };
    let me = aws.principal().await?;
    note!(
        "releasing lock {lock_id} of {}/{} as {}",
        key.project,
        key.environment,
        me.arn
    );
    let region = environment
        .region
        .clone()
        .or_else(|| config.aws.region.clone());
    let code = run_job(&job, env, region.as_deref()).await?;
    if code != 0 {
        return Err(Failure::refused(format!(
            "terraform force-unlock did not release lock {lock_id} (the runner exited {code}; its output is above): it may have been released already, or be another's"
        )));
    }
    aws.attestations(config)
        .record_saying(
            Kind::Unlock,
            &me,
            &env_subject(&key),
            "",
            Timestamp::from_utc(chrono::Utc::now()),
            Said {
                reason: Some(&crate::reconciler::outcome::bounded(
                    &format!("{reason} (lock {lock_id})"),
                    500,
                )),
                ends: &[],
            },
        )
        .await?;
    note!(
        "released lock {lock_id} of {}/{}; `relctl retry --project {} --env {}` runs its failed deployment again",
        key.project,
        key.environment,
        key.project,
        key.environment
    );
    Ok(())
}

/// Refuses while the environment's running run may be alive: a local runner's until its
/// heartbeat is older than the time it takes to stop by itself; an ECS task's until
/// ECS says the task stopped (a task has no keepalive: its heartbeat says only whether
/// a controller follows it).
async fn alive(
    config: &Config,
    aws: &Aws,
    key: &EnvKey,
    runner: &RunnerConfig,
    run: &crate::store::runs::RunRecord,
    grace: std::time::Duration,
) -> Result<(), Failure> {
    let may_be_alive = |why: String| {
        Failure::refused(format!(
            "a run of {}/{} may still be alive ({} by {}: {why}), and the lock may be its own. Wait for it to end (`relctl logs --project {} --env {}`), or cancel its deployment (`relctl cancel`); nothing was unlocked",
            key.project, key.environment, run.run_id, run.owner, key.project, key.environment,
        ))
    };
    if let (RunnerConfig::EcsTask(task), Some(arn)) = (runner, &run.task_arn) {
        let found = aws
            .ecs(config)
            .describe_tasks()
            .cluster(&task.cluster)
            .tasks(arn)
            .send()
            .await
            .map_err(|e| {
                may_be_alive(format!(
                    "its ECS task {arn} could not be looked at: ecs:DescribeTasks: {}",
                    crate::aws::error_message(&e)
                ))
            })?;
        return match found.tasks().iter().find(|t| t.task_arn() == Some(arn)) {
            // ECS forgets a stopped task within the hour: gone is stopped.
            None => Ok(()),
            Some(t) if t.last_status() == Some("STOPPED") => Ok(()),
            Some(t) => Err(may_be_alive(format!(
                "its ECS task {arn} is {}",
                t.last_status().unwrap_or("PENDING")
            ))),
        };
    }
    let settle = settle(config.lease.duration, grace);
    let since = lookup::now_ms() - run.heartbeat_ms;
    if since < settle.as_millis() as i64 {
        return Err(may_be_alive(format!(
            "its heartbeat {}; a runner stops by itself within {} of its controller going away",
            lookup::ago(since),
            humantime::format_duration(settle)
        )));
    }
    Ok(())
}

/// Where the commands run: a directory given, or a scratch one removed at the end.
enum Workdir {
    Given(PathBuf),
    Scratch(tempfile::TempDir),
}

impl Workdir {
    fn path(&self) -> PathBuf {
        match self {
            Self::Given(dir) => dir.clone(),
            Self::Scratch(dir) => dir.path().to_owned(),
        }
    }
}

/// Runs `job` in `relctl runner`, its output passed on line by line (escaped, on
/// stderr); the runner's exit status.
async fn run_job(
    job: &Job,
    env: &std::collections::BTreeMap<String, String>,
    region: Option<&str>,
) -> Result<i32, Failure> {
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("runner")
        .envs(env)
        .env(JOB_ENV, serde_json::to_string(job)?)
        .env_remove("RELCTL_FAILPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(region) = region
        && std::env::var_os("AWS_REGION").is_none()
        && !env.contains_key("AWS_REGION")
    {
        command.env("AWS_REGION", region);
    }
    let mut child = command.spawn()?;
    let pass_on = |reader: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let Some(reader) = reader else { return };
            let mut reader = BufReader::new(reader);
            while let Some(line) =
                crate::runner::next_line(&mut reader, crate::runner::MAX_LINE).await
            {
                note!("{line}");
            }
        })
    };
    let out = pass_on(child.stdout.take().map(|s| Box::new(s) as _));
    let err = pass_on(child.stderr.take().map(|s| Box::new(s) as _));
    let status = child.wait().await?;
    let _ = out.await;
    let _ = err.await;
    Ok(status.code().unwrap_or(1))
}
