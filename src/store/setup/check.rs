//! What relctl relies on in each table, checked on the table's description: the key
//! schema, both GSIs of a releases table with their keys and projection ALL, its
//! `NEW_AND_OLD_IMAGES` stream, and the approvals table's key and index. Each
//! difference is a [`Finding`]: missing (set-up adds it), pending, or unusable (a
//! person must change it).

use aws_sdk_dynamodb::types::{
    IndexStatus, KeySchemaElement, KeyType, ProjectionType, ScalarAttributeType, StreamViewType,
    TableDescription,
};

use crate::store::{
    attestations::SUBJECT_GSI,
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

pub(super) fn scalar_type(
    table: &TableDescription,
    attribute: &str,
) -> Option<ScalarAttributeType> {
    table
        .attribute_definitions()
        .iter()
        .find(|d| d.attribute_name() == attribute)
        .map(|d| d.attribute_type().clone())
}

/// `(hash, range)` of a key schema.
pub(super) fn keys(schema: &[KeySchemaElement]) -> (Option<&str>, Option<&str>) {
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

/// Everything the approvals table has otherwise than relctl needs.
pub fn check_approvals(table: &TableDescription) -> Vec<Finding> {
    let mut found = Vec::new();
    match keys(table.key_schema()) {
        (Some("principal"), Some("subject")) => {}
        (h, r) => found.push(Finding::Unusable(format!(
            "its key is ({}, {}); relctl needs (principal, subject)",
            h.unwrap_or("none"),
            r.unwrap_or("none")
        ))),
    }
    let index = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(SUBJECT_GSI));
    match index.map(|i| keys(i.key_schema())) {
        Some((Some("subject"), _)) => {}
        Some((h, _)) => found.push(Finding::Unusable(format!(
            "index {SUBJECT_GSI} is hashed on {}; relctl needs subject",
            h.unwrap_or("none")
        ))),
        None => found.push(Finding::Unusable(format!(
            "it has no index {SUBJECT_GSI} (subject, principal); recreate it with `relctl setup`"
        ))),
    }
    found
}

/// Everything the state table has otherwise than relctl needs.
pub fn check_state(table: &TableDescription) -> Vec<Finding> {
    let mut found = Vec::new();
    check_key(table, "pk", &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::super::{attribute, key};
    use super::*;
    use aws_sdk_dynamodb::types::{Projection, StreamSpecification};

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
