//! The CLI tells the truth about the controller: who holds the lease (and a warning
//! when nobody does), where each release runs now, `relctl wait` for a deployment
//! someone else requested, refusals at once where the controller would refuse, one
//! exit-code rule, and `health` reading the controller's own `http.listen`.

use crate::support::{Harness, release};
use serde_json::{Value, json};

const TABLE: &str = "relctl-releases";

async fn json_of(h: &Harness, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = h.run(&all).await;
    assert_eq!(code, 0, "relctl {args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn with_no_controller_status_and_deploy_wait_say_nothing_will_be_applied() {
    let h = Harness::new(crate::support::BUGFARM).await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let (code, out, err) = h.run(&["status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: no controller holds the lease"),
        "{err}"
    );
    assert!(out.starts_with("controller: none holds the lease"), "{out}");
    let (code, _, err) = h
        .run(&[
            "deploy",
            "r1",
            "--env",
            "stage",
            "--wait",
            "--timeout",
            "2s",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no controller holds the lease"), "{err}");
    assert!(err.contains("gave up waiting after 2s"), "{err}");

    // Once a controller runs, status names it and the same deployment goes through.
    let controller = h.start_controller().await;
    let status = json_of(&h, &["status"]).await;
    assert_eq!(status["controller"]["held"], true, "{status}");
    assert!(status["controller"]["leader"].is_string(), "{status}");
    let (code, _, err) = h.run(&["wait", "r1", "--env", "stage"]).await;
    assert_eq!(
        code, 0,
        "relctl wait follows a deployment someone else asked for: {err}"
    );
    assert!(err.contains("succeeded"), "{err}");
    let (_, _, err) = h.run(&["status"]).await;
    assert!(!err.contains("warning"), "{err}");
    controller.stop().await;
}

#[tokio::test]
async fn release_list_shows_where_each_release_runs_now() {
    let h = Harness::new(crate::support::BUGFARM).await;
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    let controller = h.start_controller().await;
    for (id, env) in [("r1", "stage"), ("r1", "prod"), ("r2", "stage")] {
        let (code, _, err) = h.run(&["deploy", id, "--env", env, "--wait"]).await;
        assert_eq!(code, 0, "{err}");
    }
    let listed = json_of(&h, &["release", "list", "--project", "bugfarm"]).await;
    let running: Vec<(String, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["release_id"].as_str().unwrap().to_owned(),
                r["running_in"].clone(),
            )
        })
        .collect();
    assert!(
        running.contains(&("r1".into(), json!(["prod"]))),
        "{running:?}"
    );
    assert!(
        running.contains(&("r2".into(), json!(["stage"]))),
        "{running:?}"
    );
    let (_, out, _) = h.run(&["release", "list", "--project", "bugfarm"]).await;
    assert!(out.lines().next().unwrap().contains("RUNNING IN"), "{out}");
    controller.stop().await;
}

#[tokio::test]
async fn refusals_come_at_once_with_exit_1_and_usage_errors_with_2() {
    let h = Harness::new(crate::support::BUGFARM).await;
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    for args in [
        &["status", "--project", "nope"][..],
        &["history", "--project", "nope", "--env", "stage"],
        &["history", "--project", "bugfarm", "--env", "nope"],
        &["logs", "--project", "nope", "--env", "stage"],
        &["logs", "--project", "bugfarm", "--env", "nope"],
        &["report", "--project", "nope"],
        &["report", "--project", "bugfarm", "--env", "nope"],
        &["diff", "r1", "--env", "nope"],
        &["release", "show", "nope"],
        &["release", "list", "--project", "nope"],
        &["wait", "r1", "--env", "qa"],
        &["wait", "r1", "--env", "stage"],
        &["approve", "r1", "--env", "stage"],
    ] {
        let (code, _, err) = h.run(args).await;
        assert_eq!(code, 1, "relctl {args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    let (code, _, err) = h.run(&["wait", "r1", "--env", "stage"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("has no deployment to stage"), "{err}");
    let (_, _, err) = h.run(&["approve", "r1", "--env", "stage"]).await;
    assert!(err.contains("not protected"), "{err}");

    // A service the release never had is refused unless asked for.
    let (code, _, err) = h
        .run(&[
            "release",
            "update",
            "r1",
            "--service",
            "nosuch=r.example/x:1",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has no service \"nosuch\" (it has: app); pass --add"),
        "{err}"
    );
    let (code, out, err) = h
        .run(&[
            "release",
            "update",
            "r1",
            "--add",
            "--service",
            "nosuch=r.example/x:1",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let added = h.release(TABLE, out.trim()).await;
    assert_eq!(added.images.len(), 2);

    for args in [&["deploy"][..], &["status", "--nope"], &["frobnicate"]] {
        assert_eq!(h.run(args).await.0, 2, "relctl {args:?} is a usage error");
    }
    let (_, out, _) = h.run(&["--help"]).await;
    assert!(
        out.contains("0 done, or nothing to do; 1 failed or refused"),
        "{out}"
    );
}

#[tokio::test]
async fn health_asks_the_address_the_configuration_gives_the_controller() {
    let h = Harness::new(crate::support::BUGFARM).await;
    let controller = h.start_controller().await;
    // As the ECS task runs it: the address comes from the environment, not a flag.
    let mut health = h.relctl();
    health
        .arg("health")
        .env("RELCTL_HTTP__LISTEN", controller.addr.to_string());
    let output = tokio::process::Command::from(health)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The harness's own file says port 0: the address is not knowable, and it says so.
    let (code, _, err) = h.run(&["health"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("port 0"), "{err}");
    controller.stop().await;
}
