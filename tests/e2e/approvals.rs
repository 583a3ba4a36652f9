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

    // An approval written into the entry by hand is display only: it proves nobody.
    forge_approval(&h, "r1").await;
    let message = h
        .until_entry(TABLE, "r1", 0, |e| e.approved_by.is_some())
        .await;
    assert_eq!(message.status, Some(Status::Blocked), "still waiting");
    let state = h
        .until_state("bugfarm", "live", |s| {
            s.activity.status() == Some(Status::Blocked)
        })
        .await;
    assert!(
        state
            .activity
            .message()
            .unwrap_or_default()
            .contains("waiting for an approval"),
        "the forged approval does not count"
    );
    assert!(
        h.parameters("/bugfarm").await.is_empty(),
        "a forgery applies nothing"
    );

    // Someone else approves, under their own AWS identity.
    let reviewer = h.identity("reviewer").await;
    let (code, _, err) = h
        .run_as(&reviewer, &["approve", "r1", "--env", "live"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&reviewer.arn), "{err}");
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;
}

/// Writes `approved_by` into a release's first entry by hand, as a hostile deployer would.
async fn forge_approval(h: &Harness, release_id: &str) {
    h.dynamodb
        .update_item()
        .table_name(TABLE)
        .key("release_id", AttributeValue::S(release_id.into()))
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
}

#[tokio::test]
async fn an_entry_appended_already_approved_waits_for_a_real_approval() {
    let h = Harness::new(PROTECTED).await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    // Appended with the approval already in it, and a claimed outcome.
    h.dynamodb
        .update_item()
        .table_name(TABLE)
        .key("release_id", AttributeValue::S("r1".into()))
        .update_expression("SET deployments = list_append(deployments, :entry)")
        .expression_attribute_values(
            ":entry",
            serde_dynamo::to_attribute_value(json!([{
                "date_created": "2024-05-01T10:00:00.000000",
                "environment": { "id": "prod", "name": "Production" },
                "requested_by": { "id": "tester", "name": "Tester" },
                "approved_by": { "id": "arn:aws:iam::123456789012:user/boss", "name": "boss" },
                "status": "in_progress",
            }]))
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let message = h.until_status(TABLE, "r1", 0, Status::Blocked).await;
    assert!(message.contains("waiting for an approval"), "{message}");
    let entry = &h.release(TABLE, "r1").await.deployments[0];
    assert_eq!(entry.approved_by, None, "the claimed approval was removed");
    assert!(h.parameters("/bugfarm").await.is_empty());
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
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
        now + chrono::Duration::seconds(20),
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

/// `approvers` lists a role: only its sessions' approvals count, whatever ARN an
/// approval's writer claims (the controller matches IAM's unique id of the role).
#[tokio::test]
async fn only_principals_listed_in_approvers_may_approve() {
    let h = Harness::new(
        r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"

[[projects.environments]]
id = "prod"
name = "Production"
protected = true
approvers = ["arn:aws:iam::123456789012:role/release-managers"]
"#,
    )
    .await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let manager = h.assume("release-managers", "alice").await;
    let mallory = h.identity("mallory").await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    let waiting = h.until_status(TABLE, "r1", 0, Status::Blocked).await;
    assert!(
        waiting.contains(
            "waiting for an approval by one of arn:aws:iam::123456789012:role/release-managers"
        ),
        "{waiting}"
    );
    // The CLI refuses an unlisted approver at once, and writes nothing.
    let (code, _, err) = h
        .run_as(&mallory, &["approve", "r1", "--env", "prod"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("takes approvals only from arn:aws:iam::123456789012:role/release-managers")
            && err.contains(&mallory.arn),
        "{err}"
    );
    // An approval written past the CLI, under mallory's own key, claiming the role's ARN:
    // it does not count, and the status says whose did not.
    let requested = h.release(TABLE, "r1").await.deployments[0].date_created.at;
    let subject = format!("bugfarm#prod#r1#{}", requested.to_wire());
    let digest =
        relctl::model::images_digest(&[("app".to_owned(), "r.example/app:1".to_owned())].into());
    h.put_raw(
        "relctl-approvals",
        &json!({
            "principal": { "S": format!("approve#{}", mallory.user_id) },
            "subject": { "S": subject },
            "arn": { "S": "arn:aws:iam::123456789012:role/release-managers" },
            "images": { "S": digest },
            "at": { "S": "2026-12-01T10:00:00.000000" },
        }),
    )
    .await;
    let state = h
        .until_state("bugfarm", "prod", |s| {
            s.activity
                .message()
                .is_some_and(|m| m.contains("do not count: not listed in `approvers`"))
        })
        .await;
    assert_eq!(state.activity.status(), Some(Status::Blocked));
    assert!(h.parameters("/bugfarm").await.is_empty(), "nothing pinned");

    // A session of the listed role approves.
    let (code, _, err) = h
        .run_as(&manager, &["approve", "r1", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(h.parameters("/bugfarm/images/prod").await.len(), 1);
    controller.stop().await;
}
