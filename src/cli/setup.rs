//! `relctl setup`: create what is missing, say what was done, change nothing else, and
//! refuse (exit 1, naming the attribute) a table relctl cannot use as it is.

use super::{Failure, lookup::Aws};
use crate::{config::Config, store::setup};

pub async fn run(config: &Config, aws: &Aws) -> Result<(), Failure> {
    let client = aws.dynamodb.clone();
    let mut refused = Vec::new();
    let mut progress = |line: String| note!("{line}");
    for table in config.releases_tables() {
        match setup::ensure_releases_table(&client, &table, &mut progress).await {
            Ok(action) => out!("{action}"),
            Err(error) => {
                note!("error: {error}");
                refused.push(table);
            }
        }
    }
    for (table, ensured) in [
        (
            &config.tables.state,
            setup::ensure_state_table(&client, &config.tables.state).await,
        ),
        (
            &config.tables.approvals,
            setup::ensure_approvals_table(&client, &config.tables.approvals).await,
        ),
    ] {
        match ensured {
            Ok(action) => out!("{action}"),
            Err(error) => {
                note!("error: {error}");
                refused.push(table.clone());
            }
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Failure::refused(format!(
            "set-up is not complete: {} cannot be used as {} (see above)",
            refused.join(", "),
            if refused.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        )))
    }
}
