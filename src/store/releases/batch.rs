//! Statuses written into many entries of one release item at once: a release taken in
//! with hundreds of new entries costs a handful of writes, not two per entry. Each
//! write covers at most [`PER_WRITE`] entries (keeping its expressions well under
//! DynamoDB's 4 KB), guarded per entry as [`ReleaseStore::write_status`] is; when a
//! guard fails (an entry finished or changed meanwhile), that group is written entry by
//! entry, so each gets exactly what a single write would have given it.

use std::collections::HashMap;

use super::{ReleaseStore, StatusWrite, stored};
use crate::{
    model::{IntentRef, Status, Timestamp},
    store::{StoreError, is_condition_failed, s},
};

/// Entries in one UpdateItem.
pub const PER_WRITE: usize = 20;

/// One entry's new status.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub intent: IntentRef,
    pub status: Status,
    pub message: String,
}

impl ReleaseStore {
    /// Writes each update into its entry of `release_id` (all of one release), only
    /// where the entry is still that intent and unfinished; returns how many were written.
    pub async fn write_statuses(
        &self,
        table: &str,
        release_id: &str,
        updates: &[StatusUpdate],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut written = 0;
        for group in updates.chunks(PER_WRITE) {
            if group.len() == 1 {
                let u = &group[0];
                let one = self
                    .write_status(table, &u.intent, u.status, &u.message, now)
                    .await?;
                written += usize::from(one == StatusWrite::Written);
                continue;
            }
            match self.write_group(table, release_id, group, now).await {
                Ok(()) => written += group.len(),
                Err(GroupError::Guard) => {
                    for u in group {
                        let one = self
                            .write_status(table, &u.intent, u.status, &u.message, now)
                            .await?;
                        written += usize::from(one == StatusWrite::Written);
                    }
                }
                Err(GroupError::Store(e)) => return Err(e),
            }
        }
        Ok(written)
    }

    async fn write_group(
        &self,
        table: &str,
        release_id: &str,
        group: &[StatusUpdate],
        now: Timestamp,
    ) -> Result<(), GroupError> {
        // Statuses and messages are shared by placeholder: a batch of supersessions
        // carries its one message once.
        let mut texts: HashMap<String, String> = HashMap::new();
        let mut name = |text: String| {
            let next = format!(":t{}", texts.len());
            texts.entry(text).or_insert(next).clone()
        };
        let mut sets = Vec::new();
        let mut guards = Vec::new();
        for (i, u) in group.iter().enumerate() {
            let entry = format!("deployments[{}]", u.intent.index);
            let status = name(u.status.as_str().to_owned());
            let message = name(crate::model::text::message(&u.message));
            sets.push(format!(
                "{entry}.status_message = {message}, {entry}.status_updated_at = :now, {entry}.#st = {status}"
            ));
            guards.push(format!(
                "({entry}.date_created = :c{i} AND (attribute_not_exists({entry}.#st) OR NOT ({entry}.#st IN (:su, :fa, :sp, :ca))))"
            ));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(release_id))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(guards.join(" AND "))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":now", s(now.to_wire()))
            .expression_attribute_values(":su", s(Status::Succeeded.as_str()))
            .expression_attribute_values(":fa", s(Status::Failed.as_str()))
            .expression_attribute_values(":sp", s(Status::Superseded.as_str()))
            .expression_attribute_values(":ca", s(Status::Cancelled.as_str()));
        for (text, placeholder) in texts {
            request = request.expression_attribute_values(placeholder, s(text));
        }
        for (i, u) in group.iter().enumerate() {
            request = request.expression_attribute_values(format!(":c{i}"), stored(&u.intent));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(GroupError::Guard),
            Err(e) => Err(GroupError::Store(StoreError::aws("UpdateItem", table, e))),
        }
    }
}

enum GroupError {
    /// An entry's guard failed: write the group one by one.
    Guard,
    Store(StoreError),
}
