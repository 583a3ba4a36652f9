//! The controller-owned state table (hash key `pk`): one item per environment
//! (`env#{project}#{environment}`) with the desired pointer, what was last applied, the
//! phase, errors and history; and one item per stream (`checkpoints#{stream arn}`) with
//! the last processed sequence number of each shard.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, Put, TransactWriteItem, Update},
};
use serde::{Deserialize, Serialize};

use super::{
    Item, StoreError,
    lease::{self, Fence, Written},
    s,
};
use crate::model::{EnvKey, IntentRef, Timestamp};

pub use crate::model::state::{
    Activity, Attempts, Current, EnvState, HistoryEntry, HistoryKind, Observed, Outcome, Run,
    STATE_VERSION, Wait,
};

/// Attributes the reconciler owns; `desired` is written only by [`StateStore::advance`].
const PROGRESS: &[&str] = &[
    "activity",
    "observed",
    "drift",
    "plan_drift",
    "rollback",
    "promotion",
    "deliveries",
    "rolled_back",
    "history",
    "updated_at",
];

/// Attributes of the item shape before version 2: read once, removed by the next write.
const LEGACY: &[&str] = &[
    "active",
    "phase",
    "status",
    "message",
    "last_error",
    "attempts",
    "actuation",
    "requested_by",
    "since",
];

/// The outcome of offering an intent as an environment's desired one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// It is now desired; `previous` was, before.
    Advanced { previous: Option<IntentRef> },
    /// It already is.
    Current,
    /// A newer intent is desired.
    Stale { desired: IntentRef },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub sequence: Option<String>,
    /// The shard is closed and was read to its end.
    #[serde(default)]
    pub finished: bool,
}

#[derive(Debug, Clone)]
pub struct StateStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Set on a leader: every write is refused once another replica holds the lease.
    fence: Option<Fence>,
    /// Each environment's desired pointer as this process last read or wrote it. The
    /// pointer only ever moves to newer intents, so the one in the table is this one
    /// or newer: an intent older than it is stale without a read, and a newer one is
    /// offered with it as the expected value (a compare-and-swap that reads again
    /// only when someone moved it meanwhile). One entry per environment taken in.
    desired: Arc<Mutex<HashMap<EnvKey, IntentRef>>>,
    /// Each environment's last intent this process read or wrote as finished. An entry
    /// once finished stays so, so intake need not try (and fail) to supersede it.
    finished: Arc<Mutex<HashMap<EnvKey, IntentRef>>>,
}

pub fn env_pk(key: &EnvKey) -> String {
    format!("env#{}#{}", key.project, key.environment)
}

/// Sorts as [`IntentRef::order_key`] does: fixed-width time, then release id (ids with
/// characters below a space are refused on intake), then index.
fn order(intent: &IntentRef) -> String {
    format!(
        "{} {} {:08}",
        intent.date_created.to_wire(),
        intent.release_id,
        intent.index
    )
}

