//! Hooks around a deployment: commands run by the controller, and Lambda functions
//! invoked with the deployment as JSON (a wire stub of Invoke: moto runs Lambda code
//! only with Docker). An enforced hook that fails fails the deployment; an
//! observe-only one has its verdict recorded and the deployment goes on.

use std::sync::Arc;

use crate::{
    controls::releases,
    support::{Harness, lambda::LambdaStub},
};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

/// Hooks around a deployment: `before` runs with the deployment in its environment
/// before anything is pinned; an `after` hook that fails fails the deployment, unless
/// it is `observe`-only, whose verdict is recorded and the deployment succeeds.
#[tokio::test]
async fn an_after_hook_failing_fails_the_deployment_unless_it_only_observes() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = |mode: &str| {
        format!(
            r#"
[[projects.environments.hooks.before]]
command = ["sh", "-c", "echo before $RELCTL_HOOK $RELCTL_RELEASE_ID $RELCTL_ENVIRONMENT >> hooks.log"]
dir = {dir:?}

[[projects.environments.hooks.after]]
name = "smoke"
command = ["sh", "-c", "echo checking; test -e healthy || {{ echo unhealthy; exit 4; }}"]
dir = {dir:?}
mode = "{mode}"
"#,
            dir = dir.path().display().to_string()
        )
    };
    let h = Harness::new(&format!(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "enforced"
name = "Enforced"
{}
[[projects.environments]]
id = "observed"
name = "Observed"
{}"#,
        hooks("enforce"),
        hooks("observe")
    ))
    .await;
    releases(&h, &["r1"]).await;
    let controller = h.start_controller().await;
    for env in ["enforced", "observed"] {
        assert_eq!(h.run(&["deploy", "r1", "--env", env]).await.0, 0);
        h.until_entry(TABLE, "r1", if env == "enforced" { 0 } else { 1 }, |e| {
            e.status.is_some_and(Status::is_terminal)
        })
        .await;
    }
    let enforced = h.finished(TABLE, "r1", 0).await;
    assert_eq!(enforced.status, Some(Status::Failed), "{enforced:?}");
    let why = enforced.status_message.unwrap_or_default();
    assert!(
        why.starts_with("after hook smoke failed: exit status: 4: checking | unhealthy"),
        "{why}"
    );
    let observed = h.finished(TABLE, "r1", 1).await;
    assert_eq!(observed.status, Some(Status::Succeeded), "{observed:?}");
    let said = observed.status_message.unwrap_or_default();
    assert!(
        said.contains("observe-only after hook smoke failed (not enforced): exit status: 4"),
        "{said}"
    );
    let log = std::fs::read_to_string(dir.path().join("hooks.log")).unwrap();
    assert_eq!(
        log,
        "before before r1 enforced\nbefore before r1 observed\n"
    );
    controller.stop().await;
}

/// Hooks that are Lambda functions: each is invoked synchronously with the deployment;
/// one that raises fails an enforced deployment, one that answers `ok: false` in
/// observe mode is recorded and the deployment succeeds.
#[tokio::test]
async fn a_hook_function_is_invoked_with_the_deployment_and_its_verdict_counts_as_configured() {
    let stub = LambdaStub::start(Arc::new(|name, _| match name {
        "prepare" => (json!({ "ok": true }), None),
        "strict" => (json!({ "ok": "no" }), None),
        "smoke" => (
            json!({ "errorMessage": "checkout returned 500", "errorType": "Error" }),
            Some("Unhandled"),
        ),
        _ => (
            json!({ "ok": false, "message": "p99 latency 2.1s over 1s" }),
            None,
        ),
    }))
    .await;
    let h = Harness::new(&format!(
        r#"
[aws.endpoints]
lambda = "{}"

[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "staging"
name = "Staging"

[[projects.environments.hooks.before]]
function = "prepare"

[[projects.environments.hooks.after]]
function = "smoke"

[[projects.environments]]
id = "qa"
name = "QA"

[[projects.environments.hooks.after]]
function = "strict"

[[projects.environments]]
id = "prod"
name = "Production"

[[projects.environments.hooks.after]]
name = "latency"
function = "arn:aws:lambda:eu-west-1:123456789012:function:canary:live"
mode = "observe"
"#,
        stub.endpoint
    ))
    .await;
    releases(&h, &["r1"]).await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "staging"]).await.0, 0);
    let staging = h.finished(TABLE, "r1", 0).await;
    assert_eq!(staging.status, Some(Status::Failed), "{staging:?}");
    let why = staging.status_message.unwrap_or_default();
    assert!(
        why.starts_with("after hook smoke failed: raised Unhandled: checkout returned 500"),
        "{why}"
    );
    // An answer that does not say ok: true fails an enforced hook.
    assert_eq!(h.run(&["deploy", "r1", "--env", "qa"]).await.0, 0);
    let qa = h.finished(TABLE, "r1", 1).await;
    assert_eq!(qa.status, Some(Status::Failed), "{qa:?}");
    let why = qa.status_message.unwrap_or_default();
    assert!(
        why.starts_with("after hook strict failed: it answered ok: \"no\""),
        "{why}"
    );
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    let prod = h.finished(TABLE, "r1", 2).await;
    assert_eq!(prod.status, Some(Status::Succeeded), "{prod:?}");
    let said = prod.status_message.unwrap_or_default();
    assert!(
        said.contains(
            "observe-only after hook latency failed (not enforced): p99 latency 2.1s over 1s"
        ),
        "{said}"
    );
    let calls = stub.calls();
    let named: Vec<&str> = calls.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        named,
        [
            "prepare",
            "smoke",
            "strict",
            "arn:aws:lambda:eu-west-1:123456789012:function:canary:live"
        ]
    );
    let (_, payload) = &calls[0];
    assert_eq!(payload["project"], "shop");
    assert_eq!(payload["environment"], "staging");
    assert_eq!(payload["release_id"], "r1");
    assert_eq!(payload["hook"], "before");
    assert_eq!(
        payload["images"],
        json!({ "web": "registry.example/web:r1" })
    );
    assert_eq!(calls[1].1["hook"], "after");
    controller.stop().await;
}
