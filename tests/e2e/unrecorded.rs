//! A failure that cannot be recorded still counts: when the state item of an environment
//! cannot be written, the controller gives up on it after `max_attempts` (the deployment
//! `failed` in its record, an error log, `relctl_given_up_total`) instead of
//! retrying for ever, and other environments go on.

use relctl::model::Status;
use serde_json::json;

use crate::support::{
    BUGFARM, Harness, get,
    proxy::{Fault, Proxy, Rule},
    release,
};

const TABLE: &str = "relctl-releases";

#[tokio::test]
async fn failures_that_cannot_be_recorded_are_attempts_and_the_environment_is_given_up_on() {
    let h = Harness::new(BUGFARM).await;
    // Every write of stage's progress fails; intake's pointer writes do not.
    let proxy = Proxy::start(
        &h.moto.endpoint,
        vec![Rule {
            operation: "TransactWriteItems",
            fault: Fault::ServerError,
            every: 1,
            body_has: &["env#bugfarm#stage", "activity"],
        }],
    )
    .await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller_via(&proxy.endpoint).await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    let message = h.until_status(TABLE, "r1", 0, Status::Failed).await;
    assert!(
        message.contains("gave up after 10 failed attempts in a row"),
        "{message}"
    );
    let series = "relctl_given_up_total{project=\"bugfarm\",environment=\"stage\"} 1";
    let (_, metrics) = get(controller.addr, "/metrics").await;
    assert!(metrics.contains(series), "{metrics}");
    // Each attempt is a failed progress write, tried four times by relctl's
    // AWS client: 40 in all, not more.
    let failed_writes = proxy.injected("TransactWriteItems");
    assert_eq!(failed_writes, 40, "{failed_writes} failed writes");

    // Prod, on the same stream and state table, deploys meanwhile; stage is not retried.
    h.put_release(
        TABLE,
        release("r2", "bugfarm", json!({ "app": "r.example/app:2" })),
    )
    .await;
    let entry = h
        .deploy(TABLE, "r2", "prod", "2024-05-01T10:00:01.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        proxy.injected("TransactWriteItems"),
        failed_writes,
        "stage was retried"
    );
    controller.stop().await;
}
