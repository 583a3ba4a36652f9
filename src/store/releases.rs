//! The releases table: reading RFC 013 items, writing status into one deployment entry
//! (guarded by its `date_created`), keeping `last_date_deployed` current, and the two
//! queries the older tool's indexes serve.

use aws_sdk_dynamodb::{Client, types::ReturnValue};

use super::{Item, StoreError, is_condition_failed, s};
use crate::model::{Deployment, IntentRef, Release, Status, Timestamp, record::Skeleton};

pub const PROJECT_GSI: &str = "project_gsi";
pub const DEPLOYMENT_GSI: &str = "deployment_gsi";

/// Decodes one item. An item that is not a whole release but still has its id, project
/// and deployment entries comes back marked malformed, so its intents can be refused
/// with the reason; anything less is an error for that item only.
pub fn decode<I>(item: I) -> Result<Release, StoreError>
where
    I: Into<serde_dynamo::Item> + Clone,
{
    let item: serde_dynamo::Item = item.into();
    match with_path::<Release>(&item) {
        Ok(release) => Ok(release),
        Err(full) => match with_path::<Skeleton>(&item) {
            Ok(skeleton) => Ok(skeleton.into_malformed(full)),
            Err(_) => {
                let key = match item.get("release_id") {
                    Some(serde_dynamo::AttributeValue::S(id)) => format!("release_id {id:?}"),
                    _ => "an item without a string release_id".to_owned(),
                };
                Err(StoreError::Decode {
                    what: format!("release item ({key})"),
                    source: full.into(),
                })
            }
        },
    }
}

/// Decodes `item`, naming the attribute that failed (`deployments[2].date_created: …`).
fn with_path<T: serde::de::DeserializeOwned>(item: &serde_dynamo::Item) -> Result<T, String> {
    let map: std::collections::HashMap<String, serde_dynamo::AttributeValue> = item.clone().into();
    let deserializer =
        serde_dynamo::Deserializer::from_attribute_value(serde_dynamo::AttributeValue::M(map));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

#[derive(Debug, Clone)]
pub struct ReleaseStore {
    client: Client,
}

/// What a status write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Written,
    /// The entry at that index is another intent now, or already finished.
    Refused,
}

