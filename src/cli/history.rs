//! `relctl history --project P --env E`: past deployments to an environment, the
//! controller's self-heals there, and who paused, resumed or unlocked it, newest first.

use clap::Args;

use super::{
    Failure, Output,
    lookup::{Aws, project_of},
    past::{self, Past},
};
use crate::{config::Config, model::EnvKey};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    args: HistoryArgs,
    output: Output,
) -> Result<(), Failure> {
    project_of(config, &args.project)?;
    let key = EnvKey::new(&args.project, &args.environment);
    let store = aws.releases();
    let mut past: Vec<Past> = past::deployments(config, &store, &key, args.limit)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let state = aws.state(config).get(&key).await?;
    past::mark_rollbacks(&mut past, &state);
    past.extend(past::self_heals(&state, &key));
    match aws
        .attestations(config)
        .of(&crate::store::attestations::env_subject(&key))
        .await
    {
        Ok(found) => past.extend(past::controls(&found, &key)),
        Err(e) => note!("warning: who paused or unlocked {key} could not be read: {e}"),
    }
    past.sort_by(|a, b| b.date_created.cmp(&a.date_created));
    past.truncate(args.limit);
    if output.json(&past)? {
        return Ok(());
    }
    use super::table;
    use crate::model::shown::{ID, MESSAGE, WHO, summary};
    let now = super::lookup::now_ms();
    let ids = table::short_ids(past.iter().map(|p| p.release_id.as_str()));
    let mut shown = table::table(&["AGE", "RELEASE", "WHO", "OUTCOME", "MESSAGE"]);
    for p in &past {
        let message = match p.kind {
            "rollback" => format!(
                "automatic rollback: {}",
                p.status_message.as_deref().unwrap_or("pending")
            ),
            _ => p.status_message.clone().unwrap_or_default(),
        };
        let message = match &p.break_glass {
            Some(glass) => format!("{glass}; {message}"),
            None => message,
        };
        let message = match &p.rolled_back {
            Some(_) => format!("[rolled back here since] {message}"),
            None => message,
        };
        let who = p.requested_by.as_deref().unwrap_or("-");
        let who = if table::look().wide {
            who
        } else {
            crate::model::shown::who(who)
        };
        shown.add_row(vec![
            table::text(&table::age(&p.date_created, now), 64),
            table::text(&ids[&p.release_id], ID),
            table::text(who, if table::look().wide { 200 } else { WHO }),
            table::status(&p.status),
            table::text(&summary(&message, MESSAGE), MESSAGE + 8),
        ]);
    }
    table::print(&shown);
    Ok(())
}
