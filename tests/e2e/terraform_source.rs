//! The Terraform actuator with its module fetched from S3 (moto), a versioned zip per
//! environment: each run unpacks it into a fresh workspace, applies with its state in
//! an S3 backend (moto, with `use_lockfile`), records the object's VersionId in the
//! outcome, and leaves no workspace behind. A real `terraform` (scripts/test installs
//! one when PATH has none).

use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, release, s3};

const TABLE: &str = "relctl-releases";
const MODULES: &str = "team-environments";
const STATE: &str = "team-terraform-state";

/// The fixture module zipped under `infra/`, with `marker` as an extra output so two
/// revisions differ.
fn module(marker: &str) -> Vec<u8> {
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/terraform-remote/main.tf"),
    )
    .unwrap();
    let main = format!("{fixture}\noutput \"module\" {{\n  value = \"{marker}\"\n}}\n");
    s3::zip(&[("infra/main.tf", &main)])
}

async fn upload(s3: &aws_sdk_s3::Client, marker: &str) -> String {
    s3::put(s3, MODULES, "envs/prod.zip", module(marker))
        .await
        .expect("a versioned bucket gives a VersionId")
}

/// What `dir` holds (nothing, once every run's workspace is gone).
fn entries(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// The state Terraform keeps in the S3 backend, as JSON.
async fn state(s3: &aws_sdk_s3::Client) -> serde_json::Value {
    s3::json(s3, STATE, "tre/prod.tfstate").await
}

#[tokio::test]
async fn a_module_fetched_from_s3_is_applied_from_a_fresh_workspace_at_a_recorded_version() {
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

[projects.environments.actuator]
kind = "terraform"
source = {{ s3 = "s3://{MODULES}/envs/{{environment}}.zip", path = "infra" }}
scratch = "{}"
timeout = "5m"
commands = [
  ["terraform", "init", "-input=false", {backend}],
  ["terraform", "apply", "-auto-approve", "-input=false"],
]

# What a runner inherits on ECS (its task role) or a host: here, moto's.
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
    let first = upload(&s3, "one").await;
    let images = json!({ "parser": "registry.example/parser:1.4.0" });
    h.put_release(TABLE, release("r1", "tre", images.clone()))
        .await;
    h.put_release(TABLE, release("r2", "tre", images.clone()))
        .await;
    let controller = h.start_controller().await;

    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "2 commands succeeded on s3://{MODULES}/envs/prod.zip version {first}"
        )),
        "{message}"
    );
    let applied = state(&s3).await;
    assert_eq!(applied["outputs"]["release_id"]["value"], "r1");
    assert_eq!(applied["outputs"]["module"]["value"], "one");

    // A new revision of the module: the next run fetches it, and says which it was.
    let second = upload(&s3, "two").await;
    assert_ne!(first, second);
    let entry = h
        .deploy(TABLE, "r2", "prod", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(message.contains(&format!("version {second}")), "{message}");
    let applied = state(&s3).await;
    assert_eq!(applied["outputs"]["release_id"]["value"], "r2");
    assert_eq!(applied["outputs"]["module"]["value"], "two");

    // Nothing is left in the scratch directory: each workspace went with its run.
    let left = entries(scratch.path());
    assert!(left.is_empty(), "workspaces left behind: {left:?}");
    // The history keeps which revision each deployment applied.
    let env = h.env_state("tre", "prod").await;
    assert!(
        env.history
            .iter()
            .any(|e| e.release_id == "r1" && e.message.contains(&first)),
        "{:?}",
        env.history
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_source_that_cannot_be_fetched_fails_the_deployment_and_runs_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let moto = crate::support::Moto::start();
    let endpoint = moto.endpoint.clone();
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
actuator = {{ kind = "terraform", source = {{ s3 = "s3://{MODULES}/envs/{{environment}}.zip" }}, scratch = "{}", commands = [["sh", "-c", "touch ran"]], env = {{ AWS_ENDPOINT_URL = "{endpoint}", AWS_ACCESS_KEY_ID = "testing", AWS_SECRET_ACCESS_KEY = "testing" }} }}
"#,
            scratch.path().display()
        ),
    )
    .await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "tre",
            json!({ "parser": "registry.example/parser:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains("could not be fetched, so nothing ran")
            && message.contains(&format!("cannot fetch s3://{MODULES}/envs/prod.zip")),
        "{message}"
    );
    let left = entries(scratch.path());
    assert!(left.is_empty(), "nothing unpacked, nothing run: {left:?}");
    controller.stop().await;
}

/// `git` with `args` in `dir`, which must succeed; its stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_module_from_a_git_branch_per_environment_records_the_commit_it_applied() {
    // The National Archives' way: one branch per environment in one repository.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "--quiet"]);
    std::fs::create_dir(repo.path().join("infra")).unwrap();
    std::fs::write(repo.path().join("infra/VERSION"), "main\n").unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "--quiet", "-m", "main"]);
    git(repo.path(), &["checkout", "--quiet", "-b", "prod"]);
    std::fs::write(repo.path().join("infra/VERSION"), "prod-1\n").unwrap();
    git(repo.path(), &["commit", "--quiet", "-am", "prod"]);
    let commit = git(repo.path(), &["rev-parse", "prod"]);
    git(repo.path(), &["checkout", "--quiet", "main"]);

    let scratch = tempfile::tempdir().unwrap();
    let h = Harness::new(&format!(
        r#"
[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"
actuator = {{ kind = "terraform", source = {{ git = "file://{}", path = "infra" }}, scratch = "{}", commands = [["sh", "-c", "test \"$(cat VERSION)\" = prod-1 && echo applied the prod branch"]] }}
"#,
        repo.path().display(),
        scratch.path().display()
    ))
    .await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "tre",
            json!({ "parser": "registry.example/parser:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains(&format!("prod at commit {commit}")),
        "{message}"
    );
    let left = entries(scratch.path());
    assert!(left.is_empty(), "workspaces left behind: {left:?}");
    controller.stop().await;
}
