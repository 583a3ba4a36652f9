//! The releases table: reading RFC 013 items, writing status into one deployment entry
//! (guarded by its `date_created`), keeping `last_date_deployed` current, and the two
//! queries the older tool's indexes serve.

use aws_sdk_dynamodb::{Client, types::ReturnValue};

use super::{Item, StoreError, is_condition_failed, s};
use crate::model::{
    Deployment, IntentRef, Release, Status, Timestamp, record::Rejected, time::Raw,
};

pub const PROJECT_GSI: &str = "project_gsi";
pub const DEPLOYMENT_GSI: &str = "deployment_gsi";

pub use super::decode::decode;

mod batch;
pub use batch::StatusUpdate;

/// The entry's `date_created` exactly as stored, for a condition that must match it.
fn stored(intent: &IntentRef) -> aws_sdk_dynamodb::types::AttributeValue {
    raw_value(intent.stored_date())
}

fn raw_value(raw: Raw) -> aws_sdk_dynamodb::types::AttributeValue {
    match raw {
        Raw::S(text) => s(text),
        Raw::N(number) => aws_sdk_dynamodb::types::AttributeValue::N(number),
    }
}

/// Which entry of which release a status write addresses.
struct Entry<'a> {
    release_id: &'a str,
    index: usize,
    /// Its `date_created` exactly as stored.
    created: aws_sdk_dynamodb::types::AttributeValue,
}

