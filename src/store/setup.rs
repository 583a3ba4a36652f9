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

use super::{
    StoreError,
    releases::{DEPLOYMENT_GSI, PROJECT_GSI},
};

/// The two indexes relctl queries, as (name, sort key); both are hashed on `project_id`.
pub const INDEXES: [(&str, &str); 2] = [
    (PROJECT_GSI, "date_created"),
    (DEPLOYMENT_GSI, "last_date_deployed"),
];

/// How a table differs from what relctl needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Set-up can add it without touching anything that is there.
    Missing(Repair),
    /// Being created (an index backfilling): usable once it is ACTIVE.
    Pending(String),
    /// Set-up must not change it; a person must.
    Unusable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    Stream,
    Index {
        name: &'static str,
        sort: &'static str,
    },
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream => f.write_str("turned on the NEW_AND_OLD_IMAGES stream"),
            Self::Index { name, sort } => write!(f, "created index {name} (project_id, {sort})"),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(Repair::Stream) => f.write_str("has no stream; run `relctl setup`"),
            Self::Missing(Repair::Index { name, sort }) => write!(
                f,
                "has no index {name} (project_id, {sort}); run `relctl setup`"
            ),
            Self::Pending(what) | Self::Unusable(what) => f.write_str(what),
        }
    }
}

/// Tables relctl cannot use now, with why; shared by the controller's checks, the
/// resync (which skips their environments) and `/readyz`.
#[derive(Debug, Default)]
pub struct TableProblems(std::sync::RwLock<std::collections::BTreeMap<String, Vec<String>>>);

impl TableProblems {
    /// Records `problems` for `table` (none: usable); returns what was recorded before.
    pub fn set(&self, table: &str, problems: Vec<String>) -> Vec<String> {
        let Ok(mut map) = self.0.write() else {
            return Vec::new();
        };
        if problems.is_empty() {
            map.remove(table).unwrap_or_default()
        } else {
            map.insert(table.to_owned(), problems).unwrap_or_default()
        }
    }

    /// Why `table` cannot be used, if it cannot.
    pub fn of(&self, table: &str) -> Option<Vec<String>> {
        self.0.read().ok()?.get(table).cloned()
    }

    pub fn all(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.0.read().map(|m| m.clone()).unwrap_or_default()
    }
}

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

fn scalar_type(table: &TableDescription, attribute: &str) -> Option<ScalarAttributeType> {
    table
        .attribute_definitions()
        .iter()
        .find(|d| d.attribute_name() == attribute)
        .map(|d| d.attribute_type().clone())
}

/// `(hash, range)` of a key schema.
fn keys(schema: &[KeySchemaElement]) -> (Option<&str>, Option<&str>) {
    let of = |kind: KeyType| {
        schema
            .iter()
            .find(|k| k.key_type() == &kind)
            .map(|k| k.attribute_name())
    };
    (of(KeyType::Hash), of(KeyType::Range))
}

/// The table is keyed on `hash` (a string) alone.
fn check_key(table: &TableDescription, hash: &str, found: &mut Vec<Finding>) {
    match keys(table.key_schema()) {
        (Some(h), None) if h == hash => {}
        (h, r) => found.push(Finding::Unusable(format!(
            "its key is ({}{}); relctl needs the hash key `{hash}` alone",
            h.unwrap_or("none"),
            r.map(|r| format!(", {r}")).unwrap_or_default()
        ))),
    }
    match scalar_type(table, hash) {
        Some(ScalarAttributeType::S) | None => {}
        Some(other) => found.push(Finding::Unusable(format!(
            "attribute `{hash}` is of type {}; relctl needs a string (S)",
            other.as_str()
        ))),
    }
}

