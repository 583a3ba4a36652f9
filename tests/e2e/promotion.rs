//! Promotion that runs itself: a deployment bakes (its CloudWatch alarms watched for
//! `verify.bake`) before it counts as succeeded; an alarm during the bake fails it,
//! and with `on_failure = "rollback"` relctl records one deployment of the release that
//! last succeeded there, which goes through the loop like any (a protected environment's
//! approval included). Moto's CloudWatch, alarms moved with SetAlarmState.

use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, release};

const TABLE: &str = "relctl-releases";

async fn alarms(h: &Harness) -> aws_sdk_cloudwatch::Client {
    let cw = aws_sdk_cloudwatch::Client::new(&h.sdk);
    cw.put_metric_alarm()
        .alarm_name("prod-5xx")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    set(&cw, "OK").await;
    cw
}

async fn set(cw: &aws_sdk_cloudwatch::Client, state: &str) {
    cw.set_alarm_state()
        .alarm_name("prod-5xx")
        .state_value(state.into())
        .state_reason(format!("test set {state}"))
        .send()
        .await
        .unwrap();
}

fn config(extra: &str) -> String {
    format!(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
on_failure = "rollback"
verify = {{ alarms = ["prod-5xx"], bake = "2s", poll_interval = "1s" }}
{extra}
"#
    )
}

