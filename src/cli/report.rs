//! `relctl report --project P [--env E] [--since 30d]`: the delivery metrics (DORA) of
//! each environment, from the deployments the controller recorded finishing there.

use clap::Args;
use serde::Serialize;

use super::{
    Failure, Output,
    lookup::{Aws, project_of},
};
use crate::{
    config::Config,
    model::{EnvKey, Timestamp, dora},
};

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// The window, ending now.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
}

/// One environment in `report --output json`.
#[derive(Debug, Serialize)]
struct Row {
    project: String,
    environment: String,
    #[serde(flatten)]
    figures: dora::Figures,
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    args: ReportArgs,
    output: Output,
) -> Result<(), Failure> {
    let project = project_of(config, &args.project)?;
    if let Some(env) = &args.environment {
        config.environment(&EnvKey::new(&project.id, env))?;
    }
    let keys: Vec<EnvKey> = project
        .environments
        .iter()
        .filter(|e| args.environment.as_ref().is_none_or(|id| id == &e.id))
        .map(|e| EnvKey::new(&project.id, &e.id))
        .collect();
    let states = aws.state(config).get_many(&keys).await?;
    let now = Timestamp::from_utc(chrono::Utc::now());
    let rows: Vec<Row> = keys
        .into_iter()
        .zip(states)
        .map(|(key, state)| Row {
            figures: dora::figures(&state.deliveries, now, args.since),
            project: key.project,
            environment: key.environment,
        })
        .collect();
    if output.json(&rows)? {
        return Ok(());
    }
    note!(
        "deliveries in the last {} (what the controller recorded finishing)",
        humantime::format_duration(args.since)
    );
    out!(
        "{:<16} {:>8} {:>10} {:>12} {:>14} {:>16}",
        "ENVIRONMENT",
        "DEPLOYS",
        "PER DAY",
        "LEAD TIME",
        "FAILURE RATE",
        "TIME TO RESTORE"
    );
    for row in rows {
        let f = &row.figures;
        out!(
            "{:<16} {:>8} {:>10.2} {:>12} {:>14} {:>16}",
            row.environment,
            f.deployments,
            f.per_day,
            duration(f.lead_time_seconds),
            f.change_failure_rate
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
            duration(f.time_to_restore_seconds)
        );
    }
    Ok(())
}

/// Seconds as a person reads them: `45m`, `3h 15m`, `2d 4h`.
fn duration(seconds: Option<u64>) -> String {
    let Some(s) = seconds else {
        return "-".into();
    };
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(super::duration(Some(45)), "45s");
        assert_eq!(super::duration(Some(2700)), "45m");
        assert_eq!(super::duration(Some(11_700)), "3h 15m");
        assert_eq!(super::duration(Some(2 * 86_400 + 4 * 3600)), "2d 4h");
        assert_eq!(super::duration(None), "-");
    }
}
