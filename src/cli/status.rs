//! `relctl status`: who leads, and every configured environment: what is desired, what
//! runs, where a deployment is, and what went wrong last (a reconcile or a resync).
//! Warns on stderr when no controller holds the lease: then nothing is being applied.

use clap::Args;

use serde::Serialize;

use super::{
    Failure, Output,
    lookup::{Aws, ago, no_controller, now_ms, project_of},
};
use crate::{config::Config, model::EnvKey, store::lease::Holder};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub project: Option<String>,
    /// Show it again every `--interval` (in place, on a terminal) until Ctrl-C.
    #[arg(long, short = 'w')]
    pub watch: bool,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}

/// `status --output json`.
#[derive(Debug, Serialize)]
struct Report {
    controller: Controller,
    environments: Vec<Row>,
}

/// The leader lease as stored.
#[derive(Debug, Serialize)]
struct Controller {
    /// Whether a controller holds the lease now (and so applies deployments).
    held: bool,
    /// The holder, or the last one.
    leader: Option<String>,
    renewed_seconds_ago: Option<f64>,
}

/// One environment in `status --output json`.
#[derive(Debug, Serialize)]
struct Row {
    project: String,
    environment: String,
    desired_release: Option<String>,
    running_release: Option<String>,
    phase: Option<String>,
    status: Option<String>,
    since: Option<String>,
    message: Option<String>,
    drift: Vec<String>,
    /// The last drift check by plan (Terraform `drift_check`): when, what it found.
    plan_drift: Option<crate::model::state::PlanDrift>,
    /// Releases rolled back here (deployed again only with `--force`), newest first.
    rolled_back: Vec<String>,
    /// The pause in force (`relctl pause`): by whom, since when, why.
    paused: Option<String>,
    /// The last failed attempt's error, while retrying.
    last_error: Option<String>,
    /// Why the last resync of this environment failed, and when.
    resync_error: Option<String>,
    resync_error_at: Option<String>,
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    args: StatusArgs,
    output: Output,
) -> Result<(), Failure> {
    if let Some(project) = &args.project {
        project_of(config, project)?;
    }
    if !args.watch {
        return once(config, aws, &args, output).await;
    }
    use std::io::{IsTerminal as _, Write as _};
    let terminal = std::io::stdout().is_terminal();
    // Not faster than this: each showing reads every environment's state.
    let interval = args.interval.max(std::time::Duration::from_millis(500));
    let watch = async {
        loop {
            if terminal {
                // Home and clear: the table is redrawn in place.
                print!("\u{1b}[H\u{1b}[2J");
                let _ = std::io::stdout().flush();
            }
            once(config, aws, &args, output).await?;
            if !terminal {
                out!("");
            }
            tokio::time::sleep(interval).await;
        }
    };
    // Ctrl-C ends the watch whenever it comes, a read under way too.
    tokio::select! {
        result = watch => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn once(
    config: &Config,
    aws: &Aws,
    args: &StatusArgs,
    output: Output,
) -> Result<(), Failure> {
    let keys: Vec<EnvKey> = config
        .keys()
        .filter(|key| args.project.as_ref().is_none_or(|p| p == &key.project))
        .collect();
    let holder = aws.lease(config).await?;
    let states = aws.state(config).get_many(&keys).await?;
    let rows: Vec<Row> = keys
        .into_iter()
        .zip(states)
        .map(|(key, env)| Row {
            desired_release: env.desired.map(|d| d.release_id),
            running_release: env.observed.map(|o| o.release_id),
            phase: env.activity.phase().map(str::to_owned),
            status: env.activity.status().map(|s| s.as_str().to_owned()),
            since: env.activity.since().map(|s| s.to_wire()),
            last_error: env.activity.error_beside_message().map(str::to_owned),
            message: env.activity.message().map(str::to_owned),
            drift: env.drift,
            plan_drift: env.plan_drift,
            rolled_back: env
                .rolled_back
                .iter()
                .map(|r| r.release_id.clone())
                .collect(),
            resync_error: env.resync_error,
            resync_error_at: env.resync_error_at.map(|t| t.to_wire()),
            paused: None,
            project: key.project,
            environment: key.environment,
        })
        .collect();
    let mut rows = rows;
    paused(config, aws, &mut rows).await?;
    if let Some(warning) = no_controller(holder.as_ref()) {
        note!("warning: {warning}");
    }
    let report = Report {
        controller: controller(holder.as_ref()),
        environments: rows,
    };
    if output.json(&report)? {
        return Ok(());
    }
    print_table(&report);
    Ok(())
}

/// Read each environment's pause (one Query each, at most [`PAUSES_READ`] at once);
/// beyond [`PAUSES_LISTED`] environments they are not read (`--project` narrows).
const PAUSES_READ: usize = 16;
const PAUSES_LISTED: usize = 500;

async fn paused(config: &Config, aws: &Aws, rows: &mut [Row]) -> Result<(), Failure> {
    use crate::store::attestations::{env_subject, paused};
    if rows.len() > PAUSES_LISTED {
        note!(
            "note: pauses are read for at most {PAUSES_LISTED} environments; give --project to see them"
        );
        return Ok(());
    }
    let attestations = aws.attestations(config);
    for chunk in rows.chunks_mut(PAUSES_READ) {
        let mut reads = tokio::task::JoinSet::new();
        for (i, row) in chunk.iter().enumerate() {
            let subject = env_subject(&EnvKey::new(&row.project, &row.environment));
            let attestations = attestations.clone();
            reads.spawn(async move { (i, attestations.of(&subject).await) });
        }
        while let Some(read) = reads.join_next().await {
            let (i, found) =
                read.map_err(|e| Failure::refused(format!("reading the pauses failed: {e}")))?;
            // The rest of the status is worth seeing even when pauses cannot be read
            // (no approvals table, a denied Query).
            let found = match found {
                Ok(found) => found,
                Err(error) => {
                    note!(
                        "warning: cannot tell whether {}/{} is paused: {error}",
                        chunk[i].project,
                        chunk[i].environment
                    );
                    continue;
                }
            };
            chunk[i].paused = paused(&found).map(|p| {
                format!(
                    "by {} since {}: {}",
                    crate::reconciler::decide::controls::who(&p.by),
                    p.at,
                    p.reason
                )
            });
        }
    }
    Ok(())
}

fn controller(holder: Option<&Holder>) -> Controller {
    let now = now_ms();
    Controller {
        held: holder.is_some_and(|h| h.is_held(now)),
        leader: holder.map(|h| h.owner.clone()),
        renewed_seconds_ago: holder
            .and_then(|h| h.renewed_at)
            .map(|at| (now - at).max(0) as f64 / 1000.0),
    }
}

fn print_table(report: &Report) {
    use super::table;
    use crate::model::shown::{ID, MESSAGE, escape, summary};
    let c = &report.controller;
    match (&c.leader, c.held) {
        (Some(leader), true) => out!(
            "controller: {leader} leads (lease renewed {})",
            c.renewed_seconds_ago
                .map_or_else(|| "at an unknown time".into(), |s| ago((s * 1000.0) as i64))
        ),
        _ => out!("controller: none holds the lease"),
    }
    let now = now_ms();
    let ids = table::short_ids(
        report
            .environments
            .iter()
            .flat_map(|r| [&r.desired_release, &r.running_release])
            .flatten()
            .map(String::as_str),
    );
    let id = |v: &Option<String>| v.as_ref().map_or_else(|| "-".into(), |v| ids[v].clone());
    let mut shown = table::table(&[
        "PROJECT",
        "ENVIRONMENT",
        "DESIRED",
        "RUNNING",
        "PHASE",
        "AGE",
        "MESSAGE",
    ]);
    for row in &report.environments {
        // The message, then what else a person must see, a line each (each escaped).
        let mut lines = vec![summary(row.message.as_deref().unwrap_or_default(), MESSAGE)];
        if !row.drift.is_empty() {
            lines.push(format!("drift: {}", row.drift.join(", ")));
        }
        let by_plan = row.plan_drift.as_ref();
        if let Some(found) = by_plan.and_then(|p| p.found.as_deref()) {
            lines.push(format!("drift by plan: {}", summary(found, MESSAGE)));
        }
        if let Some(error) = &row.last_error {
            lines.push(format!(
                "! last attempt failed: {}",
                summary(error, MESSAGE)
            ));
        }
        if let Some(paused) = &row.paused {
            lines.push(format!("paused {}", summary(paused, MESSAGE)));
        }
        if !row.rolled_back.is_empty() {
            lines.push(format!(
                "rolled back here (deployed again only with --force): {}",
                row.rolled_back.join(", ")
            ));
        }
        if let Some(error) = by_plan.and_then(|p| p.error.as_deref()) {
            lines.push(format!(
                "! the last drift check failed: {}",
                summary(error, MESSAGE)
            ));
        }
        if let Some(error) = &row.resync_error {
            lines.push(format!(
                "! resync failed (at {}): {}",
                row.resync_error_at.as_deref().unwrap_or("?"),
                summary(error, MESSAGE)
            ));
        }
        let message = lines
            .iter()
            .map(|l| escape(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        shown.add_row(vec![
            table::text(&row.project, ID),
            table::text(&row.environment, ID),
            table::text(&id(&row.desired_release), ID),
            table::text(&id(&row.running_release), ID),
            table::status(row.phase.as_deref().unwrap_or("-")),
            table::text(
                &row.since
                    .as_deref()
                    .map_or_else(|| "-".into(), |at| table::age(at, now)),
                64,
            ),
            comfy_table::Cell::new(message),
        ]);
    }
    table::print(&shown);
}
