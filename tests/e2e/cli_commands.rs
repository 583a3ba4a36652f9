//! The read and follow-up commands against moto with the controller in-process:
//! update, list, show, status, history, diff, rollback, validate, the promotion gate,
//! and the shapes of their `--output json`.

use crate::support::Harness;
use relctl::model::Status;
use serde_json::Value;

const GATED: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [
  { id = "stage", name = "Staging" },
  { id = "prod", name = "Production", requires = ["stage"] },
]
"#;

async fn relctl(h: &Harness, args: &[&str]) -> (i32, String, String) {
    h.run(args).await
}

async fn ok(h: &Harness, args: &[&str]) -> String {
    let (code, out, err) = relctl(h, args).await;
    assert_eq!(code, 0, "relctl {args:?}: {err}");
    out
}

async fn json(h: &Harness, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(h, &all).await).unwrap()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

/// Two releases, each deployed to stage then prod through the promotion gate (which
/// first refuses prod), with the CLI as a person would: (r1, r2).
async fn through_stage_to_prod(h: &Harness) -> (String, String) {
    h.put_parameter("/bugfarm/images/latest/hatching", "r.example/hatching:v1")
        .await;
    h.put_parameter("/bugfarm/images/latest/feeding", "r.example/feeding:v1")
        .await;

    let r1 = ok(
        h,
        &[
            "release",
            "create",
            "--project",
            "bugfarm",
            "--description",
            "first",
        ],
    )
    .await;
    let r1 = r1.trim().to_owned();
    let r2 = ok(
        h,
        &[
            "release",
            "update",
            &r1,
            "--service",
            "hatching=r.example/hatching:v2",
        ],
    )
    .await;
    let r2 = r2.trim().to_owned();
    assert_ne!(r1, r2);

    // The promotion gate: prod needs a success in stage first.
    let (code, _, err) = relctl(h, &["deploy", &r2, "--env", "prod"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("has not succeeded in stage yet, which prod requires first"),
        "{err}"
    );
    for (release, env) in [(&r1, "stage"), (&r1, "prod"), (&r2, "stage"), (&r2, "prod")] {
        let (code, _, err) = relctl(
            h,
            &[
                "deploy",
                release,
                "--env",
                env,
                "--wait",
                "--timeout",
                "60s",
            ],
        )
        .await;
        assert_eq!(code, 0, "deploy {release} to {env}: {err}");
        assert!(err.contains("succeeded"), "{err}");
    }

    (r1, r2)
}

#[tokio::test]
async fn read_commands_print_their_documented_json_shapes() {
    let h = Harness::new(GATED).await;
    let controller = h.start_controller().await;
    let (r1, r2) = through_stage_to_prod(&h).await;
    let (r1, r2) = (r1.as_str(), r2.as_str());
    let listed = json(&h, &["release", "list", "--project", "bugfarm"]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["release_id"], r2, "newest first");
    assert_eq!(
        keys(&listed[0]),
        [
            "date_created",
            "deployed_to",
            "description",
            "images",
            "project_id",
            "release_id",
            "running_in"
        ]
    );
    assert_eq!(
        listed[0]["running_in"],
        serde_json::json!(["stage", "prod"])
    );
    assert_eq!(
        listed[0]["deployed_to"],
        serde_json::json!({ "stage": "succeeded", "prod": "succeeded" })
    );

    let shown = json(&h, &["release", "show", r1]).await;
    assert_eq!(
        keys(&shown),
        [
            "date_created",
            "deployments",
            "description",
            "images",
            "last_date_deployed",
            "project_id",
            "project_name",
            "release_id",
            "release_manifest",
            "requested_by"
        ]
    );
    assert_eq!(
        keys(&shown["deployments"][0]),
        [
            "date_created",
            "description",
            "environment",
            "requested_by",
            "status",
            "status_message",
            "status_updated_at"
        ]
    );

    let status = json(&h, &["status"]).await;
    assert_eq!(keys(&status), ["controller", "environments"]);
    assert_eq!(
        keys(&status["controller"]),
        ["held", "leader", "renewed_seconds_ago"]
    );
    let prod = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == "prod")
        .unwrap();
    assert_eq!(
        keys(prod),
        [
            "desired_release",
            "drift",
            "environment",
            "last_error",
            "message",
            "paused",
            "phase",
            "plan_drift",
            "project",
            "resync_error",
            "resync_error_at",
            "rolled_back",
            "running_release",
            "since",
            "status"
        ]
    );
    assert_eq!(prod["running_release"], r2);
    assert_eq!(prod["phase"], "converged");

    controller.stop().await;
}

