//! A protected environment applied by Terraform approves the plan, not just the images:
//! relctl plans first (`terraform plan -out`), the deployment waits
//! `awaiting_approval` with the plan's summary, `relctl approve` shows that summary and
//! approves that plan by its digest, and the apply is `terraform apply` of exactly that
//! plan. A plan made stale by a change of state since fails, saying so, and applies
//! nothing. Real `terraform`, a module with one resource (`terraform_data`).

use std::{path::Path, process::Command};

use relctl::model::Status;
use serde_json::{Value, json};

use crate::support::{Harness, release, s3};

const TABLE: &str = "relctl-releases";

/// The offline fixture plus one resource, so a plan has something to add.
fn module() -> tempfile::TempDir {
    crate::support::terraform_module("release", "var.relctl_release_id")
}

async fn harness(dir: &Path, scratch: &Path) -> Harness {
    Harness::new(&format!(
        r#"
[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"
protected = true

[projects.environments.actuator]
kind = "terraform"
dir = "{}"
scratch = "{}"
timeout = "5m"
env = {{ CHECKPOINT_DISABLE = "1", TF_IN_AUTOMATION = "1" }}
"#,
        dir.display(),
        scratch.display()
    ))
    .await
}

fn outputs(dir: &Path) -> Value {
    let output = Command::new("terraform")
        .args(["output", "-json"])
        .current_dir(dir)
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_plan_is_approved_by_its_digest_and_exactly_it_is_applied() {
    let (dir, scratch) = (module(), tempfile::tempdir().unwrap());
    let h = harness(dir.path(), scratch.path()).await;
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    let (code, _, err) = h.run(&["deploy", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    let waiting = h
        .until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    assert!(
        waiting.contains("planned +1 ~0 -0: terraform_data.release")
            && waiting.contains("waiting for its approval (`relctl approve r1 --env prod`)"),
        "{waiting}"
    );
    assert!(
        !dir.path().join("terraform.tfstate").exists()
            || outputs(dir.path()).get("release_id").is_none(),
        "nothing applied before the approval"
    );
    assert!(
        h.parameters("/tre/images/prod").await.is_empty(),
        "nothing pinned before the approval"
    );

    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the plan: +1 ~0 -0: terraform_data.release")
            && err.contains("this plan exactly is applied"),
        "{err}"
    );
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains("applied the approved plan sha256:"),
        "{message}"
    );
    assert_eq!(outputs(dir.path())["release_id"]["value"], "r1");
    assert_eq!(
        h.parameters("/tre/images/prod").await.len(),
        1,
        "pinned once the plan was approved"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_plan_made_stale_before_its_approval_fails_and_applies_nothing() {
    let (dir, scratch) = (module(), tempfile::tempdir().unwrap());
    let h = harness(dir.path(), scratch.path()).await;
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    h.until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    // Someone applies by hand meanwhile: the state moves under the kept plan.
    let by_hand = Command::new("terraform")
        .args([
            "apply",
            "-auto-approve",
            "-input=false",
            "-var=relctl_release_id=by-hand",
            "-var=relctl_images={}",
            "-var=relctl_environment=prod",
        ])
        .current_dir(dir.path())
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        by_hand.status.success(),
        "{}",
        String::from_utf8_lossy(&by_hand.stderr)
    );

    assert_eq!(h.run(&["approve", "r1", "--env", "prod"]).await.0, 0);
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(message.to_lowercase().contains("stale"), "{message}");
    assert_eq!(
        outputs(dir.path())["release_id"]["value"],
        "by-hand",
        "the stale plan applied nothing"
    );
    controller.stop().await;
}

/// With a module from a source, the apply fetches exactly what the plan was made from:
/// a newer revision uploaded while the plan waits for its approval is not applied.
#[tokio::test]
async fn the_apply_fetches_the_revision_its_plan_was_made_from() {
    const MODULES: &str = "team-environments";
    const STATE: &str = "team-terraform-state";
    let scratch = tempfile::tempdir().unwrap();
    let moto = crate::support::Moto::start();
    let endpoint = moto.endpoint.clone();
    let backend = s3::backend_args(STATE, "tre/prod.tfstate");
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
protected = true

[projects.environments.actuator]
kind = "terraform"
source = {{ s3 = "s3://{MODULES}/envs/{{environment}}.zip", path = "infra" }}
scratch = "{}"
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
            scratch.path().display()
        ),
    )
    .await;
    let s3 = s3::client(&h);
    s3::bucket(&s3, MODULES, true).await;
    s3::bucket(&s3, STATE, false).await;
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform-remote/main.tf"),
    )
    .unwrap();
    let module = |marker: &str| {
        let main = format!(
            "{fixture}\nresource \"terraform_data\" \"release\" {{\n  input = var.relctl_release_id\n}}\noutput \"module\" {{\n  value = \"{marker}\"\n}}\n"
        );
        s3::zip(&[("infra/main.tf", &main)])
    };
    let planned = s3::put(&s3, MODULES, "envs/prod.zip", module("planned"))
        .await
        .expect("versioned");
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    h.until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    // A newer module arrives while the plan waits.
    let newer = s3::put(&s3, MODULES, "envs/prod.zip", module("newer"))
        .await
        .expect("versioned");
    assert_ne!(planned, newer);

    assert_eq!(h.run(&["approve", "r1", "--env", "prod"]).await.0, 0);
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains(&format!("version {planned}")) && !message.contains(&newer),
        "{message}"
    );
    let state = s3::json(&s3, STATE, "tre/prod.tfstate").await;
    assert_eq!(state["outputs"]["module"]["value"], "planned");
    controller.stop().await;
}

/// A kept plan lost before its apply (a restart on another host, a cleared scratch
/// directory) is made again for a new approval: nothing is pinned or applied on the
/// strength of the old approval.
#[tokio::test]
async fn a_plan_lost_before_its_apply_is_made_again_for_a_new_approval() {
    let (dir, scratch) = (module(), tempfile::tempdir().unwrap());
    let h = harness(dir.path(), scratch.path()).await;
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    let first = h
        .until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    std::fs::remove_dir_all(scratch.path().join("plans")).unwrap();
    assert_eq!(h.run(&["approve", "r1", "--env", "prod"]).await.0, 0);
    // A new plan, waiting for its own approval.
    let second = h
        .until_entry(TABLE, "r1", 0, |e| {
            e.status == Some(Status::AwaitingApproval)
                && e.status_message.as_deref().is_some_and(|m| m != first)
        })
        .await;
    assert!(
        h.parameters("/tre/images/prod").await.is_empty(),
        "nothing pinned on the lost plan's approval: {second:?}"
    );
    assert!(
        !dir.path().join("terraform.tfstate").exists()
            || outputs(dir.path()).get("release_id").is_none(),
        "nothing applied"
    );
    assert_eq!(h.run(&["approve", "r1", "--env", "prod"]).await.0, 0);
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(outputs(dir.path())["release_id"]["value"], "r1");
    controller.stop().await;
}
