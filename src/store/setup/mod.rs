//! `relctl setup` and the controller's start-up check: what relctl relies on in each
//! table (key schema, both GSIs with their keys and projection ALL, the
//! `NEW_AND_OLD_IMAGES` stream), checked on the table's description. Set-up creates a
//! missing table, and on an adopted one adds only what is missing (the stream, then each
//! index one at a time, waiting for ACTIVE); it refuses, naming the attribute, what it
//! must not change (another hash key, an index keyed otherwise, another stream view).
//! Production uses the Terraform in `deploy/`; this is for the demo, tests and adoption.

use std::time::Duration;

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
        GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection,
        ProjectionType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification,
        StreamViewType, TableDescription, TableStatus,
    },
};

mod check;

use check::scalar_type;
pub use check::{
    Finding, INDEXES, Repair, TableProblems, check_approvals, check_releases, check_state,
};

use super::{StoreError, attestations::SUBJECT_GSI};

/// What set-up did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupAction {
    Created(String),
    Repaired { table: String, done: Vec<Repair> },
    Unchanged(String),
}

impl std::fmt::Display for SetupAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created(t) => write!(f, "created table {t}"),
            Self::Repaired { table, done } => {
                let done: Vec<String> = done.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "table {table}: {}; nothing else changed",
                    done.join(", ")
                )
            }
            Self::Unchanged(t) => write!(f, "table {t} is ready; nothing changed"),
        }
    }
}

/// Creates the releases table, or adds to an adopted one what is missing. `progress`
/// hears each step as it starts (an index on a big table takes minutes).
pub async fn ensure_releases_table(
    client: &Client,
    table: &str,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<SetupAction, StoreError> {
    let Some(existing) = describe(client, table).await? else {
        create_releases_table(client, table).await?;
        return Ok(SetupAction::Created(table.into()));
    };
    let findings = check_releases(&existing);
    refuse_unusable(table, &findings)?;
    let mut done = Vec::new();
    for finding in findings {
        match finding {
            Finding::Missing(repair) => {
                progress(format!("table {table}: {}…", pending_words(&repair)));
                // Described again: the previous repair changed the definitions.
                let current = describe(client, table)
                    .await?
                    .unwrap_or_else(|| existing.clone());
                apply(client, table, &current, &repair).await?;
                wait_active(client, table, progress).await?;
                done.push(repair);
            }
            Finding::Pending(what) => {
                progress(format!("table {table}: {what}; waiting"));
                wait_active(client, table, progress).await?;
            }
            Finding::Unusable(_) => {}
        }
    }
    Ok(if done.is_empty() {
        SetupAction::Unchanged(table.into())
    } else {
        SetupAction::Repaired {
            table: table.into(),
            done,
        }
    })
}

fn pending_words(repair: &Repair) -> String {
    match repair {
        Repair::Stream => "turning on the NEW_AND_OLD_IMAGES stream".into(),
        Repair::Index { name, sort } => {
            format!("creating index {name} (project_id, {sort}); waiting for it to be ACTIVE")
        }
    }
}

fn refuse_unusable(table: &str, findings: &[Finding]) -> Result<(), StoreError> {
    let problems: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f, Finding::Unusable(_)))
        .map(ToString::to_string)
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Unusable {
            table: table.into(),
            problems,
        })
    }
}

async fn apply(
    client: &Client,
    table: &str,
    existing: &TableDescription,
    repair: &Repair,
) -> Result<(), StoreError> {
    let request = client.update_table().table_name(table);
    let request = match repair {
        Repair::Stream => request.stream_specification(new_and_old_images()),
        Repair::Index { name, sort } => {
            let mut create = CreateGlobalSecondaryIndexAction::builder()
                .index_name(*name)
                .key_schema(key("project_id", KeyType::Hash))
                .key_schema(key(sort, KeyType::Range))
                .projection(all());
            if let Some(throughput) = provisioned(existing) {
                create = create.provisioned_throughput(throughput);
            }
            let create = create.build().map_err(|e| StoreError::Encode {
                what: "index creation",
                source: e.into(),
            })?;
            // Every definition the table has, plus the index's keys: some emulators
            // replace the table's definitions with the ones given.
            let mut definitions = existing.attribute_definitions().to_vec();
            for attribute in ["project_id", *sort] {
                if scalar_type(existing, attribute).is_none() {
                    definitions.push(self::attribute(attribute));
                }
            }
            request
                .set_attribute_definitions(Some(definitions))
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder().create(create).build(),
                )
        }
    };
    request
        .send()
        .await
        .map_err(|e| StoreError::aws("UpdateTable", table, e))?;
    Ok(())
}