#[tokio::test]
async fn diff_writes_nothing_and_rollback_deploys_the_previous_success() {
    let h = Harness::new(GATED).await;
    let controller = h.start_controller().await;
    let (r1, r2) = through_stage_to_prod(&h).await;
    let (r1, r2) = (r1.as_str(), r2.as_str());
    let diff = json(&h, &["diff", r1, "--env", "prod"]).await;
    assert_eq!(
        keys(&diff),
        [
            "changes",
            "environment",
            "project_id",
            "release_id",
            "unchanged"
        ]
    );
    assert_eq!(
        diff["changes"],
        serde_json::json!([{ "service": "hatching", "from": "r.example/hatching:v2", "to": "r.example/hatching:v1" }])
    );
    assert_eq!(diff["unchanged"], serde_json::json!(["feeding"]));
    let before = h.parameters("/bugfarm/images/prod").await;
    assert_eq!(
        before["/bugfarm/images/prod/hatching"].0, "r.example/hatching:v2",
        "diff wrote nothing"
    );

    let (code, rolled, err) = relctl(
        &h,
        &[
            "rollback",
            "--project",
            "bugfarm",
            "--env",
            "prod",
            "--wait",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("succeeded"),
        "--wait follows the rollback: {err}"
    );
    assert_eq!(rolled.trim(), r1);
    let release = h.release("relctl-releases", r1).await;
    let index = release.deployments.len() - 1;
    let entry = h.finished("relctl-releases", r1, index).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        entry.description.as_deref(),
        Some(format!("rollback of {r2} to release {r1}").as_str())
    );
    let after = h.parameters("/bugfarm/images/prod").await;
    assert_eq!(
        after["/bugfarm/images/prod/hatching"].0,
        "r.example/hatching:v1"
    );

    let history = json(&h, &["history", "--project", "bugfarm", "--env", "prod"]).await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(
        keys(&history[0]),
        [
            "date_created",
            "description",
            "environment",
            "kind",
            "release_id",
            "requested_by",
            "status",
            "status_message",
            "status_updated_at"
        ]
    );
    let order: Vec<&str> = history
        .iter()
        .map(|p| p["release_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [r1, r2, r1], "newest first");
    assert!(history.iter().all(|p| p["status"] == "succeeded"));
    controller.stop().await;
}

#[tokio::test]
async fn validate_lists_every_problem_in_configuration_and_manifests() {
    let h = Harness::without_tables(GATED).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{ "bugfarm": { "name": "Bug farm", "environments": [ { "id": "stage", "name": "Staging" }, { "id": "prod", "name": "Production" } ] } }"#).unwrap();
    let out = ok(&h, &["validate", "--manifest", good.to_str().unwrap()]).await;
    assert!(
        out.contains("configuration OK: 1 projects, 2 environments; 1 manifests OK"),
        "{out}"
    );

    let bad = dir.path().join(".wellcome_project");
    std::fs::write(&bad, r#"{ "bugfarm": { "environments": [ { "id": "stage", "name": "S" }, { "id": "stage", "name": "S" }, { "id": "qa", "name": "QA" } ] } }"#).unwrap();
    let (code, out, err) = relctl(&h, &["validate", "--manifest", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(out.contains("missing \"name\""), "{out}");
    assert!(out.contains("duplicate environment id \"stage\""), "{out}");
    assert!(
        out.contains(
            "environment \"qa\" is unknown to relctl's configuration (configured: stage, prod)"
        ),
        "{out}"
    );
    assert!(err.contains("3 problems found"), "{err}");
}

#[tokio::test]
async fn validate_lists_every_configuration_problem_on_its_own_line_with_file_and_line() {
    let h = Harness::without_tables(GATED).await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("relctl.toml");
    std::fs::write(
        &broken,
        "[controller]\nconcurrency = \"many\"\n\n[[projects]]\nid = \"bugfarm\"\nname = \"  \"\n\n[[projects.environments]]\nid = \"stage\"\nname = \"Staging\"\nactuator = { kind = \"nosuch\" }\n",
    )
    .unwrap();
    let path = broken.to_str().unwrap();
    let (code, out, err) = relctl(&h, &["validate", "--config", path]).await;
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("{path}:2: controller.concurrency: ")),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{path}:11: projects[0].environments[0].actuator.kind: unknown variant `nosuch`"
        )),
        "{out}"
    );
    assert!(err.contains("2 problems found"), "{err}");

    // Once the types are right, the checks beyond them all show, counted right.
    std::fs::write(
        &broken,
        "[[projects]]\nid = \"bugfarm\"\nname = \"  \"\n\n[[projects.environments]]\nid = \"a/b\"\nname = \"\"\n",
    )
    .unwrap();
    let (code, out, err) = relctl(&h, &["validate", "--config", path]).await;
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("projects[0].name: must not be blank"), "{out}");
    assert!(out.contains("projects[0].environments[0].id:"), "{out}");
    assert!(
        out.contains("projects[0].environments[0].name: must not be blank"),
        "{out}"
    );
    assert!(err.contains("3 problems found"), "{err}");

    // A syntax error names file, line and column.
    std::fs::write(
        &broken,
        "[[projects]]\nid = \"a\"\nx = { a = 1,\n b = 2 }\n",
    )
    .unwrap();
    let (_, out, err) = relctl(&h, &["validate", "--config", path]).await;
    assert!(out.starts_with(&format!("{path}:3:")), "{out}");
    assert!(err.contains("1 problem found"), "{err}");

    // No configuration at all is not "OK".
    let mut bare = h.relctl();
    bare.arg("validate").env_remove("RELCTL_CONFIG");
    let output = tokio::process::Command::from(bare).output().await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no configuration given"));
}

#[test]
fn completions_and_manual_pages_are_generated_from_the_commands_themselves() {
    let relctl = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
            .args(args)
            .output()
            .expect("relctl runs");
        assert!(output.status.success(), "relctl {args:?}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = relctl(&["completions", shell]);
        for command in ["deploy", "rollback", "unlock", "init", "history"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let page = relctl(&["man"]);
    assert!(page.contains(".TH relctl 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    relctl(&["man", "--dir", dir.path().to_str().unwrap()]);
    let deploy = std::fs::read_to_string(dir.path().join("relctl-deploy.1")).unwrap();
    assert!(
        deploy.contains(".TH relctl-deploy 1") && deploy.contains("\\-\\-wait"),
        "{deploy}"
    );
    assert!(
        !dir.path().join("relctl-runner.1").exists(),
        "no page for a hidden command"
    );
}
