//! Drift by plan (`drift_check`): a deployed Terraform environment is planned again
//! every interval (`terraform plan -detailed-exitcode -lock=false`, in a runner), and
//! what the plan would change — here, the state moved by a hand-run `terraform apply`
//! of other images — is reported in the state, `relctl status`, the page and the
//! metrics, without anything being applied. Real `terraform`, one `terraform_data`.

use std::{path::Path, process::Command};

use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, get, metric, release};

const TABLE: &str = "relctl-releases";

fn module() -> tempfile::TempDir {
    crate::support::terraform_module("images", "var.relctl_images")
}

/// Someone applies by hand, outside relctl, with other images.
fn apply_by_hand(dir: &Path, images: &serde_json::Value) {
    let output = Command::new("terraform")
        .args(["apply", "-auto-approve", "-input=false", "-lock=false"])
        .current_dir(dir)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_VAR_relctl_release_id", "r1")
        .env("TF_VAR_relctl_environment", "prod")
        .env("TF_VAR_relctl_images", images.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_change_made_outside_relctl_is_found_by_the_periodic_plan_and_reported() {
    let dir = module();
    let h = Harness::new(&format!(
        r#"
[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"

[projects.environments.actuator]
kind = "terraform"
dir = "{}"
timeout = "5m"
drift_check = "5s"
env = {{ CHECKPOINT_DISABLE = "1", TF_IN_AUTOMATION = "1" }}
"#,
        dir.path().display()
    ))
    .await;
    let images = json!({ "app": "registry.example/app:1" });
    h.put_release(TABLE, release("r1", "tre", images.clone()))
        .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");

    // The first check, an interval after the deployment: nothing drifted.
    let state = h
        .until_state("tre", "prod", |s| {
            s.plan_drift
                .as_ref()
                .is_some_and(|p| p.checked_at.is_some())
        })
        .await;
    let first = state.plan_drift.unwrap();
    assert_eq!(first.found, None, "{first:?}");
    assert_eq!(first.error, None, "{first:?}");
    assert_eq!(first.release_id.as_deref(), Some("r1"));
    assert_eq!(
        metric(
            &controller,
            "relctl_drift_checks_total{kind=\"terraform\",outcome=\"clean\"}"
        )
        .await,
        1
    );

    // Changed by hand: the next check finds it, and says what would change.
    apply_by_hand(dir.path(), &json!({ "app": "registry.example/app:hotfix" }));
    let state = h
        .until_state("tre", "prod", |s| {
            s.plan_drift.as_ref().is_some_and(|p| p.found.is_some())
        })
        .await;
    let found = state.plan_drift.clone().unwrap().found.unwrap();
    assert!(
        found.contains("1 to change") && found.contains("terraform_data.images"),
        "{found}"
    );
    // Reported, not repaired: the deployment is as it was, nothing new was applied.
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded));
    assert_eq!(h.release(TABLE, "r1").await.deployments.len(), 1);
    assert_eq!(metric(&controller, "relctl_drifted_environments").await, 1);
    let (code, out, err) = h.run(&["status", "--project", "tre"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("drift by plan: 0 to add, 1 to change"),
        "{out}"
    );
    let (_, page) = get(controller.addr, "/").await;
    assert!(
        page.contains("drift by plan: 0 to add, 1 to change"),
        "{page}"
    );

    // Put back by hand: the next check is clean again.
    apply_by_hand(dir.path(), &images);
    h.until_state("tre", "prod", |s| {
        s.plan_drift.as_ref().is_some_and(|p| {
            p.found.is_none() && p.checked_at > state.plan_drift.as_ref().unwrap().checked_at
        })
    })
    .await;
    assert_eq!(metric(&controller, "relctl_drifted_environments").await, 0);
    controller.stop().await;
}