/// Everything a releases table lacks or has otherwise than relctl needs.
pub fn check_releases(table: &TableDescription) -> Vec<Finding> {
    let mut found = Vec::new();
    check_key(table, "release_id", &mut found);
    for (name, sort) in INDEXES {
        let Some(index) = table
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(name))
        else {
            for attribute in ["project_id", sort] {
                if let Some(other) =
                    scalar_type(table, attribute).filter(|t| t != &ScalarAttributeType::S)
                {
                    found.push(Finding::Unusable(format!(
                        "attribute `{attribute}` is of type {}; index {name} needs a string (S)",
                        other.as_str()
                    )));
                }
            }
            found.push(Finding::Missing(Repair::Index { name, sort }));
            continue;
        };
        let (hash, range) = keys(index.key_schema());
        if (hash, range) != (Some("project_id"), Some(sort)) {
            found.push(Finding::Unusable(format!(
                "index {name} is keyed ({}, {}); relctl needs (project_id, {sort})",
                hash.unwrap_or("none"),
                range.unwrap_or("none")
            )));
        }
        let projection = index.projection().and_then(|p| p.projection_type());
        if projection != Some(&ProjectionType::All) {
            found.push(Finding::Unusable(format!(
                "index {name} projects {}; relctl needs ALL attributes",
                projection.map_or("nothing", |p| p.as_str())
            )));
        }
        if let Some(status) = index.index_status().filter(|s| **s != IndexStatus::Active) {
            found.push(Finding::Pending(format!(
                "index {name} is {}; usable once ACTIVE",
                status.as_str()
            )));
        }
    }
    let stream = table.stream_specification();
    match stream.filter(|s| s.stream_enabled()) {
        None => found.push(Finding::Missing(Repair::Stream)),
        Some(spec) if spec.stream_view_type() != Some(&StreamViewType::NewAndOldImages) => {
            found.push(Finding::Unusable(format!(
                "its stream shows {}; relctl needs NEW_AND_OLD_IMAGES (turn the stream off, then run `relctl setup`: the stream gets a new ARN)",
                spec.stream_view_type().map_or("nothing", |v| v.as_str())
            )));
        }
        Some(_) => {}
    }
    found
}

/// Everything the state table has otherwise than relctl needs.
pub fn check_state(table: &TableDescription) -> Vec<Finding> {
    let mut found = Vec::new();
    check_key(table, "pk", &mut found);
    found
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(
        hash: &str,
        indexes: &[(&str, &str, &str, ProjectionType)],
        stream: Option<StreamViewType>,
    ) -> TableDescription {
        let mut t = TableDescription::builder()
            .key_schema(key(hash, KeyType::Hash))
            .attribute_definitions(attribute(hash));
        for (name, h, r, projection) in indexes {
            t = t.global_secondary_indexes(
                aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription::builder()
                    .index_name(*name)
                    .key_schema(key(h, KeyType::Hash))
                    .key_schema(key(r, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(projection.clone())
                            .build(),
                    )
                    .index_status(IndexStatus::Active)
                    .build(),
            );
        }
        if let Some(view) = stream {
            t = t.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(view)
                    .build()
                    .unwrap(),
            );
        }
        t.build()
    }

    const BOTH: [(&str, &str, &str, ProjectionType); 2] = [
        (
            PROJECT_GSI,
            "project_id",
            "date_created",
            ProjectionType::All,
        ),
        (
            DEPLOYMENT_GSI,
            "project_id",
            "last_date_deployed",
            ProjectionType::All,
        ),
    ];

    #[test]
    fn a_table_as_relctl_makes_it_needs_nothing() {
        let t = table("release_id", &BOTH, Some(StreamViewType::NewAndOldImages));
        assert_eq!(check_releases(&t), vec![]);
    }

    #[test]
    fn a_table_without_indexes_or_stream_can_be_repaired() {
        let t = table("release_id", &[], None);
        assert_eq!(
            check_releases(&t),
            vec![
                Finding::Missing(Repair::Index {
                    name: PROJECT_GSI,
                    sort: "date_created"
                }),
                Finding::Missing(Repair::Index {
                    name: DEPLOYMENT_GSI,
                    sort: "last_date_deployed"
                }),
                Finding::Missing(Repair::Stream),
            ]
        );
    }

    #[test]
    fn another_hash_key_an_index_keyed_otherwise_and_a_keys_only_stream_are_refused_by_name() {
        let t = table(
            "id",
            &[
                (PROJECT_GSI, "project", "date_created", ProjectionType::All),
                (
                    DEPLOYMENT_GSI,
                    "project_id",
                    "last_date_deployed",
                    ProjectionType::KeysOnly,
                ),
            ],
            Some(StreamViewType::KeysOnly),
        );
        let found: Vec<String> = check_releases(&t).iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains("`release_id`"), "{found:?}");
        assert!(
            found[1].contains("index project_gsi is keyed (project, date_created)"),
            "{found:?}"
        );
        assert!(
            found[2].contains("index deployment_gsi projects KEYS_ONLY"),
            "{found:?}"
        );
        assert!(
            found[3].contains("KEYS_ONLY; relctl needs NEW_AND_OLD_IMAGES"),
            "{found:?}"
        );
    }

    #[test]
    fn a_state_table_keyed_otherwise_is_refused() {
        assert_eq!(check_state(&table("pk", &[], None)), vec![]);
        assert_eq!(check_state(&table("id", &[], None)).len(), 1);
    }
}