impl StateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            fence: None,
            desired: Arc::default(),
            finished: Arc::default(),
        }
    }

    /// The same store, its writes fenced by `fence`, knowing nothing yet: another
    /// replica may have led between this process's terms, so what it remembered from an
    /// earlier one is forgotten. Within a term only its holder moves the pointers, so
    /// what the store remembers is what the table holds.
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self.desired = Arc::default();
        self.finished = Arc::default();
        self
    }

    pub(crate) async fn write(&self, item: TransactWriteItem) -> Result<Written, StoreError> {
        lease::fenced(&self.client, &self.table, self.fence.as_ref(), item).await
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get(&self, key: &EnvKey) -> Result<EnvState, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(env_pk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        let state: EnvState = match output.item {
            None => EnvState::default(),
            Some(item) => serde_dynamo::from_item(item).map_err(|e| StoreError::Decode {
                what: format!("state of {key}"),
                source: e.into(),
            })?,
        };
        self.remember(key, state.desired.as_ref());
        self.remember_finished(key, &state);
        Ok(state)
    }

    /// Whether `intent` is known, from this process's own reads and writes, to have
    /// finished (its entry says `succeeded`, `failed` or `superseded`). False when
    /// unknown: the caller then writes, and the write's condition decides.
    pub fn known_finished(&self, key: &EnvKey, intent: &IntentRef) -> bool {
        let known = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        known.get(key).is_some_and(|f| f.same_entry(intent))
    }

    fn remember_finished(&self, key: &EnvKey, state: &EnvState) {
        if let Activity::Finished { current, .. } = &state.activity {
            let mut known = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            known.insert(key.clone(), current.intent.clone());
        }
    }

    /// Makes `intent` the desired one for `key` if it is newer than the current one: a
    /// compare-and-swap on the pointer read, so `previous` is exactly what it replaced.
    pub async fn advance(&self, key: &EnvKey, intent: &IntentRef) -> Result<Advance, StoreError> {
        let pointer: AttributeValue =
            serde_dynamo::to_attribute_value(intent).map_err(|e| StoreError::Encode {
                what: "intent pointer",
                source: e.into(),
            })?;
        let known = self.desired_hint(key);
        let mut current = match known {
            Some(known) => Some(known),
            None => self.get(key).await?.desired,
        };
        for attempt in 0..5 {
            if attempt > 0 {
                current = self.get(key).await?.desired;
            }
            self.remember(key, current.as_ref());
            match &current {
                Some(desired) if desired.same_entry(intent) => return Ok(Advance::Current),
                Some(desired) if !intent.is_newer_than(desired) => {
                    return Ok(Advance::Stale {
                        desired: desired.clone(),
                    });
                }
                _ => {}
            }
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(env_pk(key)))
                .update_expression("SET desired = :pointer, desired_order = :order")
                .expression_attribute_values(":pointer", pointer.clone())
                .expression_attribute_values(":order", s(order(intent)));
            let update = match &current {
                None => update.condition_expression("attribute_not_exists(desired_order)"),
                Some(previous) => update
                    .condition_expression("desired_order = :previous")
                    .expression_attribute_values(":previous", s(order(previous))),
            };
            let update = update.build().map_err(|e| StoreError::Encode {
                what: "desired pointer update",
                source: e.into(),
            })?;
            if self
                .write(TransactWriteItem::builder().update(update).build())
                .await?
                == Written::Done
            {
                self.remember(key, Some(intent));
                return Ok(Advance::Advanced { previous: current });
            }
            // Another writer moved the pointer between our read and write: look again.
        }
        Err(StoreError::Aws {
            op: "advance the desired pointer",
            table: self.table.clone(),
            source: crate::aws::AwsError::other(
                format!("{key}: the pointer kept changing under five attempts"),
                crate::aws::ErrorClass::Conflict,
            ),
        })
    }

    /// The desired pointer of `key` as this process last read or wrote it (see
    /// [`Self::fenced`] for why, on a leader, it is the table's).
    pub fn desired_hint(&self, key: &EnvKey) -> Option<IntentRef> {
        let known = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        known.get(key).cloned()
    }

    fn remember(&self, key: &EnvKey, desired: Option<&IntentRef>) {
        let Some(desired) = desired else { return };
        let mut known = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(key) {
            Some(have) if !desired.is_newer_than(have) => {}
            _ => {
                known.insert(key.clone(), desired.clone());
            }
        }
    }

    /// Writes the reconciler's attributes of `state`, leaving `desired` alone.
    pub async fn save_progress(&self, key: &EnvKey, state: &EnvState) -> Result<(), StoreError> {
        let mut state = state.clone();
        crate::model::text::bound_state(&mut state);
        let mut item: Item = serde_dynamo::to_item(&state).map_err(|e| StoreError::Encode {
            what: "environment state",
            source: e.into(),
        })?;
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut request = Update::builder()
            .table_name(&self.table)
            .key("pk", s(env_pk(key)))
            .expression_attribute_values(":project", s(&key.project))
            .expression_attribute_values(":environment", s(&key.environment));
        for (i, name) in PROGRESS.iter().enumerate() {
            request = request.expression_attribute_names(format!("#a{i}"), *name);
            match item.remove(*name) {
                Some(value) => {
                    sets.push(format!("#a{i} = :v{i}"));
                    request = request.expression_attribute_values(format!(":v{i}"), value);
                }
                None => removes.push(format!("#a{i}")),
            }
        }
        for (i, name) in LEGACY.iter().enumerate() {
            request = request.expression_attribute_names(format!("#l{i}"), *name);
            removes.push(format!("#l{i}"));
        }
        sets.push("#version = :version".into());
        request = request
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(STATE_VERSION.to_string()));
        sets.push("#project = :project".into());
        request = request.expression_attribute_names("#project", "project");
        sets.push("#env = :environment".into());
        request = request.expression_attribute_names("#env", "environment");
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update =
            request
                .update_expression(expression)
                .build()
                .map_err(|e| StoreError::Encode {
                    what: "environment state update",
                    source: e.into(),
                })?;
        self.write(TransactWriteItem::builder().update(update).build())
            .await?;
        // Written after the entry's own status (the reconciler's order), so `Finished`
        // here means the entry is final.
        self.remember_finished(key, &state);
        Ok(())
    }

    /// Records a stream record the watcher gave up on, for people to look at.
    pub async fn park(
        &self,
        table: &str,
        sequence: &str,
        release_id: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("parked#{table}#{sequence}")))
            .item("releases_table", s(table))
            .item("release_id", s(release_id))
            .item("error", s(error))
            .item("at", s(now.to_wire()))
            .build()
            .map_err(|e| StoreError::Encode {
                what: "parked record",
                source: e.into(),
            })?;
        self.write(TransactWriteItem::builder().put(put).build())
            .await?;
        Ok(())
    }

    /// Records why the last resync of `key` failed (`None`: it did not).
    pub async fn set_resync_error(
        &self,
        key: &EnvKey,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(env_pk(key)))
            .expression_attribute_names("#project", "project")
            .expression_attribute_names("#env", "environment")
            .expression_attribute_values(":project", s(&key.project))
            .expression_attribute_values(":environment", s(&key.environment));
        let update = match error {
            Some(error) => update
                .update_expression(
                    "SET resync_error = :error, resync_error_at = :at, #project = :project, #env = :environment",
                )
                .expression_attribute_values(":error", s(error))
                .expression_attribute_values(":at", s(now.to_wire())),
            None => update.update_expression(
                "SET #project = :project, #env = :environment REMOVE resync_error, resync_error_at",
            ),
        };
        let update = update.build().map_err(|e| StoreError::Encode {
            what: "resync error",
            source: e.into(),
        })?;
        self.write(TransactWriteItem::builder().update(update).build())
            .await?;
        Ok(())
    }

    /// The state of each of `keys` (default where none is stored), read 100 at a time
    /// with BatchGetItem: `relctl status` and `release list` read only what they show.
    pub async fn get_many(&self, keys: &[EnvKey]) -> Result<Vec<EnvState>, StoreError> {
        let mut found: std::collections::HashMap<String, EnvState> = Default::default();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|key| Item::from([("pk".to_owned(), s(env_pk(key)))]))
                .collect();
            while !wanted.is_empty() {
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Encode {
                        what: "state keys",
                        source: e.into(),
                    })?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::aws("BatchGetItem", &self.table, e))?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let Some(AttributeValue::S(pk)) = item.get("pk").cloned() else {
                        continue;
                    };
                    let state = serde_dynamo::from_item(item).map_err(|e| StoreError::Decode {
                        what: format!("state {pk}"),
                        source: e.into(),
                    })?;
                    found.insert(pk, state);
                }
                if let Some(left) = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                {
                    wanted = left.keys;
                    // Throttled: give the table a moment before asking for the rest.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        Ok(keys
            .iter()
            .map(|key| found.remove(&env_pk(key)).unwrap_or_default())
            .collect())
    }

    pub async fn checkpoints(
        &self,
        stream_arn: &str,
    ) -> Result<BTreeMap<String, Checkpoint>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("checkpoints#{stream_arn}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        let Some(mut item) = output.item else {
            return Ok(BTreeMap::new());
        };
        match item.remove("shards") {
            None => Ok(BTreeMap::new()),
            Some(shards) => {
                serde_dynamo::from_attribute_value(shards).map_err(|e| StoreError::Decode {
                    what: format!("checkpoints of {stream_arn}"),
                    source: e.into(),
                })
            }
        }
    }

    /// Replaces the stream's checkpoints; the watcher is the only writer.
    pub async fn save_checkpoints(
        &self,
        stream_arn: &str,
        shards: &BTreeMap<String, Checkpoint>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let shards: AttributeValue =
            serde_dynamo::to_attribute_value(shards).map_err(|e| StoreError::Encode {
                what: "checkpoints",
                source: e.into(),
            })?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("checkpoints#{stream_arn}")))
            .item("shards", shards)
            .item("updated_at", s(now.to_wire()))
            .build()
            .map_err(|e| StoreError::Encode {
                what: "checkpoints",
                source: e.into(),
            })?;
        self.write(TransactWriteItem::builder().put(put).build())
            .await?;
        Ok(())
    }
}
