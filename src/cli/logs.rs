//! `relctl logs --project P --env E [--limit 10]`: what the controller says of an
//! environment, from its state table: the deployment now (its status, phase and
//! message — for a Terraform run, its latest output line), the environment's last
//! command run (its outcome and the tail of its output), and its recent history.
//! Everything the controller logged in full is in its own log; this is what a person
//! on call reads first.

use clap::Args;
use serde::Serialize;

use super::{
    Failure, Output,
    lookup::{Aws, ago, now_ms, project_of},
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// How many of the environment's past deployments to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

/// `logs --output json`.
#[derive(Debug, Serialize)]
struct Logs {
    project: String,
    environment: String,
    release_id: Option<String>,
    status: Option<String>,
    phase: Option<String>,
    since: Option<String>,
    message: Option<String>,
    last_error: Option<String>,
    run: Option<Run>,
    history: Vec<Past>,
}

#[derive(Debug, Serialize)]
struct Run {
    run_id: String,
    owner: String,
    mode: Option<String>,
    state: String,
    started_ms: i64,
    heartbeat_ms: i64,
    message: Option<String>,
}

#[derive(Debug, Serialize)]
struct Past {
    at: String,
    release_id: String,
    status: String,
    message: String,
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    args: LogsArgs,
    output: Output,
) -> Result<(), Failure> {
    project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    config.environment(&key)?;
    let store = aws.state(config);
    let state = store.get(&key).await?;
    let run = store.run(&key).await?;
    let activity = &state.activity;
    let logs = Logs {
        project: key.project.clone(),
        environment: key.environment.clone(),
        release_id: activity.intent().map(|i| i.release_id.clone()),
        status: activity.status().map(|s| s.as_str().to_owned()),
        phase: activity.phase().map(str::to_owned),
        since: activity.since().map(|t| t.to_wire()),
        message: activity.message().map(str::to_owned),
        last_error: activity.error_beside_message().map(str::to_owned),
        run: run.map(|r| Run {
            run_id: r.run_id,
            owner: r.owner,
            mode: r.run_mode,
            state: r.state,
            started_ms: r.started_ms,
            heartbeat_ms: r.heartbeat_ms,
            message: r.message,
        }),
        history: state
            .history
            .iter()
            .take(args.limit)
            .map(|h| Past {
                at: h.at.to_wire(),
                release_id: h.release_id.clone(),
                status: h.status.as_str().to_owned(),
                message: h.message.clone(),
            })
            .collect(),
    };
    if output.json(&logs)? {
        return Ok(());
    }
    print(&logs);
    Ok(())
}

fn print(logs: &Logs) {
    let now = now_ms();
    let age = |at: &str| super::table::age(at, now);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match &logs.release_id {
        Some(release) => out!(
            "{}/{}: release {release}, {}{} since {}",
            logs.project,
            logs.environment,
            dash(&logs.status),
            logs.phase
                .as_ref()
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default(),
            logs.since.as_deref().map_or_else(|| "-".into(), age)
        ),
        None => out!(
            "{}/{}: nothing deployed here yet",
            logs.project,
            logs.environment
        ),
    }
    for line in logs.message.iter().flat_map(|m| m.lines()) {
        out!("  {line}");
    }
    if let Some(error) = &logs.last_error {
        out!("  ! last attempt failed: {error}");
    }
    if let Some(run) = &logs.run {
        out!(
            "last run: {} ({}, by {}): {}, started {}, heartbeat {}",
            run.run_id,
            run.mode.as_deref().unwrap_or("run"),
            run.owner,
            run.state,
            ago(now - run.started_ms),
            ago(now - run.heartbeat_ms)
        );
        for line in run.message.iter().flat_map(|m| m.lines()) {
            out!("  {line}");
        }
    }
    if !logs.history.is_empty() {
        out!("recent:");
        for past in &logs.history {
            out!(
                "  {:<12} {}  {}  {}",
                age(&past.at),
                past.release_id,
                past.status,
                crate::model::shown::summary(&past.message, crate::model::shown::MESSAGE)
            );
        }
    }
}
