//! The Terraform actuator with a real `terraform` (scripts/test installs one when PATH
//! has none) against tests/fixtures/terraform: variables and outputs only, offline.

use std::{path::Path, process::Command};

use crate::support::{Harness, release};
use relctl::model::Status;
use serde_json::{Value, json};

const TABLE: &str = "relctl-releases";

/// A private copy of the fixture: Terraform keeps its state beside it.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform/main.tf");
    std::fs::copy(fixture, dir.path().join("main.tf")).unwrap();
    dir
}

async fn harness(dir: &Path, verify_plan: bool) -> Harness {
    Harness::new(&format!(
        r#"
[[projects]]
id = "tre"
name = "TRE"
environments = [
  {{ id = "prod", name = "Production", actuator = {{ kind = "terraform", dir = "{}", timeout = "5m", verify_plan = {verify_plan}, env = {{ CHECKPOINT_DISABLE = "1", TF_IN_AUTOMATION = "1" }} }} }},
]
"#,
        dir.display()
    ))
    .await
}

#[tokio::test]
async fn terraform_applies_the_release_and_the_plan_afterwards_is_clean() {
    let dir = workspace();
    let h = harness(dir.path(), true).await;
    let images =
        json!({ "parser": "registry.example/parser:1.4.0", "api": "registry.example/api:2.0.1" });
    h.put_release(TABLE, release("r1", "tre", images.clone()))
        .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(
        entry
            .status_message
            .as_deref()
            .unwrap()
            .ends_with("3 commands succeeded"),
        "{entry:?}"
    );

    let output = Command::new("terraform")
        .args(["output", "-json"])
        .current_dir(dir.path())
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outputs: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outputs["release_id"]["value"], "r1");
    assert_eq!(outputs["environment"]["value"], "prod");
    assert_eq!(outputs["images"]["value"], images);
    controller.stop().await;
}

#[tokio::test]
async fn a_failing_apply_fails_the_deployment_with_the_tail_of_its_output() {
    let dir = workspace();
    let h = harness(dir.path(), false).await;
    h.put_release(
        TABLE,
        release(
            "bad-1",
            "tre",
            json!({ "parser": "registry.example/parser:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "bad-1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap();
    assert!(
        message.contains("`terraform apply -auto-approve -input=false` exited with"),
        "{message}"
    );
    assert!(
        message.contains("Release ids starting with bad are refused"),
        "{message}"
    );
    let state = h
        .until_state("tre", "prod", |s| {
            s.activity.status() == Some(Status::Failed)
        })
        .await;
    assert_eq!(
        state.activity.attempts().map_or(0, |a| a.count),
        0,
        "a failed apply is not retried"
    );
    assert_eq!(state.activity.status(), Some(Status::Failed));
    controller.stop().await;
}
