//! Coming from weco-deploy: `relctl init --from .wellcome_project` reads weco-deploy
//! 5.x's YAML manifest and writes a configuration that loads, validates against that
//! manifest, and deploys — here a release to moto's ECR and ECS, the services found by
//! their `deployment:*` tags, the project's role assumed, as weco-deploy did it.

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, ecr, release};

const TABLE: &str = "wellcome-releases-catalogue";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/weco-deploy-5.wellcome_project")
}

fn relctl(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
        .args(args)
        .env_remove("RELCTL_CONFIG")
        .env_remove("RELCTL_CONFIG_TOML")
        .output()
        .expect("relctl runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn init_writes_a_configuration_that_validates_and_never_replaces_one_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relctl.toml");
    let (from, to) = (fixture(), out.display().to_string());
    let from = from.to_str().unwrap();
    let (code, _, err) = relctl(&["init", "--from", from, "--out", &to]);
    assert_eq!(code, 0, "{err}");
    for said in [
        "catalogue: releases in weco-deploy's table wellcome-releases-catalogue",
        "catalogue: images 123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag} (account 123456789012 from role_arn",
        "catalogue/prod: ECR tag env.prod, ECS cluster catalogue-prod (not in the manifest: --cluster sets it), as arn:aws:iam::123456789012:role/catalogue-ci",
    ] {
        assert!(err.contains(said), "{said}\n{err}");
    }
    let (code, stdout, err) = relctl(&["validate", "--config", &to, "--manifest", from]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("configuration OK: 1 projects, 2 environments; 1 manifests OK"),
        "{stdout}"
    );

    // Never over a file unasked; with --force, replaced whole.
    std::fs::write(&out, "# mine\n").unwrap();
    let (code, _, err) = relctl(&["init", "--from", from, "--out", &to]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("exists; nothing was written (--force replaces it)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# mine\n");
    let (code, _, err) = relctl(&["init", "--from", from, "--out", &to, "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("[[projects.environments]]")
    );
}

#[test]
fn a_manifest_with_problems_is_refused_naming_their_lines_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join(".wellcome_project");
    std::fs::write(
        &manifest,
        "catalogue:\n  name: Catalogue\n  role_arn: admin\n  aws_region_name: evil.example/x\n  environments:\n    - id: stage\n    - name: Production\n",
    )
    .unwrap();
    let out = dir.path().join("relctl.toml");
    let (code, _, err) = relctl(&[
        "init",
        "--from",
        manifest.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    for said in [
        "line 3: project \"catalogue\": \"role_arn\" must be an ARN string",
        "line 4: project \"catalogue\": \"aws_region_name\" must be an AWS Region",
        "line 6: project \"catalogue\": environment \"stage\" is missing \"name\"",
        "line 7: project \"catalogue\": environments[1] has no \"id\"",
    ] {
        assert!(err.contains(said), "{said}\n{err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!out.exists());
    // `validate --manifest` reads the YAML form too, with the same lines.
    let (code, stdout, _) = relctl(&["validate", "--manifest", manifest.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(".wellcome_project: line 3: project \"catalogue\""),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_configuration_init_writes_deploys_a_release_as_weco_deploy_did() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relctl.toml");
    let (code, _, err) = relctl(&[
        "init",
        "--from",
        fixture().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cluster",
        "apps",
    ]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&out).unwrap();
    // The harness has its own [aws] and tables: the projects are what init wrote.
    let projects = &written[written.find("[[projects]]").unwrap()..];
    let h = Harness::new(projects).await;
    let ecr_client = aws_sdk_ecr::Client::new(&h.sdk);
    let ecs = aws_sdk_ecs::Client::new(&h.sdk);
    ecs.create_cluster()
        .cluster_name("apps")
        .send()
        .await
        .unwrap();
    for service in ["search", "items"] {
        let repository = format!("uk.ac.wellcome/{service}");
        ecr_client
            .create_repository()
            .repository_name(&repository)
            .send()
            .await
            .unwrap();
        ecr::push(&ecr_client, &repository, "ref.abc123", service).await;
        let family = format!("{service}-stage");
        ecs.register_task_definition()
            .family(&family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(format!("{REGISTRY}/{repository}:env.stage"))
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        ecs.create_service()
            .cluster("apps")
            .service_name(&family)
            .task_definition(&family)
            .desired_count(0)
            .tags(tag("deployment:service", service))
            .tags(tag("deployment:env", "stage"))
            .send()
            .await
            .unwrap();
    }
    // weco-deploy's release shape: `ref.<sha>` tags, turned into URIs by the template.
    h.put_release(
        TABLE,
        release(
            "r1",
            "catalogue",
            json!({ "search": "ref.abc123", "items": "ref.abc123" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "stage", "2026-12-02T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    for service in ["search", "items"] {
        let repository = format!("uk.ac.wellcome/{service}");
        assert_eq!(
            ecr::tagged(&ecr_client, &repository, "env.stage").await,
            ecr::tagged(&ecr_client, &repository, "ref.abc123").await,
            "{service}'s env.stage tag moved to the release's image"
        );
    }
    controller.stop().await;
}
