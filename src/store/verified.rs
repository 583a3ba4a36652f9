//! The controller's own record of what succeeded where: one state-table item per
//! (environment, release), `verified#{project}#{environment}#{release_id}`, written when
//! a deployment succeeds — before its entry says so, so a crash between the two leaves
//! the record, never a claim without it. It names the intent and the digest of the
//! images applied. Promotion gates read these (for the images a release has now), and
//! a deployment entry's `succeeded` counts only where one agrees: a record's `status`
//! is something any writer can set.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};

use super::{Item, StoreError, s, state::StateStore};
use crate::model::{EnvKey, Timestamp};

/// One verified success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The intent that succeeded (its `date_created`).
    pub date_created: Timestamp,
    /// The digest of the images it applied.
    pub images: String,
}

fn pk(key: &EnvKey, release_id: &str) -> String {
    format!("verified#{}#{}#{release_id}", key.project, key.environment)
}

impl StateStore {
    /// Records that the intent of `release_id` dated `date_created` succeeded in
    /// `key`'s environment with the images whose digest is `images`.
    pub async fn record_verified(
        &self,
        key: &EnvKey,
        release_id: &str,
        verified: &Verified,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk(key, release_id)))
            .item("release_id", s(release_id))
            .item("date_created", s(verified.date_created.to_wire()))
            .item("images", s(&verified.images))
            .item("at", s(now.to_wire()))
            .build()
            .map_err(|e| StoreError::Encode {
                what: "verified release",
                source: e.into(),
            })?;
        self.write(TransactWriteItem::builder().put(put).build())
            .await?;
        Ok(())
    }

    /// The verified successes of `release_id` in each of `environments` (of
    /// `project`), read together.
    pub async fn verified(
        &self,
        project: &str,
        environments: &[String],
        release_id: &str,
    ) -> Result<HashMap<String, Verified>, StoreError> {
        let mut found = HashMap::new();
        if environments.is_empty() {
            return Ok(found);
        }
        let by_pk: HashMap<String, String> = environments
            .iter()
            .map(|e| (pk(&EnvKey::new(project, e), release_id), e.clone()))
            .collect();
        let mut wanted: Vec<Item> = by_pk
            .keys()
            .map(|pk| Item::from([("pk".to_owned(), s(pk))]))
            .collect();
        while !wanted.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut wanted)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Encode {
                    what: "verified keys",
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
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(value)) => Some(value.clone()),
                    _ => None,
                };
                let (Some(pk), Some(date), Some(images)) =
                    (text("pk"), text("date_created"), text("images"))
                else {
                    continue;
                };
                let (Some(env), Ok(date_created)) = (by_pk.get(&pk), Timestamp::parse(&date))
                else {
                    continue;
                };
                found.insert(
                    env.clone(),
                    Verified {
                        date_created,
                        images,
                    },
                );
            }
            if let Some(left) = output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
            {
                wanted = left.keys;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Ok(found)
    }
}