/// What must still hold of an entry for a status write to land.
enum Guard {
    /// Not finished (`succeeded`, `failed`, `superseded`).
    Unfinished,
    /// Not finished, and the release's `last_date_deployed` is before the write's time,
    /// which the write then moves it to.
    UnfinishedAndDeployedBefore,
    /// Still carrying exactly this status, which a writer claimed.
    Claimed(Status),
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
    /// The release with exactly this id in the first of `tables` that holds it, and
    /// that table.
    pub async fn find_in(
        &self,
        tables: &[String],
        release_id: &str,
    ) -> Result<Option<(String, Release)>, StoreError> {
        for table in tables {
            if let Some(release) = self.get(table, release_id).await? {
                return Ok(Some((table.clone(), release)));
            }
        }
        Ok(None)
    }

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
            .expression_attribute_values(":at", s(entry.date_created.at.to_wire()))
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
        let entry = Entry {
            release_id: &intent.release_id,
            index: intent.index,
            created: stored(intent),
        };
        self.set_status(table, entry, Guard::Unfinished, status, message, now)
            .await
    }

    /// Writes `succeeded` into the entry `intent` points at, as [`Self::write_status`]
    /// does, and moves `last_date_deployed` forward to `now` in the same write. Where
    /// `last_date_deployed` is already later (another writer's clock runs ahead), the
    /// status is written alone: the date never moves back.
    pub async fn write_succeeded(
        &self,
        table: &str,
        intent: &IntentRef,
        message: &str,
        now: Timestamp,
    ) -> Result<StatusWrite, StoreError> {
        let entry = || Entry {
            release_id: &intent.release_id,
            index: intent.index,
            created: stored(intent),
        };
        let guard = Guard::UnfinishedAndDeployedBefore;
        match self
            .set_status(table, entry(), guard, Status::Succeeded, message, now)
            .await?
        {
            StatusWrite::Written => Ok(StatusWrite::Written),
            StatusWrite::Refused => {
                self.set_status(
                    table,
                    entry(),
                    Guard::Unfinished,
                    Status::Succeeded,
                    message,
                    now,
                )
                .await
            }
        }
    }

    /// Writes `status` onto the entry `intent` points at over the status `claimed` it
    /// carries that the controller did not write (a writer's claim), only if it still
    /// carries exactly that one.
    pub async fn write_status_over(
        &self,
        table: &str,
        intent: &IntentRef,
        claimed: Status,
        status: Status,
        message: &str,
        now: Timestamp,
    ) -> Result<StatusWrite, StoreError> {
        let entry = Entry {
            release_id: &intent.release_id,
            index: intent.index,
            created: stored(intent),
        };
        self.set_status(table, entry, Guard::Claimed(claimed), status, message, now)
            .await
    }

    /// Writes `failed` with the rejection's reason onto an entry that could not be
    /// read, addressed by its `date_created` exactly as stored; never over a final status.
    pub async fn write_rejected(
        &self,
        table: &str,
        release_id: &str,
        rejected: &Rejected,
        now: Timestamp,
    ) -> Result<StatusWrite, StoreError> {
        let Some(raw) = &rejected.date_created else {
            return Ok(StatusWrite::Refused);
        };
        let entry = Entry {
            release_id,
            index: rejected.index,
            created: raw_value(raw.clone()),
        };
        self.set_status(
            table,
            entry,
            Guard::Unfinished,
            Status::Failed,
            &rejected.why,
            now,
        )
        .await
    }

    /// The one status write: `status`, its (bounded) message and time into `entry`,
    /// only while the entry is still that intent and `guard` holds.
    async fn set_status(
        &self,
        table: &str,
        entry: Entry<'_>,
        guard: Guard,
        status: Status,
        message: &str,
        now: Timestamp,
    ) -> Result<StatusWrite, StoreError> {
        let path = format!("deployments[{}]", entry.index);
        let deployed = matches!(guard, Guard::UnfinishedAndDeployedBefore);
        let request = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(entry.release_id))
            // One atomic write in DynamoDB; the status goes last so an emulator that
            // applies the actions one by one (moto) never shows a new status with the
            // message of the one before.
            .update_expression(format!(
                "SET {path}.status_message = :message, {path}.status_updated_at = :now{}, {path}.#status = :status",
                if deployed { ", last_date_deployed = :now" } else { "" }
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":message", s(crate::model::text::message(message)))
            .expression_attribute_values(":now", s(now.to_wire()))
            .expression_attribute_values(":created", entry.created);
        let unfinished = format!(
            "{path}.date_created = :created AND (attribute_not_exists({path}.#status) OR NOT ({path}.#status IN (:succeeded, :failed, :superseded, :cancelled)))"
        );
        let request = match guard {
            Guard::Unfinished | Guard::UnfinishedAndDeployedBefore => request
                .condition_expression(if deployed {
                    format!("{unfinished} AND (attribute_not_exists(last_date_deployed) OR last_date_deployed < :now)")
                } else {
                    unfinished
                })
                .expression_attribute_values(":succeeded", s(Status::Succeeded.as_str()))
                .expression_attribute_values(":failed", s(Status::Failed.as_str()))
                .expression_attribute_values(":superseded", s(Status::Superseded.as_str()))
                .expression_attribute_values(":cancelled", s(Status::Cancelled.as_str())),
            Guard::Claimed(claimed) => request
                .condition_expression(format!(
                    "{path}.date_created = :created AND {path}.#status = :claimed"
                ))
                .expression_attribute_values(":claimed", s(claimed.as_str())),
        };
        match request.send().await {
            Ok(_) => Ok(StatusWrite::Written),
            Err(e) if is_condition_failed(&e) => Ok(StatusWrite::Refused),
            Err(e) => Err(StoreError::aws("UpdateItem", table, e)),
        }
    }

    /// Removes `fields` (outcome or approval fields a writer put in a fresh entry) from
    /// the entry `intent` points at, if it is still that entry.
    pub async fn clear_claims(
        &self,
        table: &str,
        intent: &IntentRef,
        fields: &[&str],
    ) -> Result<bool, StoreError> {
        let entry = format!("deployments[{}]", intent.index);
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(&intent.release_id))
            .condition_expression(format!("{entry}.date_created = :created"))
            .expression_attribute_values(":created", stored(intent));
        let mut removes = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            request = request.expression_attribute_names(format!("#c{i}"), *field);
            removes.push(format!("{entry}.#c{i}"));
        }
        let result = request
            .update_expression(format!("REMOVE {}", removes.join(", ")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
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
        let person: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(by)
            .map_err(|e| StoreError::Encode {
                what: "approver",
                source: e.into(),
            })?;
        self.annotate(
            table,
            intent,
            "approved_by = :by, {entry}.approved_at = :now",
            [(":by", person), (":now", s(now.to_wire()))],
        )
        .await
    }

    /// Asks for the entry `intent` points at to be cancelled (`cancel = reason`): a hint
    /// that wakes the controller, which acts only on the caller's cancel attestation.
    pub async fn request_cancel(
        &self,
        table: &str,
        intent: &IntentRef,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.annotate(table, intent, "cancel = :reason", [(":reason", s(reason))])
            .await
    }

    /// Sets `{entry}.{set}` on the entry `intent` points at, if it is still that intent
    /// and unfinished; false otherwise.
    async fn annotate<const N: usize>(
        &self,
        table: &str,
        intent: &IntentRef,
        set: &str,
        values: [(&str, aws_sdk_dynamodb::types::AttributeValue); N],
    ) -> Result<bool, StoreError> {
        let entry = format!("deployments[{}]", intent.index);
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .key("release_id", s(&intent.release_id))
            .update_expression(format!("SET {entry}.{}", set.replace("{entry}", &entry)))
            .condition_expression(format!(
                "{entry}.date_created = :created AND (attribute_not_exists({entry}.#status) OR NOT ({entry}.#status IN (:succeeded, :failed, :superseded, :cancelled)))"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":created", stored(intent))
            .expression_attribute_values(":succeeded", s(Status::Succeeded.as_str()))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":superseded", s(Status::Superseded.as_str()))
            .expression_attribute_values(":cancelled", s(Status::Cancelled.as_str()));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
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

    /// The ids of `project`'s releases that start with `prefix`, among its `window`
    /// newest (`project_gsi`, only the key read): what a short id may stand for.
    pub async fn ids_starting(
        &self,
        table: &str,
        project: &str,
        prefix: &str,
        window: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        let (mut start, mut read) = (None, 0);
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .index_name(PROJECT_GSI)
                .key_condition_expression("project_id = :project")
                .filter_expression("begins_with(release_id, :prefix)")
                .projection_expression("release_id")
                .expression_attribute_values(":project", s(project))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(false)
                .limit(1000)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", table, e))?;
            read += page.scanned_count.max(0) as usize;
            for item in page.items.unwrap_or_default() {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) = item.get("release_id")
                {
                    found.push(id.clone());
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() && read < window => start = Some(key),
                _ => return Ok(found),
            }
        }
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
