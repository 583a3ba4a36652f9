//! Tables the controller cannot use: a project whose releases table is missing waits,
//! reported in `/readyz`, the metric and its environments' resync error, while every
//! other project deploys; it is picked up once the table exists. A missing state table
//! is waited for (503 on `/readyz`), not a crash loop.

use crate::support::{Harness, get};
use relctl::{model::Status, store::setup};
use serde_json::json;

const TWO_PROJECTS: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [ { id = "stage", name = "Staging" } ]

[[projects]]
id = "legacy"
name = "Legacy"
releases_table = "wellcome-releases-legacy"
environments = [ { id = "stage", name = "Staging" } ]
"#;

#[tokio::test]
async fn a_project_without_its_table_waits_while_others_deploy_and_is_picked_up_once_set_up() {
    let h = Harness::without_tables(TWO_PROJECTS).await;
    setup::ensure_releases_table(&h.dynamodb, "relctl-releases", &mut |_| {})
        .await
        .unwrap();
    setup::ensure_state_table(&h.dynamodb, "relctl-state")
        .await
        .unwrap();
    let controller = h.start_controller().await;

    let (status, body) = get(controller.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    let problems = ready["unusable_tables"]["wellcome-releases-legacy"].to_string();
    assert!(problems.contains("does not exist"), "{body}");
    let (_, metrics) = get(controller.addr, "/metrics").await;
    assert!(
        metrics.contains("relctl_table_problems{table=\"wellcome-releases-legacy\"} 1"),
        "{metrics}"
    );

    // The other project is not held up.
    h.put_release(
        "relctl-releases",
        crate::support::release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    h.request(
        "relctl-releases",
        "r1",
        "stage",
        "2024-05-01T10:00:00.000000",
    )
    .await;
    let entry = h.finished("relctl-releases", "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");

    // The waiting environment says why, where `relctl status` reads it.
    let state = h
        .until_state("legacy", "stage", |s| s.resync_error.is_some())
        .await;
    assert!(
        state
            .resync_error
            .unwrap()
            .contains("table wellcome-releases-legacy cannot be used: does not exist"),
    );

    let (_, out, _) = h.run(&["status"]).await;
    assert!(
        out.contains("! resync failed (at ")
            && out.contains("wellcome-releases-legacy cannot be used"),
        "{out}"
    );

    // Once the table exists, what was written to it is applied.
    let (code, _, stderr) = h.run(&["setup"]).await;
    assert_eq!(code, 0, "{stderr}");
    h.put_release(
        "wellcome-releases-legacy",
        crate::support::release("l1", "legacy", json!({ "app": "r.example/app:1" })),
    )
    .await;
    h.request(
        "wellcome-releases-legacy",
        "l1",
        "stage",
        "2024-05-01T10:00:00.000000",
    )
    .await;
    let entry = h.finished("wellcome-releases-legacy", "l1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let (_, body) = get(controller.addr, "/readyz").await;
    assert!(body.contains("\"unusable_tables\":{}"), "{body}");
    let state = h
        .until_state("legacy", "stage", |s| {
            s.resync_error.is_none() && s.observed.is_some()
        })
        .await;
    assert_eq!(state.observed.unwrap().release_id, "l1");
    controller.stop().await;
}

#[tokio::test]
async fn a_missing_state_table_is_waited_for_with_readyz_saying_why() {
    let h = Harness::without_tables(crate::support::BUGFARM).await;
    setup::ensure_releases_table(&h.dynamodb, "relctl-releases", &mut |_| {})
        .await
        .unwrap();
    let (controller, health) = h.spawn_controller().await;
    // The first check of the table comes just after HTTP is served.
    let (status, body) = crate::support::until(
        "readiness naming the state table",
        async || get(controller.addr, "/readyz").await,
        |(_, body)| body.contains("relctl-state"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("relctl-state"), "{body}");
    assert!(body.contains("does not exist"), "{body}");
    assert_eq!(
        get(controller.addr, "/healthz").await.0,
        200,
        "alive meanwhile"
    );

    setup::ensure_state_table(&h.dynamodb, "relctl-state")
        .await
        .unwrap();
    health.wait_leader().await;
    let (status, body) = get(controller.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"leader\""), "{body}");
    controller.stop().await;
}

#[tokio::test]
async fn a_record_that_cannot_be_taken_in_is_parked_and_the_stream_goes_on_at_once() {
    // Padded with an attribute relctl does not read: the entry is admissible, and
    // DynamoDB refuses `last_date_deployed`.
    parked_when_padded_with("notes").await;
}

#[tokio::test]
async fn a_refusal_the_record_has_no_room_for_parks_it() {
    // Padded past the description limit: refused, with no room for the status.
    parked_when_padded_with("description").await;
}

async fn parked_when_padded_with(field: &'static str) {
    let h = Harness::new(crate::support::BUGFARM).await;
    let big = |id: &str, padding: usize| {
        let mut item = crate::support::release(id, "bugfarm", json!({ "app": "r.example/app:1" }));
        item[field] = json!("x".repeat(padding));
        item["deployments"] = json!([{ "date_created": "2024-05-01T10:00:00.000000",
                                      "environment": { "id": "stage", "name": "S" } }]);
        item
    };
    // Just under the item size limit, so that adding last_date_deployed does not fit:
    // found by asking the emulator itself with a probe of the same shape.
    let padding = fits_but_cannot_grow(&h, &big).await;
    let controller = h.start_controller().await;
    h.put_release("relctl-releases", big("big", padding)).await;
    // Written after it on the same stream: taken in without waiting on it.
    h.put_release(
        "relctl-releases",
        crate::support::release("normal", "bugfarm", json!({ "app": "r.example/app:2" })),
    )
    .await;
    let entry = h
        .deploy(
            "relctl-releases",
            "normal",
            "prod",
            "2024-05-01T10:00:01.000000",
        )
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let parked_line = "relctl_parked_records_total{table=\"relctl-releases\"} 1";
    crate::support::until(
        "the record parked",
        async || {
            get(controller.addr, "/metrics")
                .await
                .1
                .contains(parked_line)
        },
        |parked| *parked,
    )
    .await;
    let (_, metrics) = get(controller.addr, "/metrics").await;
    assert!(
        metrics.contains("relctl_stream_retrying_records{table=\"relctl-releases\"} 0"),
        "{metrics}"
    );
    // Parked for people to find, naming the release.
    let parked = h
        .dynamodb
        .scan()
        .table_name("relctl-state")
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("parked#".into()),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0]["release_id"],
        aws_sdk_dynamodb::types::AttributeValue::S("big".into())
    );
    controller.stop().await;
}

/// The largest padding of `item` that can be written but then cannot take a
/// `last_date_deployed`, found by bisection on probes (deleted afterwards).
async fn fits_but_cannot_grow(
    h: &Harness,
    item: &dyn Fn(&str, usize) -> serde_json::Value,
) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    let fits = async |padding: usize| {
        let value: std::collections::HashMap<String, Av> =
            serde_dynamo::to_item(item("prb", padding)).unwrap();
        h.dynamodb
            .put_item()
            .table_name("relctl-releases")
            .set_item(Some(value))
            .send()
            .await
            .is_ok()
    };
    let (mut low, mut high) = (300_000, 500_000);
    while high - low > 1 {
        let mid = (low + high) / 2;
        if fits(mid).await {
            low = mid;
        } else {
            high = mid;
        }
    }
    assert!(fits(low).await);
    let grows = h
        .dynamodb
        .update_item()
        .table_name("relctl-releases")
        .key("release_id", Av::S("prb".into()))
        .update_expression("SET last_date_deployed = :at")
        .expression_attribute_values(":at", Av::S("2024-05-01T10:00:00.000000".into()))
        .send()
        .await;
    assert!(grows.is_err(), "the probe at {low} could still grow");
    h.dynamodb
        .delete_item()
        .table_name("relctl-releases")
        .key("release_id", Av::S("prb".into()))
        .send()
        .await
        .unwrap();
    low
}
