//! The leader lease, KCL-style: one item (`pk = "lease"`) in the state table with the
//! holder, a counter that grows with every change of holder, and an expiry in wall-clock
//! milliseconds, taken and renewed by conditional writes. Every state-table write of a
//! leader carries a condition on the lease (a transaction with a ConditionCheck), so a
//! paused former leader that wakes up finds its writes refused.

use std::time::Duration;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem},
};

use super::{StoreError, is_condition_failed, s};

pub const LEASE_PK: &str = "lease";

/// Proof of holding the lease: writes carry it, and fail once it is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub owner: String,
    pub counter: u64,
}

#[derive(Debug, Clone)]
pub struct Leases {
    client: Client,
    table: String,
}

fn millis(offset: Duration) -> i64 {
    chrono::Utc::now().timestamp_millis() + offset.as_millis() as i64
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Leases {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Takes the lease if nobody holds it or it expired; `None` when another holds it.
    pub async fn acquire(
        &self,
        owner: &str,
        duration: Duration,
    ) -> Result<Option<Fence>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(LEASE_PK))
            .update_expression(
                "SET #o = :me, #c = if_not_exists(#c, :zero) + :one, expires_at = :until, renewed_at = :now",
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#c", "counter")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", n(millis(duration)))
            .expression_attribute_values(":now", n(millis(Duration::ZERO)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let counter = output
                    .attributes
                    .and_then(|a| {
                        a.get("counter")
                            .and_then(|c| c.as_n().ok())
                            .and_then(|c| c.parse().ok())
                    })
                    .unwrap_or_default();
                Ok(Some(Fence {
                    owner: owner.to_owned(),
                    counter,
                }))
            }
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }

    /// Extends the lease; false when it is no longer ours.
    pub async fn renew(&self, fence: &Fence, duration: Duration) -> Result<bool, StoreError> {
        self.set_expiry(
            fence,
            millis(duration),
            "SET expires_at = :until, renewed_at = :now",
        )
        .await
    }

    /// Gives the lease up (on shutdown), so a standby takes over at once.
    pub async fn release(&self, fence: &Fence) -> Result<bool, StoreError> {
        self.set_expiry(fence, 0, "SET expires_at = :until, released_at = :now")
            .await
    }

    /// Who holds (or last held) the lease, for `relctl status` and `deploy --wait`.
    pub async fn holder(&self) -> Result<Option<Holder>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(LEASE_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(Some(Holder {
            owner: item
                .get("owner")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default(),
            expires_at: number("expires_at").unwrap_or_default(),
            renewed_at: number("renewed_at"),
        }))
    }

    async fn set_expiry(
        &self,
        fence: &Fence,
        until: i64,
        expression: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(LEASE_PK))
            .update_expression(expression)
            .expression_attribute_values(":now", n(millis(Duration::ZERO)))
            .condition_expression("#o = :me AND #c = :counter")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#c", "counter")
            .expression_attribute_values(":me", s(&fence.owner))
            .expression_attribute_values(":counter", n(fence.counter as i64))
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }
}

/// The lease as stored: who, until when, last renewed when (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub expires_at: i64,
    pub renewed_at: Option<i64>,
}

impl Holder {
    /// Whether the lease is held at `now_ms` (a controller is acting).
    pub fn is_held(&self, now_ms: i64) -> bool {
        self.expires_at > now_ms
    }
}

/// What a fenced write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The write's own condition did not hold.
    ConditionFailed,
}

/// Writes `item` to `table`, in one transaction with a check that `fence` still holds
/// the lease when there is one.
pub async fn fenced(
    client: &Client,
    table: &str,
    fence: Option<&Fence>,
    item: TransactWriteItem,
) -> Result<Written, StoreError> {
    let mut request = client.transact_write_items();
    if let Some(fence) = fence {
        let check = ConditionCheck::builder()
            .table_name(table)
            .key("pk", s(LEASE_PK))
            .condition_expression("#o = :me AND #c = :counter")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#c", "counter")
            .expression_attribute_values(":me", s(&fence.owner))
            .expression_attribute_values(":counter", n(fence.counter as i64))
            .build()
            .map_err(|e| StoreError::Encode {
                what: "lease check",
                source: e.into(),
            })?;
        request =
            request.transact_items(TransactWriteItem::builder().condition_check(check).build());
    }
    match request.transact_items(item).send().await {
        Ok(_) => Ok(Written::Done),
        Err(e) => {
            let reasons: Vec<Option<String>> = e
                .as_service_error()
                .and_then(|s| match s {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                        Some(c.cancellation_reasons().iter().map(|r| r.code.clone()).collect())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            let failed = |i: usize| {
                reasons.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
            };
            match fence {
                Some(fence) if failed(0) => Err(StoreError::Fenced {
                    owner: fence.owner.clone(),
                    counter: fence.counter,
                }),
                _ if failed(reasons.len().saturating_sub(1)) && !reasons.is_empty() => {
                    Ok(Written::ConditionFailed)
                }
                _ => Err(StoreError::aws("TransactWriteItems", table, e)),
            }
        }
    }
}
