//! Deployment records as real writers write them, through the raw DynamoDB API: both
//! dialects (RFC 013's and weco-deploy 5.x's), every timestamp form, writers with
//! wrong clocks, garbage beside good entries, and claims only the controller may make.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use relctl::model::Status;
use serde_json::{Value, json};

use crate::support::{Harness, raw_attribute, release};

const TABLE: &str = "relctl-releases";

/// Appends one entry given in DynamoDB JSON with a plain UpdateItem.
async fn append_raw(h: &Harness, table: &str, release_id: &str, entry: Value) {
    h.dynamodb
        .update_item()
        .table_name(table)
        .key("release_id", AttributeValue::S(release_id.into()))
        .update_expression("SET deployments = list_append(deployments, :entry)")
        .expression_attribute_values(":entry", AttributeValue::L(vec![raw_attribute(&entry)]))
        .send()
        .await
        .unwrap();
}

/// The item as stored, attribute by attribute.
async fn raw_item(h: &Harness, table: &str, release_id: &str) -> HashMap<String, AttributeValue> {
    h.dynamodb
        .get_item()
        .table_name(table)
        .key("release_id", AttributeValue::S(release_id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

fn entry_map(
    item: &HashMap<String, AttributeValue>,
    index: usize,
) -> HashMap<String, AttributeValue> {
    item["deployments"].as_l().unwrap()[index]
        .as_m()
        .unwrap()
        .clone()
}

const STORAGE: &str = r#"
[[projects]]
id = "storage"
name = "Storage service"
releases_table = "wellcome-releases-storage"
image_uri_template = "975596993436.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"

[[projects.environments]]
id = "stage"
name = "Staging"

[[projects.environments]]
id = "prod"
name = "Production"
"#;

#[tokio::test]
async fn a_release_written_by_weco_deploy_is_applied_and_its_own_fields_left_alone() {
    let h = Harness::new(STORAGE).await;
    let controller = h.start_controller().await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/weco-deploy-release.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let table = "wellcome-releases-storage";
    let id = "0f3d1c9e-5c2b-4f8e-9a61-2d7e4b8c1a05";
    h.put_raw(table, &fixture).await;
    let entry = h.finished(table, id, 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let pinned = h.parameters("/storage/images/stage").await;
    assert_eq!(
        pinned["/storage/images/stage/bag_register"].0,
        "975596993436.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/bag_register:ref.9a1f0e2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f"
    );

    // The older tool's fields are exactly as it wrote them; relctl only added its own.
    let stored = raw_item(&h, table, id).await;
    let before = raw_attribute(&fixture["deployments"]);
    let before = before.as_l().unwrap()[0].as_m().unwrap().clone();
    let after = entry_map(&stored, 0);
    for (field, value) in &before {
        assert_eq!(after.get(field), Some(value), "{field} untouched");
    }
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let mut added: Vec<&str> = added.into_iter().map(String::as_str).collect();
    added.sort();
    assert_eq!(added, ["status", "status_message", "status_updated_at"]);
    assert_eq!(
        stored["requested_by"],
        raw_attribute(&fixture["requested_by"])
    );

    // A new entry in the same dialect (environment and requester as strings) goes too.
    append_raw(
        &h,
        table,
        id,
        json!({"M": {
            "date_created": {"S": "2026-11-20T10:00:00.000000"},
            "environment": {"S": "prod"},
            "requested_by": {"S": "arn:aws:sts::760097843905:assumed-role/storage-developer/sam"},
            "description": {"S": "weco-deploy deploy"},
            "details": {"M": {}}
        }}),
    )
    .await;
    let entry = h.finished(table, id, 1).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(entry.environment.id, "prod");
    controller.stop().await;
}

const EIGHT: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [
  { id = "e0", name = "E0" }, { id = "e1", name = "E1" }, { id = "e2", name = "E2" },
  { id = "e3", name = "E3" }, { id = "e4", name = "E4" }, { id = "e5", name = "E5" },
  { id = "e6", name = "E6" }, { id = "e7", name = "E7" },
]
"#;

#[tokio::test]
async fn every_timestamp_form_writers_produce_is_applied_with_the_status_in_its_own_entry() {
    let h = Harness::new(EIGHT).await;
    let controller = h.start_controller().await;
    let forms = [
        json!({"S": "2026-11-24T13:59:50"}), // Python isoformat(), zero microseconds
        json!({"S": "2026-11-24T13:59:50.166Z"}), // JavaScript toISOString()
        json!({"S": "2026-11-24T13:59:50+00:00"}), // an offset
        json!({"S": "2026-11-24T14:59:50.5+01:00"}), // another offset
        json!({"S": "2026-11-24T13:59:50.123456789"}), // nanoseconds
        json!({"S": "2026-11-24 13:59:50.166000"}), // Python str(datetime)
        json!({"N": "1795528790"}),          // Unix seconds, a number
        json!({"S": "1795528790.25"}),       // Unix seconds, a string
    ];
    // One release whose entries each name their own environment: every status must
    // land in its own entry, addressed by the value exactly as stored.
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    for (i, date) in forms.iter().enumerate() {
        append_raw(
            &h,
            TABLE,
            "r1",
            json!({"M": {
                "date_created": date,
                "environment": {"M": {"id": {"S": format!("e{i}")}, "name": {"S": "E"}}},
                "requested_by": {"M": {"id": {"S": "boto3"}, "name": {"S": "boto3"}}}
            }}),
        )
        .await;
    }
    for (i, date) in forms.iter().enumerate() {
        let entry = h.finished(TABLE, "r1", i).await;
        assert_eq!(entry.status, Some(Status::Succeeded), "{date}: {entry:?}");
        assert_eq!(entry.environment.id, format!("e{i}"));
        let stored = entry_map(&raw_item(&h, TABLE, "r1").await, i);
        assert_eq!(
            stored["date_created"],
            raw_attribute(date),
            "kept as written"
        );
    }
    controller.stop().await;
}

#[tokio::test]
async fn two_intents_a_microsecond_apart_in_different_spellings_are_ordered_by_instant() {
    let h = Harness::new(crate::support::BUGFARM).await;
    let controller = h.start_controller().await;
    for id in ["early", "late"] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    // As text "...50.000001Z" sorts before "...50+00:00"; as instants it is later.
    h.request_together(
        TABLE,
        &[
            ("late", "stage", "2026-11-24T13:59:50.000001Z"),
            ("early", "stage", "2026-11-24T13:59:50+00:00"),
        ],
    )
    .await;
    assert_eq!(
        h.finished(TABLE, "late", 0).await.status,
        Some(Status::Succeeded)
    );
    let early = h.finished(TABLE, "early", 0).await;
    assert!(
        matches!(early.status, Some(Status::Superseded | Status::Succeeded)),
        "{early:?}"
    );
    let state = h
        .until_state("bugfarm", "stage", |s| {
            s.observed.as_ref().is_some_and(|o| o.release_id == "late")
        })
        .await;
    assert_eq!(state.desired.unwrap().release_id, "late");
    controller.stop().await;
}

fn at(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

#[tokio::test]
async fn a_far_future_entry_is_refused_and_cannot_wedge_the_environment() {
    let h = Harness::new(crate::support::BUGFARM).await;
    let controller = h.start_controller().await;
    for id in ["future", "now"] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    let future = h
        .deploy(TABLE, "future", "stage", "2099-01-01T00:00:00.000000")
        .await;
    assert_eq!(future.status, Some(Status::Failed), "{future:?}");
    let message = future.status_message.unwrap_or_default();
    assert!(message.contains("is in the future"), "{message}");
    assert!(message.contains("max_clock_skew"), "{message}");
    assert!(h.parameters("/bugfarm").await.is_empty(), "nothing pinned");

    let now = h
        .deploy(TABLE, "now", "stage", &at(chrono::Duration::zero()))
        .await;
    assert_eq!(now.status, Some(Status::Succeeded), "{now:?}");
    controller.stop().await;
}

#[tokio::test]
async fn a_writer_two_minutes_ahead_is_applied_and_ordered_by_its_stated_time() {
    let h = Harness::new(crate::support::BUGFARM).await;
    let controller = h.start_controller().await;
    for id in ["ahead", "behind"] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    let ahead = h
        .deploy(TABLE, "ahead", "stage", &at(chrono::Duration::minutes(2)))
        .await;
    assert_eq!(ahead.status, Some(Status::Succeeded), "{ahead:?}");
    // Written later by a correct clock, but dated before: the ahead one stays newer.
    let behind = h
        .deploy(TABLE, "behind", "stage", &at(chrono::Duration::zero()))
        .await;
    assert_eq!(behind.status, Some(Status::Superseded), "{behind:?}");
    controller.stop().await;
}

#[tokio::test]
async fn a_garbage_entry_is_refused_alone_and_the_good_one_beside_it_succeeds() {
    let h = Harness::new(crate::support::BUGFARM).await;
    let controller = h.start_controller().await;
    h.put_raw(
        TABLE,
        &json!({
            "release_id": {"S": "r1"},
            "project_id": {"S": "bugfarm"},
            "date_created": {"S": "2026-11-24T13:00:00"},
            "images": {"M": {"app": {"S": "r.example/app:1"}}},
            "deployments": {"L": [
                {"M": {"date_created": {"S": "yesterday"}, "environment": {"S": "prod"}}},
                {"M": {"date_created": {"S": "2026-11-24T13:59:50Z"}, "environment": {"S": "stage"}}}
            ]}
        }),
    )
    .await;
    let good = h.finished(TABLE, "r1", 1).await;
    assert_eq!(good.status, Some(Status::Succeeded), "{good:?}");
    let stored = entry_map(&raw_item(&h, TABLE, "r1").await, 0);
    assert_eq!(stored["status"], AttributeValue::S("failed".into()));
    let message = stored["status_message"].as_s().unwrap();
    assert!(
        message.contains("date_created \"yesterday\" cannot be used"),
        "{message}"
    );
    assert!(h.parameters("/bugfarm/images/prod").await.is_empty());
    let (_, metrics) = crate::support::get(controller.addr, "/metrics").await;
    assert!(
        metrics.contains("relctl_rejected_entries_total{table=\"relctl-releases\"} 1"),
        "{metrics}"
    );
    controller.stop().await;
}

const GATED: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [
  { id = "stage", name = "Staging" },
  { id = "prod", name = "Production", requires = ["stage"] },
]
"#;

#[tokio::test]
async fn a_forged_stage_success_does_not_open_the_gate_and_a_real_one_does_by_itself() {
    let h = Harness::new(GATED).await;
    let controller = h.start_controller().await;
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    // Stage runs r2.
    let r2 = h
        .deploy(TABLE, "r2", "stage", "2026-11-24T10:00:10.000000")
        .await;
    assert_eq!(r2.status, Some(Status::Succeeded));
    // A hand-written r1 stage entry claiming success (older, so never applied), and a
    // request of r1 for prod.
    append_raw(
        &h,
        TABLE,
        "r1",
        json!({"M": {
            "date_created": {"S": "2026-11-24T10:00:00.000000"},
            "environment": {"M": {"id": {"S": "stage"}}},
            "status": {"S": "succeeded"},
            "status_message": {"S": "trust me"}
        }}),
    )
    .await;
    // The claim is set aside; older than what stage runs, the entry is superseded.
    let message = h.until_status(TABLE, "r1", 0, Status::Superseded).await;
    assert!(message.starts_with("superseded by release r2"), "{message}");
    append_raw(
        &h,
        TABLE,
        "r1",
        json!({"M": {
            "date_created": {"S": "2026-11-24T10:00:20.000000"},
            "environment": {"M": {"id": {"S": "prod"}}}
        }}),
    )
    .await;
    let message = h.until_status(TABLE, "r1", 1, Status::Blocked).await;
    assert!(
        message.contains("has not succeeded in stage yet, which prod requires first"),
        "{message}"
    );
    assert!(h.parameters("/bugfarm/images/prod").await.is_empty());

    // A real stage deployment of r1 succeeds, and prod then goes ahead by itself.
    let stage = h
        .deploy(TABLE, "r1", "stage", "2026-11-24T10:00:30.000000")
        .await;
    assert_eq!(stage.status, Some(Status::Succeeded));
    let prod = h.finished(TABLE, "r1", 1).await;
    assert_eq!(prod.status, Some(Status::Succeeded), "{prod:?}");
    controller.stop().await;
}
