//! Terraform runs as ECS tasks (`runner = { kind = "ecs_task" }`), against the runner
//! stub (support/ecs_runner.rs: RunTask starts the real `relctl runner` as a process,
//! its output goes to moto's CloudWatch Logs) and moto's S3 for the module: one task
//! per run under retries and a change of leader, the outcome and the source revision
//! recorded, a failing command's output tail in the status, and a superseded run's
//! task stopped before the next run's starts.

use relctl::model::Status;
use serde_json::json;

use crate::support::{
    Harness, Moto,
    ecs_runner::{LOG_GROUP, Runner},
    release, s3, until,
};

const TABLE: &str = "relctl-releases";
const MODULES: &str = "team-environments";

struct World {
    h: Harness,
    runner: Runner,
    version: String,
    _scratch: tempfile::TempDir,
}

/// The environment `prod` runs `script` (sh) in a runner task, in the module fetched
/// from S3 (`infra/VERSION` holds "v1").
async fn world(script: &str) -> World {
    let scratch = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let endpoint = moto.endpoint.clone();
    let runner = Runner::start(&endpoint).await;
    let h = Harness::with_moto(
        moto,
        &format!(
            r#"
[aws.endpoints]
ecs = "{stub}"

[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"

[projects.environments.actuator]
kind = "terraform"
source = {{ s3 = "s3://{MODULES}/envs/{{environment}}.zip", path = "infra" }}
scratch = "{scratch}"
commands = [["sh", "-c", {script:?}]]
interrupt_grace = "2s"
runner = {{ kind = "ecs_task", cluster = "runners", task_definition = "relctl-runner", subnets = ["subnet-1"], log_group = "{LOG_GROUP}", pass_roles = ["arn:aws:iam::123456789012:role/relctl-runner"], poll_interval = "200ms" }}

# What the task role gives a real runner; here, moto's.
[projects.environments.actuator.env]
AWS_ENDPOINT_URL = "{endpoint}"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"
"#,
            stub = runner.stub.endpoint,
            scratch = scratch.path().display(),
        ),
    )
    .await;
    let s3 = s3::client(&h);
    s3::bucket(&s3, MODULES, true).await;
    let version = s3::put(
        &s3,
        MODULES,
        "envs/prod.zip",
        s3::zip(&[("infra/VERSION", "v1\n")]),
    )
    .await
    .expect("versioned");
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(
                id,
                "tre",
                json!({ "api": format!("registry.example/api:{id}") }),
            ),
        )
        .await;
    }
    World {
        h,
        runner,
        version,
        _scratch: scratch,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_one_ecs_task_that_a_new_leader_follows_and_its_revision_is_recorded() {
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    // The run waits for the test, so the leader can change under it.
    let w = world(&format!(
        "while [ ! -e {} ]; do sleep 0.1; done; echo applied $RELCTL_RELEASE_ID with module $(cat VERSION)",
        go.display()
    ))
    .await;
    let first = w.h.start_controller().await;
    w.h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until(
        "the runner task is running",
        async || {
            w.runner
                .tasks()
                .iter()
                .filter(|t| t.status == "RUNNING")
                .count()
        },
        |n| *n == 1,
    )
    .await;
    // The leader goes (a rolling deploy of relctl): the task is left running.
    first.stop().await;
    assert_eq!(
        w.runner.tasks()[0].status,
        "RUNNING",
        "the apply outlives its controller"
    );

    let second = w.h.start_controller().await;
    std::fs::write(&go, "").unwrap();
    let entry = w.h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "1 commands succeeded on s3://{MODULES}/envs/prod.zip version {} (ECS task task1)",
            w.version
        )),
        "{message}"
    );
    let tasks = w.runner.tasks();
    assert_eq!(
        tasks.len(),
        1,
        "one task for the run, across both leaders: {tasks:?}"
    );
    let task = &tasks[0];
    assert_eq!(task.exit_code, Some(0));
    let env = |name: &str| {
        task.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env("RELCTL_RELEASE_ID").as_deref(), Some("r1"));
    assert_eq!(env("TF_VAR_relctl_environment").as_deref(), Some("prod"));
    assert!(env("RELCTL_RUNNER_JOB").is_some_and(|j| j.contains("team-environments")));
    assert!(
        task.started_by.starts_with("relctl-"),
        "{}",
        task.started_by
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_fails_the_deployment_with_the_tail_of_the_task_output() {
    let w = world("echo planning; echo 'Error: the bucket is gone' >&2; exit 4").await;
    let controller = w.h.start_controller().await;
    w.h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    let entry = w.h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains("exit status 4")
            && message.contains("Error: the bucket is gone")
            && message.contains(&w.version),
        "{message}"
    );
    assert_eq!(w.runner.tasks().len(), 1, "no retry of a failed apply");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_run_s_task_is_stopped_before_the_next_run_s_task_starts() {
    // r1's apply hangs, and takes 2 s to stop once interrupted (as Terraform does to
    // release its lock); r2's is quick.
    let w = world(
        "if [ \"$RELCTL_RELEASE_ID\" = r1 ]; then trap 'echo stopping; sleep 2; exit 1' INT TERM; sleep 300 & wait; fi; echo done",
    )
    .await;
    let controller = w.h.start_controller().await;
    w.h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until(
        "r1's task is running",
        async || w.runner.tasks().len(),
        |n| *n == 1,
    )
    .await;
    w.h.request(TABLE, "r2", "prod", "2024-05-01T11:00:00.000000")
        .await;
    let newer = w.h.finished(TABLE, "r2", 0).await;
    assert_eq!(newer.status, Some(Status::Succeeded), "{newer:?}");
    let older = w.h.finished(TABLE, "r1", 0).await;
    assert_eq!(older.status, Some(Status::Superseded), "{older:?}");
    let tasks = w.runner.tasks();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let (first, second) = (&tasks[0], &tasks[1]);
    assert!(
        first
            .stop_reason
            .as_deref()
            .is_some_and(|r| r.contains("superseded")),
        "{first:?}"
    );
    let stopped = first.stopped.expect("r1's task stopped");
    assert!(
        stopped <= second.started,
        "r2's task started only after r1's stopped: {tasks:?}"
    );
    controller.stop().await;
}

/// A protected environment whose Terraform runs in ECS tasks: a plan task (its plan
/// kept in S3, as tasks share no disk), the deployment waiting for that plan's
/// approval, then an apply task of exactly that plan. Real Terraform, its state in an S3
/// backend on moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_environment_plans_in_one_task_and_applies_the_approved_plan_in_another() {
    protected(false).await;
}

