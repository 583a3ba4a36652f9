//! `relctl setup`: create the releases table(s) and the state table when they are
//! missing, and turn on the stream of an adopted releases table that has none. Idempotent;
//! it changes nothing else on a table that exists. Production uses the Terraform in
//! `deploy/`; this is for the local demo, the tests, and adopting older tables.

use std::time::Duration;

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
        TableDescription, TableStatus,
    },
};

use super::{
    StoreError,
    releases::{DEPLOYMENT_GSI, PROJECT_GSI},
};

/// What set-up did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupAction {
    Created(String),
    StreamEnabled(String),
    Unchanged(String),
}

impl std::fmt::Display for SetupAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created(t) => write!(f, "created table {t}"),
            Self::StreamEnabled(t) => {
                write!(f, "turned on the NEW_AND_OLD_IMAGES stream of table {t}")
            }
            Self::Unchanged(t) => write!(f, "table {t} is ready; nothing changed"),
        }
    }
}

pub async fn ensure_releases_table(
    client: &Client,
    table: &str,
) -> Result<SetupAction, StoreError> {
    match describe(client, table).await? {
        Some(existing) => {
            let enabled = existing
                .stream_specification()
                .is_some_and(|s| s.stream_enabled());
            if enabled {
                return Ok(SetupAction::Unchanged(table.into()));
            }
            client
                .update_table()
                .table_name(table)
                .stream_specification(new_and_old_images())
                .send()
                .await
                .map_err(|e| StoreError::aws("UpdateTable", table, e))?;
            wait_active(client, table).await?;
            Ok(SetupAction::StreamEnabled(table.into()))
        }
        None => {
            client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attribute("release_id"))
                .attribute_definitions(attribute("project_id"))
                .attribute_definitions(attribute("date_created"))
                .attribute_definitions(attribute("last_date_deployed"))
                .key_schema(key("release_id", KeyType::Hash))
                .global_secondary_indexes(index(PROJECT_GSI, "date_created"))
                .global_secondary_indexes(index(DEPLOYMENT_GSI, "last_date_deployed"))
                .stream_specification(new_and_old_images())
                .send()
                .await
                .map_err(|e| StoreError::aws("CreateTable", table, e))?;
            wait_active(client, table).await?;
            Ok(SetupAction::Created(table.into()))
        }
    }
}

pub async fn ensure_state_table(client: &Client, table: &str) -> Result<SetupAction, StoreError> {
    if describe(client, table).await?.is_some() {
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
    wait_active(client, table).await?;
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

async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let status = describe(client, table)
            .await?
            .and_then(|t| t.table_status().cloned());
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Aws {
        op: "DescribeTable",
        table: table.into(),
        message: "table did not become ACTIVE within 60s".into(),
    })
}

fn new_and_old_images() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("stream_enabled is set")
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

fn index(name: &str, sort: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key("project_id", KeyType::Hash))
        .key_schema(key(sort, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("name and key schema are set")
}
