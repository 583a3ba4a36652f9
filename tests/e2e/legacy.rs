//! Adopting a table written by the older weco-deploy tooling: a per-project table made
//! without a stream, naive timestamps, `ref.<sha>` images and NULLs.

use crate::support::Harness;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use relctl::{
    model::{Status, Timestamp},
    store::{
        ReleaseStore,
        setup::{self, Repair, SetupAction},
    },
};
use serde_json::json;

const TABLE: &str = "wellcome-releases-bugfarm";

const LEGACY: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
releases_table = "wellcome-releases-bugfarm"
image_uri_template = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"
environments = [ { id = "stage", name = "Staging" }, { id = "prod", name = "Production" } ]
"#;

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// The table as the older tool made it: same key and indexes, no stream.
async fn create_legacy_table(h: &Harness) {
    create_table(
        h,
        "release_id",
        &[
            ("project_gsi", "date_created"),
            ("deployment_gsi", "last_date_deployed"),
        ],
    )
    .await;
}

/// A table keyed on `hash`, with `indexes` (name, sort key; hashed on project_id).
async fn create_table(h: &Harness, hash: &str, indexes: &[(&str, &str)]) {
    let mut create = h
        .dynamodb
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash));
    let mut attributes = vec![hash];
    for (_, sort) in indexes {
        attributes.extend(["project_id", sort]);
    }
    attributes.sort();
    attributes.dedup();
    for name in attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        );
    }
    for (index, sort) in indexes {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .key_schema(key("project_id", KeyType::Hash))
                .key_schema(key(sort, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    create.send().await.unwrap();
}

fn legacy_release(id: &str, images: serde_json::Value) -> serde_json::Value {
    json!({
        "release_id": id,
        "project_id": "bugfarm",
        "project_name": "Bug farm",
        "date_created": "2019-07-10T10:44:02.272898",
        "description": "Some description",
        "requested_by": { "id": "arn:aws:iam::123:user/someone", "name": "someone" },
        "images": images,
        "release_manifest": "{\"hatching\": \"ref.0a1b2c3\"}",
        "deployments": [],
    })
}

#[tokio::test]
async fn setup_turns_on_the_stream_of_an_adopted_table_and_nothing_else() {
    let h = Harness::without_tables(LEGACY).await;
    create_legacy_table(&h).await;
    assert_eq!(
        setup::ensure_releases_table(&h.dynamodb, TABLE, &mut |_| {})
            .await
            .unwrap(),
        SetupAction::Repaired {
            table: TABLE.into(),
            done: vec![Repair::Stream]
        }
    );
    assert_eq!(
        setup::ensure_releases_table(&h.dynamodb, TABLE, &mut |_| {})
            .await
            .unwrap(),
        SetupAction::Unchanged(TABLE.into()),
        "idempotent"
    );
    let described = setup::describe(&h.dynamodb, TABLE).await.unwrap().unwrap();
    assert_eq!(
        described.global_secondary_indexes().len(),
        2,
        "indexes untouched"
    );
    assert_eq!(
        described
            .stream_specification()
            .unwrap()
            .stream_view_type()
            .map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
}

#[tokio::test]
async fn legacy_items_decode_and_deploy_with_ref_images_resolved() {
    let h = Harness::without_tables(LEGACY).await;
    create_legacy_table(&h).await;
    setup::ensure_releases_table(&h.dynamodb, TABLE, &mut |_| {})
        .await
        .unwrap();
    setup::ensure_state_table(&h.dynamodb, "relctl-state")
        .await
        .unwrap();
    h.put_release(
        TABLE,
        legacy_release(
            "legacy-1",
            json!({
                "hatching": "ref.0a1b2c3",
                "feeding": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/feeding:ref.4d5e6f",
            }),
        ),
    )
    .await;
    h.put_release(
        TABLE,
        legacy_release("legacy-null", json!({ "hatching": null })),
    )
    .await;

    let store = ReleaseStore::new(h.dynamodb.clone());
    let decoded = store.get(TABLE, "legacy-1").await.unwrap().unwrap();
    assert_eq!(
        decoded.date_created,
        Some(Timestamp::parse("2019-07-10T10:44:02.272898").unwrap())
    );
    assert_eq!(decoded.last_date_deployed, None, "never deployed");
    assert_eq!(decoded.images["hatching"].as_deref(), Some("ref.0a1b2c3"));
    let null = store.get(TABLE, "legacy-null").await.unwrap().unwrap();
    assert_eq!(null.images["hatching"], None);

    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "legacy-1", "stage", "2019-07-10T10:44:12.983539")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/hatching:ref.0a1b2c3"
    );
    assert_eq!(
        h.release(TABLE, "legacy-1").await.deployments[0]
            .date_created
            .raw
            .text(),
        "2019-07-10T10:44:12.983539",
        "the entry's timestamp is kept as written"
    );
    controller.stop().await;
}

#[tokio::test]
async fn setup_adds_the_missing_indexes_of_an_adopted_table_one_at_a_time() {
    let h = Harness::without_tables(LEGACY).await;
    create_table(&h, "release_id", &[]).await;
    let (code, stdout, stderr) = h.run(&["setup"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "creating index project_gsi (project_id, date_created); waiting for it to be ACTIVE",
        "creating index deployment_gsi (project_id, last_date_deployed); waiting",
        "turning on the NEW_AND_OLD_IMAGES stream",
    ] {
        assert!(stderr.contains(line), "progress names {line:?}: {stderr}");
    }
    assert!(
        stdout.contains(
            "created index project_gsi (project_id, date_created), created index deployment_gsi"
        ),
        "{stdout}"
    );
    let described = setup::describe(&h.dynamodb, TABLE).await.unwrap().unwrap();
    assert_eq!(
        setup::check_releases(&described),
        vec![],
        "nothing left to repair"
    );
    // What failed before with `Invalid index: project_gsi` now works.
    let (code, _, stderr) = h
        .run(&[
            "release",
            "create",
            "--project",
            "bugfarm",
            "--service",
            "hatching=ref.0a1b2c3",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = h.run(&["release", "list", "--project", "bugfarm"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        2,
        "a header and the release: {stdout}"
    );
}

#[tokio::test]
async fn setup_refuses_a_table_keyed_otherwise_naming_the_attribute_and_changes_nothing() {
    let h = Harness::without_tables(LEGACY).await;
    create_table(&h, "id", &[("project_gsi", "created")]).await;
    let before = setup::describe(&h.dynamodb, TABLE).await.unwrap().unwrap();
    let (code, stdout, stderr) = h.run(&["setup"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("`release_id`"), "{stderr}");
    assert!(
        stderr.contains("index project_gsi is keyed (project_id, created)"),
        "{stderr}"
    );
    let after = setup::describe(&h.dynamodb, TABLE).await.unwrap().unwrap();
    assert_eq!(
        before.global_secondary_indexes(),
        after.global_secondary_indexes()
    );
    assert_eq!(before.stream_specification(), after.stream_specification());
}
