//! The CLI against moto, with the controller running in-process: set-up, creating a
//! release, deploying and waiting, and the refusals with their exit codes.

use crate::support::{BUGFARM, Harness};
use relctl::model::Status;

async fn relctl(h: &Harness, args: &[&str]) -> (i32, String, String) {
    h.run(args).await
}

#[tokio::test]
async fn setup_then_create_then_deploy_and_wait() {
    let h = Harness::without_tables(BUGFARM).await;
    let (code, out, err) = relctl(&h, &["setup"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created table relctl-releases"), "{out}");
    let (code, out, _) = relctl(&h, &["setup"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("table relctl-releases is ready; nothing changed"),
        "{out}"
    );

    h.put_parameter(
        "/bugfarm/images/latest/hatching",
        "registry.example/hatching:v7",
    )
    .await;
    let (code, out, err) = relctl(&h, &["release", "create", "--project", "bugfarm"]).await;
    assert_eq!(code, 0, "{err}");
    let release_id = out.trim().to_owned();
    let release = h.release("relctl-releases", &release_id).await;
    assert_eq!(
        release.images["hatching"].as_deref(),
        Some("registry.example/hatching:v7")
    );
    assert!(release.requested_by.is_some());

    let (code, again, err) = relctl(&h, &["release", "create", "--project", "bugfarm"]).await;
    assert_eq!(code, 0);
    assert_eq!(again.trim(), release_id, "identical images: no duplicate");
    assert!(err.contains("nothing to do: release"), "{err}");

    let controller = h.start_controller().await;
    let deploy = [
        "deploy",
        &release_id,
        "--env",
        "stage",
        "--wait",
        "--timeout",
        "60s",
    ];
    let (code, _, err) = relctl(&h, &deploy).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("succeeded [converged]: pinned 1 of 1 images"),
        "{err}"
    );
    let entry = h.finished("relctl-releases", &release_id, 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded));
    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        "registry.example/hatching:v7"
    );
    controller.stop().await;
}

#[tokio::test]
async fn refusals_say_what_to_do_and_exit_one_without_writing() {
    let h = Harness::new(BUGFARM).await;
    let (code, _, err) = relctl(&h, &["deploy", "no-such-release", "--env", "stage"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("release no-such-release was not found (as a whole id, or as the start of one among each project's 5000 newest); `relctl release list"),
        "{err}"
    );

    let create = [
        "release",
        "create",
        "--project",
        "nope",
        "--service",
        "a=r/a:1",
    ];
    let (code, _, err) = relctl(&h, &create).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("project \"nope\" is not configured; configured projects: bugfarm"),
        "{err}"
    );

    let bad = [
        "release",
        "create",
        "--project",
        "bugfarm",
        "--service",
        "a=not an image",
    ];
    let (code, _, err) = relctl(&h, &bad).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("image URI \"not an image\" contains ' '"),
        "{err}"
    );

    let good = [
        "release",
        "create",
        "--project",
        "bugfarm",
        "--service",
        "a=r/a:1",
    ];
    let (code, out, _) = relctl(&h, &good).await;
    assert_eq!(code, 0);
    let (code, _, err) = relctl(&h, &["deploy", out.trim(), "--env", "qa"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("configured environments: stage, prod"),
        "{err}"
    );
    let release = h.release("relctl-releases", out.trim()).await;
    assert!(release.deployments.is_empty(), "nothing written");

    let (code, _, _) = relctl(&h, &["deploy"]).await;
    assert_eq!(code, 2, "usage error");
}