/// The table's own throughput, for an index on a provisioned table.
fn provisioned(table: &TableDescription) -> Option<ProvisionedThroughput> {
    let on_demand = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .is_none_or(|m| m == &BillingMode::PayPerRequest);
    let current = table.provisioned_throughput()?;
    let (read, write) = (
        current.read_capacity_units()?,
        current.write_capacity_units()?,
    );
    if on_demand && read == 0 {
        return None;
    }
    ProvisionedThroughput::builder()
        .read_capacity_units(read.max(1))
        .write_capacity_units(write.max(1))
        .build()
        .ok()
}

async fn create_releases_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("release_id"))
        .attribute_definitions(attribute("project_id"))
        .key_schema(key("release_id", KeyType::Hash))
        .stream_specification(new_and_old_images());
    for (name, sort) in INDEXES {
        request = request
            .attribute_definitions(attribute(sort))
            .global_secondary_indexes(index(name, sort));
    }
    request
        .send()
        .await
        .map_err(|e| StoreError::aws("CreateTable", table, e))?;
    wait_active(client, table, &mut |_| {}).await
}

/// Creates the state table if missing; refuses one keyed otherwise.
pub async fn ensure_state_table(client: &Client, table: &str) -> Result<SetupAction, StoreError> {
    if let Some(existing) = describe(client, table).await? {
        refuse_unusable(table, &check_state(&existing))?;
        return Ok(SetupAction::Unchanged(table.into()));
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .key_schema(key("pk", KeyType::Hash))
        .send()
        .await
        .map_err(|e| StoreError::aws("CreateTable", table, e))?;
    wait_active(client, table, &mut |_| {}).await?;
    Ok(SetupAction::Created(table.into()))
}

pub async fn describe(
    client: &Client,
    table: &str,
) -> Result<Option<TableDescription>, StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(output) => Ok(output.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::aws("DescribeTable", table, e)),
    }
}

/// Until the table and every index on it are ACTIVE; a line to `progress` every 15 s.
async fn wait_active(
    client: &Client,
    table: &str,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<(), StoreError> {
    const POLL: Duration = Duration::from_millis(500);
    const LIMIT: Duration = Duration::from_secs(3600);
    let mut waited = Duration::ZERO;
    while waited < LIMIT {
        let described = describe(client, table).await?;
        let active = described.as_ref().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status().is_none_or(|s| s == &IndexStatus::Active))
        });
        if active {
            return Ok(());
        }
        if !waited.is_zero() && waited.as_millis().is_multiple_of(15_000) {
            progress(format!(
                "table {table}: still waiting for ACTIVE after {}s",
                waited.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
        waited += POLL;
    }
    Err(StoreError::Aws {
        op: "DescribeTable",
        table: table.into(),
        source: crate::aws::AwsError::other(
            "table or index did not become ACTIVE within an hour",
            crate::aws::ErrorClass::Timeout,
        ),
    })
}

fn new_and_old_images() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("stream_enabled is set")
}

/// Creates the approvals table if missing (hash key `principal`, range key `subject`,
/// and `subject_gsi` to read a deployment's attestations); refuses one keyed otherwise.
pub async fn ensure_approvals_table(
    client: &Client,
    table: &str,
) -> Result<SetupAction, StoreError> {
    if let Some(existing) = describe(client, table).await? {
        refuse_unusable(table, &check_approvals(&existing))?;
        return Ok(SetupAction::Unchanged(table.into()));
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("principal"))
        .attribute_definitions(attribute("subject"))
        .key_schema(key("principal", KeyType::Hash))
        .key_schema(key("subject", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(SUBJECT_GSI)
                .key_schema(key("subject", KeyType::Hash))
                .key_schema(key("principal", KeyType::Range))
                .projection(all())
                .build()
                .expect("name and key schema are set"),
        )
        .send()
        .await
        .map_err(|e| StoreError::aws("CreateTable", table, e))?;
    wait_active(client, table, &mut |_| {}).await?;
    Ok(SetupAction::Created(table.into()))
}

pub(crate) fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

pub(crate) fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

fn all() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

fn index(name: &str, sort: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key("project_id", KeyType::Hash))
        .key_schema(key(sort, KeyType::Range))
        .projection(all())
        .build()
        .expect("name and key schema are set")
}