impl ReleaseStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn get(&self, table: &str, release_id: &str) -> Result<Option<Release>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key("release_id", s(release_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", table, e))?;
        output.item.map(decode).transpose()
    }

    /// Writes a new release item; refuses to overwrite an existing `release_id`.
    pub async fn create(&self, table: &str, release: &Release) -> Result<(), StoreError> {
        let item: Item = serde_dynamo::to_item(release).map_err(|e| StoreError::Encode {
            what: "release",
            source: e.into(),
        })?;
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(release_id)")
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", table, e))?;
        Ok(())
    }

    /// Appends a deployment entry atomically (no lost updates when two people deploy at
    /// once) and moves `last_date_deployed` forward; returns the entry's index.
    pub async fn append_deployment(
        &self,
        table: &str,
        release_id: &str,
        entry: &Deployment,
    ) -> Result<usize, StoreError> {
        let value: aws_sdk_dynamodb::types::AttributeValue =
            serde_dynamo::to_attribute_value(entry).map_err(|e| StoreError::Encode {
                what: "deployment entry",
                source: e.into(),
            })?;
        let output = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(release_id))
            .update_expression(
                "SET deployments = list_append(if_not_exists(deployments, :empty), :entry), last_date_deployed = :at",
            )
            .condition_expression("attribute_exists(release_id)")
            .expression_attribute_values(":empty", aws_sdk_dynamodb::types::AttributeValue::L(vec![]))
            .expression_attribute_values(":entry", aws_sdk_dynamodb::types::AttributeValue::L(vec![value]))
            .expression_attribute_values(":at", s(entry.date_created.to_wire()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::aws("UpdateItem", table, e))?;
        let count = output
            .attributes
            .and_then(|a| {
                a.get("deployments")
                    .and_then(|d| d.as_l().ok().map(Vec::len))
            })
            .unwrap_or(1);
        Ok(count.saturating_sub(1))
    }

    /// Writes `status` into the entry `intent` points at, only if that entry is still the
    /// same intent (same `date_created`) and not already finished.
    pub async fn write_status(
        &self,
        table: &str,
        intent: &IntentRef,
        status: Status,
        message: &str,
        now: Timestamp,
    ) -> Result<StatusWrite, StoreError> {
        let entry = format!("deployments[{}]", intent.index);
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(&intent.release_id))
            .update_expression(format!(
                "SET {entry}.#status = :status, {entry}.status_message = :message, {entry}.status_updated_at = :now"
            ))
            .condition_expression(format!(
                "{entry}.date_created = :created AND (attribute_not_exists({entry}.#status) OR NOT ({entry}.#status IN (:succeeded, :failed, :superseded)))"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":message", s(message))
            .expression_attribute_values(":now", s(now.to_wire()))
            .expression_attribute_values(":created", s(intent.date_created.to_wire()))
            .expression_attribute_values(":succeeded", s(Status::Succeeded.as_str()))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":superseded", s(Status::Superseded.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StatusWrite::Written),
            Err(e) if is_condition_failed(&e) => Ok(StatusWrite::Refused),
            Err(e) => Err(StoreError::aws("UpdateItem", table, e)),
        }
    }

    /// Records `by`'s approval on the entry `intent` points at, if it is still that
    /// intent and unfinished; false otherwise.
    pub async fn approve(
        &self,
        table: &str,
        intent: &IntentRef,
        by: &crate::model::Person,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let entry = format!("deployments[{}]", intent.index);
        let person: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(by)
            .map_err(|e| StoreError::Encode {
                what: "approver",
                source: e.into(),
            })?;
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(&intent.release_id))
            .update_expression(format!(
                "SET {entry}.approved_by = :by, {entry}.approved_at = :now"
            ))
            .condition_expression(format!(
                "{entry}.date_created = :created AND (attribute_not_exists({entry}.#status) OR NOT ({entry}.#status IN (:succeeded, :failed, :superseded)))"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":by", person)
            .expression_attribute_values(":now", s(now.to_wire()))
            .expression_attribute_values(":created", s(intent.date_created.to_wire()))
            .expression_attribute_values(":succeeded", s(Status::Succeeded.as_str()))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":superseded", s(Status::Superseded.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("UpdateItem", table, e)),
        }
    }

    /// Moves `last_date_deployed` forward to `at` (never back), so the `deployment_gsi`
    /// finds every release with an intent at or after `at`.
    pub async fn mark_deployed(
        &self,
        table: &str,
        release_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(release_id))
            .update_expression("SET last_date_deployed = :at")
            .condition_expression(
                "attribute_exists(release_id) AND (attribute_not_exists(last_date_deployed) OR last_date_deployed < :at)",
            )
            .expression_attribute_values(":at", s(at.to_wire()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("UpdateItem", table, e)),
        }
    }

    /// Releases of `project` most recently deployed first (`deployment_gsi`), read page by
    /// page until `keep_going` says the rest cannot matter. Undecodable items are returned
    /// as errors beside the rest, never instead of them.
    pub async fn recently_deployed(
        &self,
        table: &str,
        project: &str,
        mut keep_going: impl FnMut(&Release) -> bool + Send,
    ) -> Result<Vec<Result<Release, StoreError>>, StoreError> {
        self.query_newest(table, DEPLOYMENT_GSI, project, usize::MAX, &mut keep_going)
            .await
    }

    /// Releases of `project`, newest first (`project_gsi`), at most `limit`.
    pub async fn list_project(
        &self,
        table: &str,
        project: &str,
        limit: usize,
    ) -> Result<Vec<Result<Release, StoreError>>, StoreError> {
        self.query_newest(table, PROJECT_GSI, project, limit, &mut |_| true)
            .await
    }

    async fn query_newest(
        &self,
        table: &str,
        index: &str,
        project: &str,
        limit: usize,
        keep_going: &mut (dyn FnMut(&Release) -> bool + Send),
    ) -> Result<Vec<Result<Release, StoreError>>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression("project_id = :project")
                .expression_attribute_values(":project", s(project))
                .scan_index_forward(false)
                .limit(100)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", table, e))?;
            for item in page.items.unwrap_or_default() {
                let release = decode(item);
                if let Ok(release) = &release
                    && !keep_going(release)
                {
                    return Ok(found);
                }
                found.push(release);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_dynamo::AttributeValue as Av;

    fn item(pairs: Vec<(&str, Av)>) -> serde_dynamo::Item {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<std::collections::HashMap<_, _>>()
            .into()
    }

    #[test]
    fn an_undecodable_item_is_named_by_its_key_and_the_attribute_that_failed() {
        let bad = item(vec![
            ("release_id", Av::S("r9".into())),
            ("project_id", Av::N("7".into())),
        ]);
        let error = decode(bad).unwrap_err().to_string();
        assert!(error.contains("release_id \"r9\""), "{error}");
        assert!(error.contains("project_id: "), "{error}");
    }
}
