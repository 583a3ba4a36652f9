//! What a record is held to (README "Security model"): deployments whose fields would
//! grow relctl's own items past DynamoDB's limit, or make one reconcile do unbounded
//! work, are refused at intake naming the field, and the environment goes on deploying
//! normal releases. Records are written with the raw DynamoDB API, as boto3 would.

use relctl::model::{Status, limits};
use serde_json::json;

use crate::support::{BUGFARM, Harness, release};

const TABLE: &str = "relctl-releases";

/// The metric's value for one exact label set, 0 when absent.
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn writes(h: &crate::support::Running) -> f64 {
    let (_, page) = crate::support::get(h.addr, "/metrics").await;
    ["UpdateItem", "PutItem", "TransactWriteItems"]
        .iter()
        .map(|op| {
            metric(
                &page,
                &format!("relctl_aws_calls_total{{service=\"DynamoDB\",operation=\"{op}\",outcome=\"ok\"}}"),
            )
        })
        .sum()
}

#[tokio::test]
async fn three_huge_requester_names_are_refused_and_the_environment_deploys_on() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    let huge = "n".repeat(95_000);
    for (i, id) in ["huge-1", "huge-2", "huge-3"].iter().enumerate() {
        let mut item = release(
            id,
            "bugfarm",
            json!({ "app": format!("r.example/app:{i}") }),
        );
        item["deployments"] = json!([{
            "date_created": format!("2024-05-01T10:00:0{i}.000000"),
            "environment": { "id": "stage", "name": "Staging" },
            "requested_by": { "id": "someone", "name": huge },
        }]);
        h.put_release(TABLE, item).await;
    }
    for id in ["huge-1", "huge-2", "huge-3"] {
        let message = h.until_status(TABLE, id, 0, Status::Failed).await;
        assert!(
            message.contains(&format!(
                "requested_by.name is 95000 bytes; relctl accepts at most {}",
                limits::REQUESTER_BYTES
            )),
            "{message}"
        );
    }
    let before = writes(&controller).await;
    h.put_release(
        TABLE,
        release("normal", "bugfarm", json!({ "app": "r.example/app:9" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "normal", "stage", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let state = h.env_state("bugfarm", "stage").await;
    assert!(
        state
            .history
            .iter()
            .all(|e| e.requested_by.as_deref().is_none_or(|r| r.len() <= 1024)),
        "{state:?}"
    );
    let spent = writes(&controller).await - before;
    assert!(spent < 20.0, "a normal deployment took {spent} writes");
    controller.stop().await;
}

#[tokio::test]
async fn a_release_of_five_thousand_services_is_refused_before_anything_is_pinned() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    let images: serde_json::Map<String, serde_json::Value> = (0..5000)
        .map(|i| {
            (
                format!("svc{i:04}"),
                json!(format!("r.example/svc{i:04}:1")),
            )
        })
        .collect();
    h.put_release(
        TABLE,
        release("wide", "bugfarm", serde_json::Value::Object(images)),
    )
    .await;
    let entry = h
        .deploy(TABLE, "wide", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    assert!(
        entry
            .status_message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!(
                "the release has 5000 services; relctl deploys at most {} in one release",
                limits::SERVICES
            )),
        "{entry:?}"
    );
    assert!(
        h.parameters("/bugfarm/images/stage").await.is_empty(),
        "nothing pinned"
    );
    h.put_release(
        TABLE,
        release("narrow", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "narrow", "stage", "2024-05-01T10:00:01.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    controller.stop().await;
}

#[tokio::test]
async fn a_release_id_with_bidi_controls_is_refused() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    let id = "r1\u{202E}gnp.exe";
    h.put_release(
        TABLE,
        release(id, "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, id, "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    assert!(
        entry
            .status_message
            .as_deref()
            .unwrap_or_default()
            .contains("release_id contains the control character \\u{202e}"),
        "{entry:?}"
    );
    controller.stop().await;
}

/// A controller that has deployed once to prod (so its clients and tables are warm),
/// and the writes it has made so far.
async fn warmed_up(h: &Harness) -> (crate::support::Running, f64) {
    let controller = h.start_controller().await;
    h.put_release(
        TABLE,
        release("warm", "bugfarm", json!({ "app": "r.example/app:0" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "warm", "prod", "2024-05-01T09:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let before = writes(&controller).await;
    (controller, before)
}

/// A release item with `n` deployment entries to stage, each a second apart.
fn crowded(id: &str, n: usize) -> serde_json::Value {
    let mut item = release(id, "bugfarm", json!({ "app": "r.example/app:1" }));
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({
                "date_created": format!("2024-05-01T10:{:02}:{:02}.000000", i / 60, i % 60),
                "environment": { "id": "stage", "name": "Staging" },
            })
        })
        .collect();
    item["deployments"] = json!(entries);
    item
}

#[tokio::test]
async fn a_release_of_two_thousand_entries_is_refused_with_one_write_and_others_go_on() {
    let h = Harness::new(BUGFARM).await;
    let (controller, before) = warmed_up(&h).await;

    h.put_release(TABLE, crowded("many", 2000)).await;
    // Written just after it, on the same stream: taken in without waiting behind it.
    h.put_release(
        TABLE,
        release("other", "bugfarm", json!({ "app": "r.example/app:2" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "other", "prod", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = h.until_status(TABLE, "many", 1999, Status::Failed).await;
    assert!(
        message.contains(&format!(
            "the release has 2000 deployment entries; relctl takes in at most {}",
            limits::DEPLOYMENTS
        )),
        "{message}"
    );
    let spent = writes(&controller).await - before;
    // One normal deployment costs about twenty; taking the entries in would cost
    // thousands.
    assert!(
        spent < 40.0,
        "2,000 entries and one other deployment took {spent} writes"
    );
    // Stage was never touched, and deploys a normal release.
    assert!(h.env_state("bugfarm", "stage").await.desired.is_none());
    h.put_release(
        TABLE,
        release("normal", "bugfarm", json!({ "app": "r.example/app:3" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "normal", "stage", "2024-05-01T12:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    controller.stop().await;
}

#[tokio::test]
async fn the_entries_of_a_release_are_taken_in_together_in_a_few_writes() {
    let h = Harness::new(BUGFARM).await;
    let (controller, before) = warmed_up(&h).await;
    h.put_release(TABLE, crowded("many", 400)).await;
    // The newest is deployed; the other 399 are superseded by it, twenty per write.
    let newest = h.until_status(TABLE, "many", 399, Status::Succeeded).await;
    assert!(newest.contains("pinned"), "{newest}");
    let record = h.release(TABLE, "many").await;
    let superseded = record
        .deployments
        .iter()
        .filter(|e| e.status == Some(Status::Superseded))
        .count();
    assert_eq!(superseded, 399);
    let spent = writes(&controller).await - before;
    assert!(spent < 60.0, "400 entries took {spent} writes");
    controller.stop().await;
}

#[tokio::test]
async fn a_release_grown_past_a_limit_does_not_fail_its_deployment_under_way() {
    let h = Harness::new(
        r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"

[[projects.environments]]
id = "prod"
name = "Production"
protected = true
"#,
    )
    .await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    h.until_status(TABLE, "r1", 0, Status::Blocked).await;
    controller.stop().await;
    // The writer grows the release past the description limit while it waits.
    h.dynamodb
        .update_item()
        .table_name(TABLE)
        .key(
            "release_id",
            aws_sdk_dynamodb::types::AttributeValue::S("r1".into()),
        )
        .update_expression("SET description = :d")
        .expression_attribute_values(
            ":d",
            aws_sdk_dynamodb::types::AttributeValue::S("d".repeat(limits::DESCRIPTION_BYTES + 1)),
        )
        .send()
        .await
        .unwrap();
    // A new controller resyncs at start: the deployment under way is left waiting.
    let controller = h.start_controller().await;
    let series = "relctl_resyncs_total 1";
    crate::support::until(
        "a resync finished",
        async || {
            crate::support::get(controller.addr, "/metrics")
                .await
                .1
                .contains(series)
        },
        |done| *done,
    )
    .await;
    let entry = h.release(TABLE, "r1").await.deployments[0].clone();
    assert_eq!(entry.status, Some(Status::Blocked), "{entry:?}");
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    controller.stop().await;
}
