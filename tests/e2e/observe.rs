//! Watching relctl: metrics that move during a deployment, health and readiness, drift
//! reported after someone changes a pin by hand, and the status page in a real
//! headless Chromium (Debian's package; scripts/test installs it).

use crate::support::{BUGFARM, Harness, get, release};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_move_during_a_deployment_and_health_endpoints_answer() {
    let h = Harness::new(BUGFARM).await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "bugfarm",
            json!({ "a": "r.example/a:1", "b": "r.example/b:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(get(controller.addr, "/healthz").await, (200, "ok\n".into()));
    let (status, body) = get(controller.addr, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ready"],
        true
    );

    let (_, before) = get(controller.addr, "/metrics").await;
    let done = r#"relctl_reconciles_total{project="bugfarm",environment="stage",result="done"}"#;
    let pins = r#"relctl_pins_written_total{kind="ssm_parameters"}"#;
    assert_eq!(sample(&before, pins), None);

    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    let (status, after) = get(controller.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&after, pins), Some(2.0), "{after}");
    assert!(sample(&after, done).unwrap() >= 1.0, "{after}");
    assert!(
        sample(
            &after,
            r#"relctl_stream_records_total{table="relctl-releases"}"#
        )
        .unwrap()
            >= 2.0,
        "{after}"
    );
    assert!(
        after.lines().any(|l| l.starts_with(
            "relctl_aws_calls_total{service=\"SSM\",operation=\"PutParameter\",outcome=\"ok\"} 2"
        )),
        "{after}"
    );
    assert!(sample(&after, "relctl_reconcile_duration_seconds_count").is_some());
    assert_eq!(sample(&after, "relctl_leader"), Some(1.0));
    assert_eq!(sample(&after, "relctl_queue_depth"), Some(0.0));
    controller.stop().await;
}

/// Deploys r1 to stage, stops the controller, changes the pin by hand, and starts the
/// controller again: its start-up resync is what looks at the pin.
async fn deployed_then_changed_by_hand(h: &Harness) -> crate::support::Running {
    h.put_release(
        TABLE,
        release(
            "r1",
            "bugfarm",
            json!({ "hatching": "r.example/hatching:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;
    h.put_parameter(
        "/bugfarm/images/stage/hatching",
        "r.example/hatching:hotfix",
    )
    .await;
    h.start_controller().await
}

#[tokio::test]
async fn a_pin_changed_by_hand_is_reported_as_drift() {
    let h = Harness::new(BUGFARM).await;
    let controller = deployed_then_changed_by_hand(&h).await;
    let state = h
        .until_state("bugfarm", "stage", |s| !s.drift.is_empty())
        .await;
    assert_eq!(state.drift, vec!["hatching".to_owned()]);
    let (_, metrics) = get(controller.addr, "/metrics").await;
    assert_eq!(
        sample(&metrics, "relctl_drifted_environments"),
        Some(1.0),
        "{metrics}"
    );
    let (_, page) = get(controller.addr, "/").await;
    assert!(page.contains("drift: hatching"), "{page}");
    controller.stop().await;
}

#[tokio::test]
async fn the_status_page_shows_the_running_release_in_a_real_browser() {
    let h = Harness::new(BUGFARM).await;
    h.put_release(
        TABLE,
        release(
            "release-for-the-browser",
            "bugfarm",
            json!({ "a": "r.example/a:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(
        TABLE,
        "release-for-the-browser",
        "stage",
        "2024-05-01T10:00:00.000000",
    )
    .await;
    assert_eq!(
        h.finished(TABLE, "release-for-the-browser", 0).await.status,
        Some(Status::Succeeded)
    );

    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("http://{}/", controller.addr),
        ])
        .output()
        .await
        .expect("chromium runs (scripts/test installs Debian's chromium)");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = dom
        .split("<tr")
        .find(|row| row.contains("data-env=\"bugfarm/stage\""))
        .unwrap_or_else(|| panic!("no row for bugfarm/stage in {dom}"));
    assert!(
        row.contains("title=\"release-for-the-browser\">release-</a>"),
        "{row}"
    );
    assert!(row.contains("badge converged"), "{row}");
    assert!(dom.contains("<title>relctl board</title>"));
    controller.stop().await;
}

#[tokio::test]
async fn with_self_heal_a_drifted_pin_is_put_back() {
    let h = Harness::new(
        "[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\nenvironments = [ { id = \"stage\", name = \"S\", self_heal = true } ]\n",
    )
    .await;
    let controller = deployed_then_changed_by_hand(&h).await;
    crate::support::until(
        "the drifted pin put back",
        async || {
            h.parameters("/bugfarm/images/stage").await["/bugfarm/images/stage/hatching"]
                .0
                .clone()
        },
        |pinned| pinned == "r.example/hatching:1",
    )
    .await;
    let state = h
        .until_state("bugfarm", "stage", |s| {
            !s.history.is_empty() && s.history[0].kind.as_str() == "self_heal"
        })
        .await;
    assert!(state.drift.is_empty());
    assert_eq!(state.history[0].message, "self-healed drift in hatching");
    // People see it where they look for what happened: `relctl history`.
    let (code, out, err) = h
        .run(&[
            "--output",
            "json",
            "history",
            "--project",
            "bugfarm",
            "--env",
            "stage",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let history: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history[0]["kind"], "self_heal", "{history}");
    assert_eq!(
        history[0]["status_message"],
        "self-healed drift in hatching"
    );
    assert_eq!(history[1]["kind"], "deployment", "{history}");
    controller.stop().await;
}

#[tokio::test]
async fn many_page_loads_at_once_cost_one_read_of_the_state_table() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    let reads = |metrics: &str| {
        sample(
            metrics,
            "relctl_aws_calls_total{service=\"DynamoDB\",operation=\"BatchGetItem\",outcome=\"ok\"}",
        )
        .unwrap_or(0.0)
    };
    let (_, before) = get(controller.addr, "/metrics").await;
    let pages: Vec<_> = (0..20)
        .map(|_| tokio::spawn(get(controller.addr, "/")))
        .collect();
    for page in pages {
        let (status, body) = page.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("data-env=\"bugfarm/stage\""));
    }
    let (_, after) = get(controller.addr, "/metrics").await;
    let spent = reads(&after) - reads(&before);
    assert!(
        (1.0..10.0).contains(&spent),
        "20 page loads at once read the state table {spent} times"
    );
    controller.stop().await;
}
