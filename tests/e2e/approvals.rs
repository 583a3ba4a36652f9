//! Protected environments: a deployment waits `blocked` until an approval is recorded
//! (`relctl approve`), and with `four_eyes` the approver must not be the requester.

use crate::support::{Harness, release};
use aws_sdk_dynamodb::types::AttributeValue;
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

const PROTECTED: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [
  { id = "prod", name = "Production", protected = true },
  { id = "live", name = "Live", protected = true, four_eyes = true },
]
"#;

#[tokio::test]
async fn a_protected_deployment_waits_for_an_approval() {
    let h = Harness::new(PROTECTED).await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 1, "nothing is waiting yet: {err}");
    assert!(
        err.contains("no deployment of release r1 to prod is waiting"),
        "{err}"
    );

    let (code, _, err) = h.run(&["deploy", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("prod is protected: the deployment waits for `relctl approve r1 --env prod`"),
        "{err}"
    );
    let message = h.until_status(TABLE, "r1", 0, Status::Blocked).await;
    assert_eq!(
        message,
        "environment prod is protected: waiting for an approval (`relctl approve r1 --env prod`)"
    );
    assert!(
        h.parameters("/bugfarm").await.is_empty(),
        "nothing pinned before the approval"
    );
    h.until_state("bugfarm", "prod", |s| {
        s.activity.status() == Some(Status::Blocked)
    })
    .await;

    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(entry.approved_by.is_some() && entry.approved_at.is_some());
    assert_eq!(h.parameters("/bugfarm/images/prod").await.len(), 1);
    controller.stop().await;
}

#[tokio::test]
async fn four_eyes_needs_an_approver_other_than_the_requester() {
    let h = Harness::new(PROTECTED).await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "live"]).await.0, 0);
    h.until_status(TABLE, "r1", 0, Status::Blocked).await;
    // The requester's own approval is refused at once, with the controller's reason.
    let (code, _, err) = h.run(&["approve", "r1", "--env", "live"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("environment live needs four eyes: the approver must not be the requester"),
        "{err}"
    );
    assert!(err.contains("nothing was approved"), "{err}");
    let entry = &h.release(TABLE, "r1").await.deployments[0];
    assert_eq!(entry.approved_by, None, "nothing written");
    assert!(h.parameters("/bugfarm").await.is_empty());

    // Someone else approves (written by hand, as another tool would).
    h.dynamodb
        .update_item()
        .table_name(TABLE)
        .key("release_id", AttributeValue::S("r1".into()))
        .update_expression("SET deployments[0].approved_by = :by")
        .expression_attribute_values(
            ":by",
            serde_dynamo::to_attribute_value(
                json!({ "id": "arn:aws:iam::123456789012:user/reviewer", "name": "reviewer" }),
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_deployment_during_a_freeze_waits_frozen_and_goes_ahead_after() {
    let now = chrono::Utc::now();
    let (from, until) = (
        now - chrono::Duration::hours(1),
        now + chrono::Duration::seconds(3),
    );
    let h = Harness::new(&format!(
        "[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\nenvironments = [ {{ id = \"prod\", name = \"P\", freeze = [ {{ from = \"{}\", until = \"{}\", reason = \"change freeze\" }} ] }} ]\n",
        from.to_rfc3339(),
        until.to_rfc3339()
    ))
    .await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    let message = h.until_status(TABLE, "r1", 0, Status::Frozen).await;
    assert!(
        message.starts_with("environment prod is frozen until"),
        "{message}"
    );
    assert!(message.contains("(change freeze)"), "{message}");
    if chrono::Utc::now() < until {
        assert!(
            h.parameters("/bugfarm").await.is_empty(),
            "nothing pinned during the freeze"
        );
    }
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(chrono::Utc::now() >= until, "applied only after the window");
    controller.stop().await;
}
