//! What one deployment costs in AWS calls, counted by the controller's own
//! `relctl_aws_calls_total`, against the floor the design states (README, "AWS calls
//! per deployment"): each call below is there for a reason, and nothing else is made.

use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, calls, delta, metric, release};

const TABLE: &str = "relctl-releases";
const SERVICES: usize = 10;

/// One pin-only environment; the lease renews every 5 min, so no renewal falls inside
/// a measurement.
const CONFIG: &str = r#"
[lease]
duration = "10m"
renew_every = "5m"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [ { id = "stage", name = "Staging" } ]
"#;

fn images(tag: &str) -> serde_json::Value {
    let mut images = serde_json::Map::new();
    for i in 0..SERVICES {
        images.insert(
            format!("svc{i}"),
            json!(format!(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/svc{i}:{tag}"
            )),
        );
    }
    serde_json::Value::Object(images)
}

const CHECKPOINTS: &str = r#"relctl_outcome_writes_total{target="checkpoint",outcome="ok"}"#;

#[tokio::test]
async fn a_deployment_to_a_converged_environment_makes_the_floor_of_calls() {
    let h = Harness::new(CONFIG).await;
    let controller = h.start_controller().await;
    for (id, tag) in [("r1", "v1"), ("r2", "v2")] {
        h.put_release(TABLE, release(id, "bugfarm", images(tag)))
            .await;
    }
    // The warm-up: the environment converges on r1.
    let first = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(first.status, Some(Status::Succeeded), "{first:?}");
    h.until_state("bugfarm", "stage", |s| {
        s.observed.as_ref().is_some_and(|o| o.release_id == "r1")
    })
    .await;

    let before = calls(&controller).await;
    let checkpoints_before = metric(&controller, CHECKPOINTS).await;
    let second = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(second.status, Some(Status::Succeeded), "{second:?}");
    h.until_state("bugfarm", "stage", |s| {
        s.observed.as_ref().is_some_and(|o| o.release_id == "r2")
    })
    .await;
    let mut made = delta(&calls(&controller).await, &before);
    // Stream checkpoints are saved every few seconds, not per deployment: whether one
    // falls inside the measurement depends on the clock, so they are taken out by count.
    let checkpoints = metric(&controller, CHECKPOINTS).await - checkpoints_before;
    if let Some(n) = made.get_mut("DynamoDB.TransactWriteItems") {
        *n -= checkpoints;
    }
    made.retain(|_, n| *n > 0);

    let floor = [
        // intake: the desired pointer advances (a compare-and-swap on what this term
        // last wrote, no read); the release's last_date_deployed moves to the intent.
        // The older entry finished, so it is not superseded.
        ("DynamoDB.TransactWriteItems", 1),
        ("DynamoDB.UpdateItem", 1),
        // reconcile: the state and the release, read fresh; the controller's own
        // verified records for the release.
        ("DynamoDB.GetItem", 2),
        ("DynamoDB.BatchGetItem", 1),
        // whether the environment is paused: its controls on the approvals table's
        // subject index.
        ("DynamoDB.Query", 1),
        // the entry says in_progress; the state says pinning.
        ("DynamoDB.UpdateItem", 1),
        ("DynamoDB.TransactWriteItems", 1),
        // pins: what is pinned, read by 10; each changed image written; read back by 10.
        ("SSM.GetParameters", 2),
        ("SSM.PutParameter", SERVICES as u64),
        // success: the verified record, the entry (with last_date_deployed), the state.
        ("DynamoDB.TransactWriteItems", 2),
        ("DynamoDB.UpdateItem", 1),
    ];
    let mut expected = std::collections::BTreeMap::new();
    for (op, n) in floor {
        *expected.entry(op.to_owned()).or_insert(0) += n;
    }
    assert_eq!(made, expected, "calls of the second deployment");
    controller.stop().await;
}
