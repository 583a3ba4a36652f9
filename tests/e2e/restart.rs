//! A controller stopped and started again resumes the stream from its checkpoint: what it
//! did is not done again, and what was written while it was down is picked up.

use crate::support::{BUGFARM, Harness, release};
use aws_sdk_dynamodb::types::AttributeValue;
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

#[tokio::test]
async fn a_restarted_controller_resumes_from_its_checkpoint() {
    let h = Harness::new(BUGFARM).await;
    for (id, tag) in [("r1", "v1"), ("r2", "v2")] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "hatching": format!("registry.example/hatching:{tag}") }),
            ),
        )
        .await;
    }
    let controller = h.start_controller().await;
    let done = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(done.status, Some(Status::Succeeded));
    controller.stop().await;

    let checkpoints = h
        .dynamodb
        .scan()
        .table_name("relctl-state")
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", AttributeValue::S("checkpoints#".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checkpoints.count, 1,
        "one checkpoint item for the one stream"
    );

    // Written while no controller runs, by hand: no last_date_deployed, so only the
    // stream (from the checkpoint) can reveal it; a resync of the index would not.
    h.request(TABLE, "r2", "prod", "2024-05-01T11:00:00.000000")
        .await;
    let before = h.parameters("/bugfarm/images").await;

    let controller = h.start_controller().await;
    let picked_up = h.finished(TABLE, "r2", 0).await;
    assert_eq!(picked_up.status, Some(Status::Succeeded), "{picked_up:?}");
    let after = h.parameters("/bugfarm/images").await;
    assert_eq!(
        after["/bugfarm/images/stage/hatching"], before["/bugfarm/images/stage/hatching"],
        "stage was not pinned again"
    );
    assert_eq!(
        after["/bugfarm/images/prod/hatching"].0,
        "registry.example/hatching:v2"
    );
    let again = h.release(TABLE, "r1").await.deployments[0].clone();
    assert_eq!(
        again.status_updated_at, done.status_updated_at,
        "r1's status was not rewritten"
    );
    controller.stop().await;
}
