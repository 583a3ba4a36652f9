//! Incident controls (#19): a pause stops the line in an environment until someone
//! resumes it; during a pause or a freeze only a principal `break_glass` lists may
//! deploy, recorded as such. Every act is under its writer's own AWS identity.

use crate::support::{Harness, release};
use aws_sdk_dynamodb::types::AttributeValue;
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

/// Releases `ids` of project `shop`, each with its own `web` image (hooks.rs too).
pub(crate) async fn releases(h: &Harness, ids: &[&str]) {
    for id in ids {
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

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

#[tokio::test]
async fn a_pause_holds_new_deployments_as_paused_until_someone_resumes() {
    let h = Harness::new(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
"#,
    )
    .await;
    releases(&h, &["r1"]).await;
    let oncall = h.identity("oncall").await;
    let controller = h.start_controller().await;

    let (code, _, err) = h
        .run(&[
            "pause",
            "--project",
            "shop",
            "--env",
            "prod",
            "--reason",
            "",
        ])
        .await;
    assert_eq!(code, 1, "a pause says why: {err}");
    let (code, _, err) = h
        .run_as(
            &oncall,
            &[
                "pause",
                "--project",
                "shop",
                "--env",
                "prod",
                "--reason",
                "incident 42: checkout errors",
            ],
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&oncall.arn), "{err}");
    // Paused before anything waits: `relctl status` says by whom and why.
    let (code, out, _) = h.run(&["status", "--project", "shop"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "paused by {} (aws:userid {})",
            oncall.arn, oncall.user_id
        )) && out.contains("incident 42: checkout errors"),
        "{out}"
    );

    h.request(TABLE, "r1", "prod", &now()).await;
    let waiting = h.until_status(TABLE, "r1", 0, Status::Paused).await;
    assert!(
        waiting.contains(&format!("environment prod is paused by {}", oncall.arn))
            && waiting.contains("incident 42: checkout errors")
            && waiting.contains("`relctl resume --project shop --env prod`"),
        "{waiting}"
    );
    assert!(
        h.parameters("/shop").await.is_empty(),
        "nothing pinned while paused"
    );
    let (code, out, _) = h.run(&["status", "--project", "shop"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("paused"), "{out}");

    // Someone else resumes it: the waiting deployment goes ahead.
    let (code, _, err) = h
        .run(&["resume", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("paused by {}", oncall.arn)), "{err}");
    let r1 = h.finished(TABLE, "r1", 0).await;
    assert_eq!(r1.status, Some(Status::Succeeded), "{r1:?}");
    assert_eq!(h.parameters("/shop/images/prod").await.len(), 1);
    let (code, _, err) = h
        .run(&["resume", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shop/prod is not paused"), "{err}");
    // The history names who paused and who resumed, as IAM proved them.
    let (code, out, err) = h
        .run(&[
            "history",
            "--project",
            "shop",
            "--env",
            "prod",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(
        rows.iter().any(|r| r["kind"] == "pause"
            && r["requested_by"] == oncall.arn.as_str()
            && r["status_message"] == "incident 42: checkout errors"),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "resume" && r["status_message"] == "ended 1 pause(s)"),
        "{out}"
    );
    // An unknown environment is refused, and nothing is written.
    let (code, _, err) = h
        .run(&[
            "pause",
            "--project",
            "shop",
            "--env",
            "nope",
            "--reason",
            "x",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    controller.stop().await;
}

#[tokio::test]
async fn during_a_freeze_only_a_listed_principal_breaks_the_glass() {
    let h = Harness::new(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
break_glass = ["arn:aws:iam::123456789012:role/incident-commander"]

[[projects.environments.freeze]]
from = "2020-01-01T00:00:00Z"
until = "2099-01-01T00:00:00Z"
reason = "the long freeze"
"#,
    )
    .await;
    releases(&h, &["r1", "r2"]).await;
    let commander = h.assume("incident-commander", "carol").await;
    let mallory = h.identity("mallory").await;
    let controller = h.start_controller().await;

    // An entry that only says break_glass (written past the CLI): it proves nothing.
    let mut forged = serde_json::json!({
        "date_created": now(),
        "environment": { "id": "prod" },
        "requested_by": { "id": "mallory" },
        "break_glass": "trust me",
    });
    h.dynamodb
        .update_item()
        .table_name(TABLE)
        .key("release_id", AttributeValue::S("r1".into()))
        .update_expression("SET deployments = list_append(deployments, :entry)")
        .expression_attribute_values(
            ":entry",
            AttributeValue::L(vec![
                serde_dynamo::to_attribute_value(forged.take()).unwrap(),
            ]),
        )
        .send()
        .await
        .unwrap();
    let frozen = h.until_status(TABLE, "r1", 0, Status::Frozen).await;
    assert!(
        frozen.contains("the long freeze") && frozen.contains("no break-glass is recorded for it"),
        "{frozen}"
    );

    // Cancelled while it waits for the freeze to end: the cancel wakes the controller.
    let (code, _, err) = h
        .run(&["cancel", "r1", "--env", "prod", "--reason", "not this one"])
        .await;
    assert_eq!(code, 0, "{err}");
    let cancelled = h.until_status(TABLE, "r1", 0, Status::Cancelled).await;
    assert!(cancelled.ends_with(": not this one"), "{cancelled}");

    // An unlisted principal is refused at once; nothing is written.
    let (code, _, err) = h
        .run_as(
            &mallory,
            &[
                "deploy",
                "r2",
                "--env",
                "prod",
                "--break-glass",
                "--reason",
                "hotfix",
            ],
        )
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("lets only arn:aws:iam::123456789012:role/incident-commander break the glass"),
        "{err}"
    );
    assert!(h.release(TABLE, "r2").await.deployments.is_empty());

    // A session of the listed role: applied during the freeze, and recorded as such.
    let (code, _, err) = h
        .run_as(
            &commander,
            &[
                "deploy",
                "r2",
                "--env",
                "prod",
                "--break-glass",
                "--reason",
                "hotfix for INC-7",
            ],
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let r2 = h.finished(TABLE, "r2", 0).await;
    assert_eq!(r2.status, Some(Status::Succeeded), "{r2:?}");
    assert_eq!(
        h.parameters("/shop/images/prod").await["/shop/images/prod/web"].0,
        "registry.example/web:r2"
    );
    let state = h
        .until_state("shop", "prod", |s| {
            s.history
                .first()
                .is_some_and(|e| e.release_id == "r2" && e.status == Status::Succeeded)
        })
        .await;
    let glass = state.history[0].break_glass.clone().unwrap_or_default();
    assert_eq!(
        glass,
        "break-glass by arn:aws:iam::123456789012:role/incident-commander (session carol): hotfix for INC-7",
        "named as listed, with the session that broke it: {:?}",
        state.history
    );
    let (code, out, err) = h
        .run(&["history", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("break-glass by"), "{out}");
    controller.stop().await;
}

#[tokio::test]
async fn retry_runs_the_newest_failed_intent_again_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(&format!(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
actuator = {{ kind = "terraform", dir = {dir:?}, commands = [["sh", "-c", "test -e ready || {{ echo not ready; exit 3; }}"]], timeout = "5m" }}
"#,
        dir = dir.path().display().to_string()
    ))
    .await;
    releases(&h, &["r1"]).await;
    let controller = h.start_controller().await;
    let (code, _, err) = h
        .run(&["retry", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing was deployed to prod yet"), "{err}");

    h.request(TABLE, "r1", "prod", &now()).await;
    let failed = h.finished(TABLE, "r1", 0).await;
    assert_eq!(failed.status, Some(Status::Failed), "{failed:?}");
    std::fs::write(dir.path().join("ready"), "").unwrap();
    let (code, out, err) = h
        .run(&[
            "retry",
            "--project",
            "shop",
            "--env",
            "prod",
            "--wait",
            "--timeout",
            "120s",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "r1");
    let again = h.finished(TABLE, "r1", 1).await;
    assert_eq!(again.status, Some(Status::Succeeded), "{again:?}");
    assert!(
        again
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with("retry of the deployment of r1 requested at")),
        "{again:?}"
    );
    // The newest intent succeeded: nothing to retry, nothing written.
    let (code, _, err) = h
        .run(&["retry", "--project", "shop", "--env", "prod"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("and it is succeeded, not failed"), "{err}");
    assert_eq!(h.release(TABLE, "r1").await.deployments.len(), 2);
    controller.stop().await;
}

/// One controller, environments in two Regions: each environment's pins are written in
/// its own Region (moto keeps SSM per Region, as AWS does).
#[tokio::test]
async fn one_controller_serves_environments_in_two_regions() {
    let h = Harness::new(
        r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "eu"
name = "Europe"

[[projects.environments]]
id = "us"
name = "America"
region = "us-east-1"
"#,
    )
    .await;
    releases(&h, &["r1"]).await;
    let controller = h.start_controller().await;
    for env in ["eu", "us"] {
        assert_eq!(h.run(&["deploy", "r1", "--env", env]).await.0, 0);
    }
    for index in [0, 1] {
        let entry = h.finished(TABLE, "r1", index).await;
        assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    }
    let ssm_in = |region: &'static str| {
        let config = aws_sdk_ssm::config::Builder::from(&h.sdk)
            .region(aws_sdk_ssm::config::Region::new(region))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    };
    let names = async |region: &'static str| {
        let found = ssm_in(region)
            .get_parameters_by_path()
            .path("/shop/images")
            .recursive(true)
            .send()
            .await
            .unwrap();
        let mut names: Vec<String> = found
            .parameters
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("eu-west-1").await, ["/shop/images/eu/web"]);
    assert_eq!(names("us-east-1").await, ["/shop/images/us/web"]);
    controller.stop().await;
}
