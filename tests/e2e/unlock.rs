//! `relctl unlock`: a Terraform state lock left in an S3 backend (moto, `use_lockfile`)
//! by a run that died fails the next deployment with a message naming the lock and the
//! command; the unlock is refused while the environment's run record says a run may be
//! alive, and releases exactly that lock once the run is known to be over; a retry then
//! applies. A real `terraform` (scripts/test installs one when PATH has none).

use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, release, s3};

const TABLE: &str = "relctl-releases";
const STATE: &str = "unlock-terraform-state";
const KEY: &str = "tre/prod.tfstate";
const LOCK: &str = "4f1c2a9e-7d3b-4c5e-9a1f-2b3c4d5e6f70";

/// The lock a run that died left: Terraform's lock file beside the state.
fn lock_file() -> Vec<u8> {
    json!({
        "ID": LOCK,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "runner@lost-host",
        "Version": "1.11.0",
        "Created": "2026-12-01T09:00:00.000000Z",
        "Path": format!("{STATE}/{KEY}"),
    })
    .to_string()
    .into_bytes()
}

async fn locked(s3: &aws_sdk_s3::Client) -> bool {
    s3.head_object()
        .bucket(STATE)
        .key(format!("{KEY}.tflock"))
        .send()
        .await
        .is_ok()
}

/// The environment's run record, as another controller's run would leave it.
async fn run_record(h: &Harness, heartbeat_ms: i64) {
    h.dynamodb
        .put_item()
        .table_name(&h.config.tables.state)
        .item("pk", AttributeValue::S("run#tre#prod".into()))
        .item("run_id", AttributeValue::S("tre/prod/r0@elsewhere".into()))
        .item("owner", AttributeValue::S("relctl-other-replica".into()))
        .item("run_state", AttributeValue::S("running".into()))
        .item("run_mode", AttributeValue::S("whole".into()))
        .item("started_ms", AttributeValue::N(heartbeat_ms.to_string()))
        .item("heartbeat_ms", AttributeValue::N(heartbeat_ms.to_string()))
        .send()
        .await
        .expect("run record");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn a_lock_left_by_a_dead_run_is_released_only_once_that_run_is_known_to_be_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform-remote/main.tf"),
        dir.path().join("main.tf"),
    )
    .unwrap();
    let moto = crate::support::Moto::start();
    let endpoint = moto.endpoint.clone();
    let backend = s3::backend_args(STATE, KEY);
    let h = Harness::with_moto(
        moto,
        &format!(
            r#"
[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"

[projects.environments.actuator]
kind = "terraform"
dir = {dir:?}
timeout = "5m"
commands = [
  ["terraform", "init", "-input=false", {backend}],
  ["terraform", "apply", "-auto-approve", "-input=false"],
]

[projects.environments.actuator.env]
AWS_ENDPOINT_URL = "{endpoint}"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"
CHECKPOINT_DISABLE = "1"
TF_IN_AUTOMATION = "1"
"#,
            dir = dir.path().display().to_string()
        ),
    )
    .await;
    let s3 = s3::client(&h);
    s3::bucket(&s3, STATE, false).await;
    s3::put(&s3, STATE, &format!("{KEY}.tflock"), lock_file()).await;
    let images = json!({ "parser": "registry.example/parser:1.4.0" });
    h.put_release(TABLE, release("r1", "tre", images)).await;
    let controller = h.start_controller().await;

    // The lock makes the apply fail; the failure names the lock and the way out.
    let failed = h
        .deploy(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    assert_eq!(failed.status, Some(Status::Failed), "{failed:?}");
    let message = failed.status_message.unwrap_or_default();
    assert!(
        message.contains(&format!("the state is locked by another (lock {LOCK})"))
            && message.contains("`relctl unlock --project tre --env prod`"),
        "{message}"
    );

    // The controller's record of that run: failed, its output naming the lock.
    let failed_run = h
        .dynamodb
        .get_item()
        .table_name(&h.config.tables.state)
        .key("pk", AttributeValue::S("run#tre#prod".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the run record");

    // A run another replica follows may be alive (its heartbeat is fresh): refused.
    run_record(&h, now_ms()).await;
    let (code, _, err) = h
        .run(&[
            "unlock",
            "--project",
            "tre",
            "--env",
            "prod",
            "--reason",
            "host lost",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("may still be alive") && err.contains("nothing was unlocked"),
        "{err}"
    );
    assert!(locked(&s3).await, "the lock is still there");

    // An ID that is not one is refused before anything runs.
    let (code, _, err) = h
        .run(&[
            "unlock",
            "--project",
            "tre",
            "--env",
            "prod",
            "--lock-id=-force",
            "--reason",
            "x",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a Terraform lock ID"), "{err}");
    assert!(locked(&s3).await);

    // A run whose heartbeat stopped ten minutes ago is over; its record names no lock,
    // so one must be given (a releases-table field is never taken for it).
    run_record(&h, now_ms() - 600_000).await;
    let unlock = [
        "unlock",
        "--project",
        "tre",
        "--env",
        "prod",
        "--reason",
        "host lost",
    ];
    let (code, _, err) = h.run(&unlock).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("names no state lock it could not take; give the lock's ID with --lock-id"),
        "{err}"
    );
    assert!(locked(&s3).await);

    // The failed run's own record names the lock: it is released, and who did it is
    // recorded.
    h.dynamodb
        .put_item()
        .table_name(&h.config.tables.state)
        .set_item(Some(failed_run))
        .send()
        .await
        .unwrap();
    let (code, _, err) = h.run(&unlock).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("released lock {LOCK} of tre/prod")),
        "{err}"
    );
    assert!(!locked(&s3).await, "the lock is gone");
    let recorded = h
        .dynamodb
        .scan()
        .table_name(&h.config.tables.approvals)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(
        recorded.iter().any(|item| {
            item.get("principal")
                .and_then(|p| p.as_s().ok())
                .is_some_and(|p| p.starts_with("unlock#"))
                && item.get("subject").and_then(|s| s.as_s().ok()) == Some(&"tre#prod".into())
                && item
                    .get("reason")
                    .and_then(|r| r.as_s().ok())
                    .is_some_and(|r| r.contains("host lost") && r.contains(LOCK))
        }),
        "{recorded:?}"
    );

    let (code, out, err) = h
        .run(&[
            "history",
            "--project",
            "tre",
            "--env",
            "prod",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"kind\": \"unlock\"") && out.contains(&format!("host lost (lock {LOCK})")),
        "{out}"
    );

    // The lock is gone, so the failed deployment runs again and applies.
    let (code, _, err) = h
        .run(&[
            "retry",
            "--project",
            "tre",
            "--env",
            "prod",
            "--wait",
            "--timeout",
            "300s",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let applied = s3::json(&s3, STATE, KEY).await;
    assert_eq!(applied["outputs"]["release_id"]["value"], "r1");
    controller.stop().await;
}
