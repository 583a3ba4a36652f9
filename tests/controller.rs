//! End to end against moto: a deployment entry written with plain DynamoDB calls becomes
//! pinned SSM parameters and a written status, through the real stream.

mod support;

use relctl::model::Status;
use serde_json::json;
use support::{BUGFARM, Harness, release};

const TABLE: &str = "relctl-releases";

#[tokio::test]
async fn a_deployment_record_is_pinned_verified_and_marked_succeeded() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "bugfarm",
            json!({
                "hatching": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/hatching:v1",
                "feeding": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/feeding:v1",
            }),
        ),
    )
    .await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000001")
        .await;

    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        entry.status_message.as_deref(),
        Some("pinned 2 of 2 images (feeding, hatching); verified")
    );
    assert!(entry.status_updated_at.is_some());

    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(pinned.len(), 2);
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/hatching:v1"
    );

    let state = h.env_state("bugfarm", "stage").await;
    let observed = state.observed.expect("observed release recorded");
    assert_eq!(observed.release_id, "r1");
    assert_eq!(state.desired.expect("desired pointer").release_id, "r1");
    assert_eq!(state.status, Some(Status::Succeeded));
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.attempts, 0);

    let release = h.release(TABLE, "r1").await;
    assert!(
        release.last_date_deployed.expect("last_date_deployed set") >= entry.date_created,
        "last_date_deployed must cover the deployment"
    );
    controller.stop().await;
}
