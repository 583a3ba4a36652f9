//! The approvals table: who approved, and who requested, a deployment — recorded where
//! the item's key proves its writer. Its hash key `principal` is the writer's AWS
//! `aws:userid`, and the IAM policies for deployers and approvers allow `PutItem` only
//! where `dynamodb:LeadingKeys` equals `${aws:userid}`: nobody can write an item under
//! another's identity. The range key `subject` names what is attested:
//! `approve#{project}#{environment}#{release_id}#{date_created}` or `request#…`. The
//! controller reads them by subject on the `subject_gsi` index.

use aws_sdk_dynamodb::{Client, types::AttributeValue};

use super::{StoreError, s};
pub use crate::model::approval::Principal;
use crate::model::{EnvKey, IntentRef, Timestamp};

pub const SUBJECT_GSI: &str = "subject_gsi";

/// What a principal attests of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// "I approve this deployment."
    Approve,
    /// "I requested this deployment" (written by `relctl deploy`).
    Request,
}

/// The subject an attestation of `kind` about `intent` is recorded under; the date is
/// the canonical form of the entry's instant, however the entry spells it.
pub fn subject(kind: Kind, key: &EnvKey, intent: &IntentRef) -> String {
    let kind = match kind {
        Kind::Approve => "approve",
        Kind::Request => "request",
    };
    format!(
        "{kind}#{}#{}#{}#{}",
        key.project,
        key.environment,
        intent.release_id,
        intent.date_created.to_wire()
    )
}

#[derive(Debug, Clone)]
pub struct Attestations {
    client: Client,
    table: String,
}

impl Attestations {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records that `by` attests `subject`. IAM makes `by.id` the caller's own
    /// `aws:userid`; a second attestation by the same principal replaces the first.
    pub async fn record(
        &self,
        by: &Principal,
        subject: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("principal", s(&by.id))
            .item("subject", s(subject))
            .item("arn", s(&by.arn))
            .item("at", s(now.to_wire()))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", &self.table, e))?;
        Ok(())
    }

    /// Every principal that attested `subject`.
    pub async fn principals(&self, subject: &str) -> Result<Vec<Principal>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SUBJECT_GSI)
                .key_condition_expression("#s = :subject")
                .expression_attribute_names("#s", "subject")
                .expression_attribute_values(":subject", s(subject))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", &self.table, e))?;
            for item in page.items.unwrap_or_default() {
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(value)) => Some(value.clone()),
                    _ => None,
                };
                if let Some(id) = text("principal") {
                    let arn = text("arn").unwrap_or_else(|| id.clone());
                    found.push(Principal { id, arn });
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}