/// The apply task cannot be started (ECS fails RunTask): the run does not wedge on its
/// claim; the plan is made again, for a new approval, and that one is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_task_that_cannot_start_plans_again_for_a_new_approval() {
    protected(true).await;
}

const STATE: &str = "team-terraform-state";
const PLANS: &str = "team-plans";

/// Real Terraform in runner tasks, its state in moto's S3, the module (the remote
/// fixture plus one `terraform_data` of the release id) from S3; `environment` is more
/// of the environment's table (`protected = true`), `actuator` more of its actuator's.
struct Remote {
    h: Harness,
    runner: Runner,
    s3: aws_sdk_s3::Client,
    _scratch: tempfile::TempDir,
}

async fn remote(environment: &str, actuator: &str) -> Remote {
    let scratch = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let endpoint = moto.endpoint.clone();
    let runner = Runner::start(&endpoint).await;
    let backend = s3::backend_args(STATE, "tre/prod.tfstate");
    let h = Harness::with_moto(
        moto,
        &format!(
            r#"
[aws.endpoints]
ecs = "{stub}"

[[projects]]
id = "tre"
name = "TRE"

[[projects.environments]]
id = "prod"
name = "Production"
{environment}

[projects.environments.actuator]
kind = "terraform"
source = {{ s3 = "s3://{MODULES}/envs/{{environment}}.zip", path = "infra" }}
timeout = "5m"
{actuator}
commands = [
  ["terraform", "init", "-input=false", {backend}],
  ["terraform", "apply", "-auto-approve", "-input=false"],
]
runner = {{ kind = "ecs_task", cluster = "runners", task_definition = "relctl-runner", subnets = ["subnet-1"], log_group = "{LOG_GROUP}", pass_roles = ["arn:aws:iam::123456789012:role/relctl-runner"], scratch = "{scratch}", plans = "s3://{PLANS}/relctl", poll_interval = "200ms" }}

[projects.environments.actuator.env]
AWS_ENDPOINT_URL = "{endpoint}"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"
CHECKPOINT_DISABLE = "1"
TF_IN_AUTOMATION = "1"
"#,
            stub = runner.stub.endpoint,
            scratch = scratch.path().display(),
        ),
    )
    .await;
    let s3 = s3::client(&h);
    s3::bucket(&s3, MODULES, true).await;
    s3::bucket(&s3, STATE, false).await;
    s3::bucket(&s3, PLANS, false).await;
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/terraform-remote/main.tf"),
    )
    .unwrap();
    let main = format!(
        "{fixture}\nresource \"terraform_data\" \"release\" {{\n  input = var.relctl_release_id\n}}\n"
    );
    s3::put(
        &s3,
        MODULES,
        "envs/prod.zip",
        s3::zip(&[("infra/main.tf", &main)]),
    )
    .await
    .expect("versioned");
    Remote {
        h,
        runner,
        s3,
        _scratch: scratch,
    }
}

