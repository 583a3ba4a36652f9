//! Faults injected between relctl and moto by a loopback proxy: throttling,
//! ProvisionedThroughputExceeded, 500s and delays on the operations relctl depends on.
//! Deployments still converge, and the failed attempts are counted.

use std::time::Duration;

use crate::support::{
    Harness, get,
    proxy::{Fault, Proxy, Rule},
    release,
};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

const FIVE: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [
  { id = "e0", name = "E0" }, { id = "e1", name = "E1" }, { id = "e2", name = "E2" },
  { id = "e3", name = "E3" }, { id = "e4", name = "E4" },
]
"#;

#[tokio::test]
async fn deployments_converge_through_throttling_server_errors_and_delays() {
    let h = Harness::new(FIVE).await;
    let proxy = Proxy::start(
        &h.moto.endpoint,
        vec![
            Rule {
                operation: "PutParameter",
                fault: Fault::Throttle,
                every: 2,
                body_has: &[],
            },
            Rule {
                operation: "GetParametersByPath",
                fault: Fault::ServerError,
                every: 3,
                body_has: &[],
            },
            Rule {
                operation: "TransactWriteItems",
                fault: Fault::ThroughputExceeded,
                every: 3,
                body_has: &[],
            },
            Rule {
                operation: "UpdateItem",
                fault: Fault::Throttle,
                every: 4,
                body_has: &[],
            },
            Rule {
                operation: "GetItem",
                fault: Fault::Delay(Duration::from_millis(300)),
                every: 5,
                body_has: &[],
            },
            Rule {
                operation: "GetRecords",
                fault: Fault::ServerError,
                every: 3,
                body_has: &[],
            },
            Rule {
                operation: "Query",
                fault: Fault::Throttle,
                every: 2,
                body_has: &[],
            },
        ],
    )
    .await;
    for i in 0..5 {
        h.put_release(
            TABLE,
            release(
                &format!("r{i}"),
                "bugfarm",
                json!({ "app": format!("r.example/app:{i}") }),
            ),
        )
        .await;
    }
    let controller = h.start_controller_via(&proxy.endpoint).await;
    for i in 0..5 {
        h.request(
            TABLE,
            &format!("r{i}"),
            &format!("e{i}"),
            &format!("2024-05-01T10:00:0{i}.000000"),
        )
        .await;
    }
    for i in 0..5 {
        let entry = h.finished(TABLE, &format!("r{i}"), 0).await;
        assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
        let pinned = h.parameters(&format!("/bugfarm/images/e{i}")).await;
        assert_eq!(
            pinned[&format!("/bugfarm/images/e{i}/app")].0,
            format!("r.example/app:{i}")
        );
    }
    for operation in ["PutParameter", "TransactWriteItems", "GetRecords"] {
        assert!(
            proxy.injected(operation) > 0,
            "no fault was injected into {operation}"
        );
    }
    let (_, metrics) = get(controller.addr, "/metrics").await;
    let throttled: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("relctl_aws_failed_attempts_total") && l.contains("outcome=\"throttled\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        throttled >= 1.0,
        "throttled attempts are counted: {metrics}"
    );
    controller.stop().await;
}