async fn releases(h: &Harness) {
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(
                id,
                "shop",
                json!({ "web": format!("registry.example/web:{id}") }),
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn an_alarm_during_the_bake_fails_the_deployment_and_one_rollback_follows() {
    let h = Harness::new(&config("")).await;
    let cw = alarms(&h).await;
    releases(&h).await;
    let controller = h.start_controller().await;

    // Quiet alarms: r1 succeeds once its bake is over, not before.
    h.request(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    let baking = h
        .until_entry(TABLE, "r1", 0, |e| {
            e.status_message
                .as_deref()
                .is_some_and(|m| m.starts_with("baking until"))
        })
        .await;
    assert_eq!(baking.status, Some(Status::InProgress), "{baking:?}");
    assert!(
        baking
            .status_message
            .unwrap()
            .contains("watching alarms prod-5xx"),
        "the bake says what it watches"
    );
    let r1 = h.finished(TABLE, "r1", 0).await;
    assert_eq!(r1.status, Some(Status::Succeeded), "{r1:?}");
    assert!(
        r1.status_message
            .as_deref()
            .unwrap()
            .contains("baked 2s with alarms prod-5xx quiet"),
        "{r1:?}"
    );

    // r2 is pinned, then the alarm goes off while it bakes.
    h.request(TABLE, "r2", "prod", "2026-12-01T10:01:00.000000")
        .await;
    h.until_entry(TABLE, "r2", 0, |e| {
        e.status_message
            .as_deref()
            .is_some_and(|m| m.starts_with("baking until"))
    })
    .await;
    set(&cw, "ALARM").await;
    let r2 = h.finished(TABLE, "r2", 0).await;
    assert_eq!(r2.status, Some(Status::Failed), "{r2:?}");
    let why = r2.status_message.unwrap();
    assert!(
        why.contains("alarm \"prod-5xx\" is in ALARM") && why.contains("test set ALARM"),
        "{why}"
    );
    // relctl's own deployment of r1, saying why. A rollback is not baked (the alarm is
    // still raised): its own verification is what it waits for.
    let rollback = h.finished(TABLE, "r1", 1).await;
    let description = rollback.description.clone().unwrap_or_default();
    assert!(
        description.starts_with("automatic rollback: release r2 failed in prod: alarm"),
        "{description}"
    );
    assert_eq!(
        rollback.requested_by.as_ref().and_then(|p| p.id.as_deref()),
        Some("relctl")
    );
    assert_eq!(rollback.status, Some(Status::Succeeded), "{rollback:?}");
    assert!(
        rollback
            .status_message
            .as_deref()
            .is_some_and(|m| m.ends_with("a rollback: not baked")),
        "{rollback:?}"
    );
    assert_eq!(h.release(TABLE, "r1").await.deployments.len(), 2);
    assert_eq!(h.release(TABLE, "r2").await.deployments.len(), 1);
    let state = h
        .until_state("shop", "prod", |s| {
            s.activity.status() == Some(Status::Succeeded)
                && s.activity.intent().is_some_and(|i| i.release_id == "r1")
        })
        .await;
    let rollbacks: Vec<_> = state
        .history
        .iter()
        .filter(|e| e.kind == relctl::model::state::HistoryKind::Rollback)
        .collect();
    assert_eq!(rollbacks.len(), 1, "{:?}", state.history);
    let (code, out, err) = h
        .run(&["history", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("automatic rollback"), "{out}");
    controller.stop().await;
}

#[tokio::test]
async fn a_rollback_on_a_protected_environment_waits_for_its_approval_then_restores_the_pins() {
    let h = Harness::new(&config("protected = true")).await;
    let cw = alarms(&h).await;
    releases(&h).await;
    let controller = h.start_controller().await;
    for (id, at) in [
        ("r1", "2026-12-01T10:00:00.000000"),
        ("r2", "2026-12-01T10:01:00.000000"),
    ] {
        h.request(TABLE, id, "prod", at).await;
        h.until_status(TABLE, id, 0, Status::Blocked).await;
        let (code, _, err) = h.run(&["approve", id, "--env", "prod"]).await;
        assert_eq!(code, 0, "{err}");
        if id == "r1" {
            let r1 = h.finished(TABLE, "r1", 0).await;
            assert_eq!(r1.status, Some(Status::Succeeded), "{r1:?}");
        }
    }
    h.until_entry(TABLE, "r2", 0, |e| {
        e.status_message
            .as_deref()
            .is_some_and(|m| m.starts_with("baking until"))
    })
    .await;
    set(&cw, "ALARM").await;
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Failed)
    );
    let parameter = "/shop/images/prod/web";
    assert_eq!(
        h.parameters("/shop/images/prod").await[parameter].0,
        "registry.example/web:r2",
        "r2's pins stay until the rollback is approved"
    );
    // The rollback waits for an approval like any deployment here.
    let waiting = h.until_status(TABLE, "r1", 1, Status::Blocked).await;
    assert!(
        waiting.contains("relctl approve r1 --env prod"),
        "{waiting}"
    );
    // Approved with the alarm still raised: a rollback skips the bake, so it succeeds.
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let rollback = h.finished(TABLE, "r1", 1).await;
    assert_eq!(rollback.status, Some(Status::Succeeded), "{rollback:?}");
    set(&cw, "OK").await;
    assert_eq!(
        h.parameters("/shop/images/prod").await[parameter].0,
        "registry.example/web:r1"
    );

    // The rollback sticks: r2 asked for again is refused, saying how to insist.
    let (code, out, _) = h.run(&["status", "--project", "shop"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("rolled back here (deployed again only with --force): r2"),
        "{out}"
    );
    // `release show`, `history` and the page show the mark too.
    let (code, out, err) = h.run(&["release", "show", "r2"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rolled back in prod (")
            && out.contains("deployed there again only with --force"),
        "{out}"
    );
    let (code, out, err) = h
        .run(&["history", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[rolled back here since]"), "{out}");
    let (code, json, _) = h
        .run(&[
            "--output",
            "json",
            "history",
            "--project",
            "shop",
            "--env",
            "prod",
        ])
        .await;
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["release_id"] == "r2" && r["rolled_back"].is_string()),
        "{json}"
    );
    let (code, page) = crate::support::get(controller.addr, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("rolled back here: r2"), "{page}");
    let (code, _, err) = h.run(&["deploy", "r2", "--env", "prod"]).await;
    assert_eq!(code, 1, "the CLI refuses it at once");
    assert!(err.contains("deploy it again with --force"), "{err}");
    assert_eq!(
        h.release(TABLE, "r2").await.deployments.len(),
        1,
        "nothing written"
    );
    // A writer that does not ask the CLI: the controller refuses the entry.
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    h.request(TABLE, "r2", "prod", &now).await;
    let refused = h.finished(TABLE, "r2", 1).await;
    assert_eq!(refused.status, Some(Status::Failed), "{refused:?}");
    let why = refused.status_message.unwrap();
    assert!(
        why.contains("release r2 was rolled back in prod")
            && why.contains("relctl deploy r2 --env prod --force"),
        "{why}"
    );
    assert_eq!(
        h.parameters("/shop/images/prod").await[parameter].0,
        "registry.example/web:r1",
        "nothing pinned"
    );
    // With --force (recorded on the entry) it goes through the loop again.
    let (code, _, err) = h.run(&["deploy", "r2", "--env", "prod", "--force"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        h.release(TABLE, "r2").await.deployments[2].force,
        Some(true)
    );
    h.until_status(TABLE, "r2", 2, Status::Blocked).await;
    let (code, _, err) = h.run(&["approve", "r2", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let forced = h.finished(TABLE, "r2", 2).await;
    assert_eq!(forced.status, Some(Status::Succeeded), "{forced:?}");
    // The state is saved just after the entry's status: waited for, not raced — and
    // whole (moto applies an UpdateItem's SETs and REMOVEs one by one, so a reader can
    // see the new activity before the mark is removed; DynamoDB applies them at once).
    // Deployed on purpose, the release is no longer held back.
    let state = h
        .until_state("shop", "prod", |s| {
            s.activity.status() == Some(Status::Succeeded)
                && s.activity.intent().is_some_and(|i| i.release_id == "r2")
                && s.rolled_back.is_empty()
        })
        .await;
    assert!(state.rolled_back.is_empty());
    controller.stop().await;
}

#[tokio::test]
async fn a_release_promotes_itself_dev_to_stage_to_prod_and_stops_at_a_protected_prod() {
    let h = Harness::new(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "dev"
name = "Development"

[[projects.environments]]
id = "stage"
name = "Staging"
auto_promote_from = "dev"
soak = "1s"

[[projects.environments]]
id = "prod"
name = "Production"
protected = true
requires = ["stage"]
auto_promote_from = "stage"
soak = "1s"
"#,
    )
    .await;
    releases(&h).await;
    let controller = h.start_controller().await;
    let dev = h
        .deploy(TABLE, "r1", "dev", "2026-12-01T10:00:00.000000")
        .await;
    assert_eq!(dev.status, Some(Status::Succeeded), "{dev:?}");
    // relctl requests it in stage, which succeeds, then in prod, which waits.
    let stage = h.finished(TABLE, "r1", 1).await;
    assert_eq!(stage.environment.id, "stage");
    assert_eq!(stage.status, Some(Status::Succeeded), "{stage:?}");
    assert_eq!(
        stage.description.as_deref(),
        Some("automatic promotion from dev after 1s there")
    );
    assert_eq!(
        stage.requested_by.as_ref().and_then(|p| p.name.as_deref()),
        Some("relctl (auto-promotion)")
    );
    let waiting = h.until_status(TABLE, "r1", 2, Status::Blocked).await;
    assert!(
        waiting.contains("relctl approve r1 --env prod"),
        "{waiting}"
    );
    assert_eq!(
        h.release(TABLE, "r1").await.deployments[2].environment.id,
        "prod"
    );
    assert!(h.parameters("/shop/images/prod").await.is_empty());
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let prod = h.finished(TABLE, "r1", 2).await;
    assert_eq!(prod.status, Some(Status::Succeeded), "{prod:?}");
    // Each promotion once: three entries in all, however often stage is looked at.
    assert_eq!(h.release(TABLE, "r1").await.deployments.len(), 3);
    controller.stop().await;
}

#[tokio::test]
async fn delivery_metrics_count_what_finished_and_report_prints_them() {
    let h = Harness::new(&config("")).await;
    alarms(&h).await;
    releases(&h).await;
    h.put_release(
        TABLE,
        release("bad", "shop", json!({ "web": "not an image uri" })),
    )
    .await;
    let controller = h.start_controller().await;
    let ok = h
        .deploy(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    assert_eq!(ok.status, Some(Status::Succeeded));
    let bad = h
        .deploy(TABLE, "bad", "prod", "2026-12-01T10:01:00.000000")
        .await;
    assert_eq!(bad.status, Some(Status::Failed), "{bad:?}");
    let ok = h
        .deploy(TABLE, "r2", "prod", "2026-12-01T10:02:00.000000")
        .await;
    assert_eq!(ok.status, Some(Status::Succeeded));
    // The state (what the report reads) is saved just after the entry's status.
    h.until_state("shop", "prod", |s| s.deliveries.len() >= 3)
        .await;

    let (code, out, err) = h
        .run(&["report", "--project", "shop", "--output", "json"])
        .await;
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let prod = &rows[0];
    assert_eq!(prod["environment"], "prod");
    assert_eq!(
        (&prod["deployments"], &prod["succeeded"], &prod["failed"]),
        (&json!(3), &json!(2), &json!(1)),
        "{prod}"
    );
    let rate = prod["change_failure_rate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{prod}");
    assert!(prod["time_to_restore_seconds"].as_u64().is_some(), "{prod}");
    // The releases were created in 2024: their lead time is years.
    assert!(
        prod["lead_time_seconds"].as_u64().unwrap() > 365 * 86_400,
        "{prod}"
    );
    let (code, table, _) = h.run(&["report", "--project", "shop"]).await;
    assert_eq!(code, 0);
    assert!(
        table.contains("FAILURE RATE") && table.contains("33%"),
        "{table}"
    );
    let (_, metrics) = crate::support::get(controller.addr, "/metrics").await;
    assert!(
        metrics.contains(
            "relctl_dora_change_failure_rate{project=\"shop\",environment=\"prod\"} 0.333"
        ),
        "{metrics}"
    );
    let (_, page) = crate::support::get(controller.addr, "/").await;
    let delivery = page
        .split("<table id=\"delivery\">")
        .nth(1)
        .unwrap_or_default();
    assert!(
        delivery.contains("<td>3</td>") && delivery.contains("33%"),
        "{page}"
    );
    let (code, _, err) = h
        .run(&["report", "--project", "shop", "--env", "nope"])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
    controller.stop().await;
}

#[tokio::test]
async fn a_newer_intent_supersedes_a_deployment_while_it_bakes() {
    let h = Harness::new(&config("").replace("bake = \"2s\"", "bake = \"1h\"")).await;
    alarms(&h).await;
    releases(&h).await;
    let controller = h.start_controller().await;
    let baking = |e: &relctl::model::record::Deployment| {
        e.status_message
            .as_deref()
            .is_some_and(|m| m.starts_with("baking until"))
    };
    h.request(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    h.until_entry(TABLE, "r1", 0, baking).await;
    h.request(TABLE, "r2", "prod", "2026-12-01T10:01:00.000000")
        .await;
    let message = h.until_status(TABLE, "r1", 0, Status::Superseded).await;
    assert!(message.starts_with("superseded by release r2"), "{message}");
    h.until_entry(TABLE, "r2", 0, baking).await;
    let (code, out, err) = h.run(&["status", "--project", "shop"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("baking"), "{out}");
    controller.stop().await;
}

#[tokio::test]
async fn an_observe_only_alarm_in_alarm_is_recorded_and_fails_nothing() {
    let h = Harness::new(
        &config("").replace("alarms = [\"prod-5xx\"]", "observe_alarms = [\"prod-5xx\"]"),
    )
    .await;
    let cw = alarms(&h).await;
    releases(&h).await;
    set(&cw, "ALARM").await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    let r1 = h.finished(TABLE, "r1", 0).await;
    assert_eq!(r1.status, Some(Status::Succeeded), "{r1:?}");
    let said = r1.status_message.unwrap_or_default();
    assert!(
        said.contains("baked 2s; observe-only alarm \"prod-5xx\" is in ALARM")
            && said.ends_with("(not enforced)"),
        "{said}"
    );
    controller.stop().await;
}