async fn protected(apply_fails_to_start: bool) {
    let Remote {
        h,
        runner,
        s3,
        _scratch,
    } = remote("protected = true", "").await;

    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    assert_eq!(h.run(&["deploy", "r1", "--env", "prod"]).await.0, 0);
    let waiting = h
        .until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    assert!(
        waiting.contains("planned +1 ~0 -0: terraform_data.release"),
        "{waiting}"
    );
    assert_eq!(runner.tasks().len(), 1, "one plan task");
    let kept = s3.list_objects_v2().bucket(PLANS).send().await.unwrap();
    assert_eq!(kept.key_count(), Some(1), "the plan is kept in S3");
    assert!(
        h.parameters("/tre/images/prod").await.is_empty(),
        "nothing pinned yet"
    );

    if apply_fails_to_start {
        // Each of relctl's four attempts at the apply's RunTask fails.
        runner.state.lock().unwrap().fail_run_task = 4;
    }
    let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the plan: +1 ~0 -0: terraform_data.release"),
        "{err}"
    );
    if apply_fails_to_start {
        // A new plan waits for a new approval; nothing applied or pinned meanwhile.
        h.until_entry(TABLE, "r1", 0, |e| {
            e.status == Some(Status::AwaitingApproval)
                && e.status_message.as_deref().is_some_and(|m| m != waiting)
        })
        .await;
        assert_eq!(runner.tasks().len(), 2, "two plan tasks, no apply task");
        assert!(h.parameters("/tre/images/prod").await.len() <= 1);
        let (code, _, err) = h.run(&["approve", "r1", "--env", "prod"]).await;
        assert_eq!(code, 0, "{err}");
    }
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(message.contains("applied the approved plan"), "{message}");
    let tasks = runner.tasks();
    let expected = if apply_fails_to_start { 3 } else { 2 };
    assert_eq!(
        tasks.len(),
        expected,
        "plan task(s), then the apply task: {tasks:?}"
    );
    let (plan, apply) = (&tasks[expected - 2], &tasks[expected - 1]);
    assert!(
        plan.stopped.is_some_and(|s| s <= apply.started),
        "the apply started after the plan task stopped"
    );
    let state = s3::json(&s3, STATE, "tre/prod.tfstate").await;
    assert_eq!(state["outputs"]["release_id"]["value"], "r1");
    let kept = s3.list_objects_v2().bucket(PLANS).send().await.unwrap();
    assert_eq!(kept.key_count(), Some(0), "the plan was taken by its apply");
    assert_eq!(h.parameters("/tre/images/prod").await.len(), 1);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_by_a_plan_in_a_runner_task_of_its_own() {
    let Remote {
        h,
        runner,
        s3,
        _scratch,
    } = remote("", "drift_check = \"5s\"").await;
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "api": "registry.example/api:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let clean = h
        .until_state("tre", "prod", |s| {
            s.plan_drift
                .as_ref()
                .is_some_and(|p| p.checked_at.is_some())
        })
        .await
        .plan_drift
        .unwrap();
    assert_eq!((clean.found, clean.error), (None, None));
    assert_eq!(
        runner.tasks().len(),
        2,
        "the apply's task, then the check's"
    );

    // The state is changed outside relctl (as a hand-run apply of another release
    // would leave it).
    let mut state = s3::json(&s3, STATE, "tre/prod.tfstate").await;
    state["serial"] = json!(state["serial"].as_u64().unwrap() + 1);
    state["resources"][0]["instances"][0]["attributes"]["input"]["value"] = json!("r0");
    s3.put_object()
        .bucket(STATE)
        .key("tre/prod.tfstate")
        .body(state.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let found = h
        .until_state("tre", "prod", |s| {
            s.plan_drift.as_ref().is_some_and(|p| p.found.is_some())
        })
        .await
        .plan_drift
        .unwrap()
        .found
        .unwrap();
    assert!(
        found.contains("1 to change") && found.contains("terraform_data.release"),
        "{found}"
    );
    // Every check was a task of its own that ran to its end; nothing was applied.
    let tasks = runner.tasks();
    assert!(tasks.len() >= 3, "{tasks:?}");
    let after = s3::json(&s3, STATE, "tre/prod.tfstate").await;
    assert_eq!(
        after["resources"][0]["instances"][0]["attributes"]["input"]["value"], "r0",
        "reported, not repaired"
    );
    controller.stop().await;
}
