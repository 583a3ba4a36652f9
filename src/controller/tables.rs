//! Which tables the controller can use. Each releases table is checked at the start of
//! a term against what relctl relies on (`store::setup`'s checks): a usable one gets its
//! watcher; one that is missing or unusable is reported (`/readyz` detail, an error log
//! line, `relctl_table_problems`) and checked again every [`RECHECK`] until it can be
//! used, while every other project goes on. Resync skips its environments meanwhile,
//! saying why.

use std::{sync::Arc, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{error, info};

use super::Shared;
use crate::{context::Context, metrics::TableLabels, store::setup, watcher::Watcher};

/// How often an unusable table is looked at again.
pub const RECHECK: Duration = Duration::from_secs(15);

/// The stream ARN of a usable releases table, or what keeps relctl from using it.
pub async fn check_releases_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, Vec<String>> {
    let described = match setup::describe(dynamodb, table).await {
        Ok(Some(described)) => described,
        Ok(None) => return Err(vec!["does not exist; run `relctl setup`".into()]),
        Err(error) => return Err(vec![error.to_string()]),
    };
    let findings = setup::check_releases(&described);
    if !findings.is_empty() {
        return Err(findings.iter().map(ToString::to_string).collect());
    }
    described
        .latest_stream_arn
        .ok_or_else(|| vec!["has no stream ARN; run `relctl setup`".into()])
}

/// What keeps relctl from using the state table, if anything.
pub async fn check_state_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    match setup::describe(dynamodb, table).await {
        Ok(Some(described)) => setup::check_state(&described)
            .iter()
            .map(ToString::to_string)
            .collect(),
        Ok(None) => vec!["does not exist; run `relctl setup` (or apply deploy/terraform)".into()],
        Err(error) => vec![error.to_string()],
    }
}

/// Records `table`'s problems (none: usable) where people and alerts see them.
pub fn report(shared: &Shared, table: &str, problems: Vec<String>) {
    let labels = TableLabels {
        table: table.to_owned(),
    };
    shared
        .metrics
        .table_problems
        .get_or_create(&labels)
        .set(problems.len() as i64);
    let before = shared.health.set_problems(table, problems.clone());
    if problems.is_empty() {
        if !before.is_empty() {
            info!(%table, "table is usable now");
        }
    } else if before != problems {
        error!(%table, problems = %problems.join("; "), "table cannot be used; its projects wait");
    }
}

/// One term's watchers, started as their tables become usable.
pub struct Watchers {
    pub shared: Arc<Shared>,
    pub ctx: Arc<Context>,
    pub tracker: TaskTracker,
    pub stop: CancellationToken,
}

impl Watchers {
    /// Starts a watcher for every usable table, and keeps checking the others.
    pub async fn start(self, tables: Vec<String>) {
        let mut waiting = Vec::new();
        for table in tables {
            if !self.try_start(&table, false).await {
                waiting.push(table);
            }
        }
        if waiting.is_empty() {
            return;
        }
        let tracker = self.tracker.clone();
        tracker.spawn(self.recheck(waiting));
    }

    /// `late`: the table became usable during the term, so its stream holds only what
    /// relctl has not seen: read it from the start.
    async fn try_start(&self, table: &str, late: bool) -> bool {
        let checked = check_releases_table(&self.shared.dynamodb, table).await;
        let watcher = match checked {
            Ok(arn) => Watcher::new(
                self.ctx.clone(),
                self.shared.streams.clone(),
                table.to_owned(),
                arn,
                late,
            )
            .await
            .map_err(|e| vec![e.to_string()]),
            Err(problems) => Err(problems),
        };
        match watcher {
            Ok(watcher) => {
                report(&self.shared, table, Vec::new());
                self.tracker.spawn(watcher.run(self.stop.clone()));
                true
            }
            Err(problems) => {
                report(&self.shared, table, problems);
                false
            }
        }
    }

    async fn recheck(self, mut waiting: Vec<String>) {
        while !waiting.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(RECHECK) => {}
                () = self.stop.cancelled() => return,
            }
            let mut still = Vec::new();
            for table in waiting {
                if self.try_start(&table, true).await {
                    // What was written while it was unusable is in the table, not
                    // on the stream we just opened: read it.
                    self.ctx.resync_now.notify_one();
                } else {
                    still.push(table);
                }
            }
            waiting = still;
        }
    }
}
