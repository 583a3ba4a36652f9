//! The CodePipeline actuator against a wire-level stub of the CodePipeline JSON API
//! (moto does not run pipeline executions), with scripted executions: success, a
//! manual approval waiting, failure, stop, supersession, and a controller restart while
//! an execution is being followed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::support::{
    Harness,
    pipeline::{Pipeline, handle},
    release,
    stub::Stub,
};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

async fn setup(scripts: Vec<Vec<&'static str>>) -> (Harness, Stub, Arc<Mutex<Pipeline>>) {
    let state = Arc::new(Mutex::new(Pipeline {
        scripts: scripts.into(),
        ..Default::default()
    }));
    let stub = {
        let state = state.clone();
        Stub::start(Arc::new(move |op, body| handle(&state, op, body))).await
    };
    let h = Harness::new(&format!(
        r#"
[aws.endpoints]
codepipeline = "{}"
[[projects]]
id = "tre"
name = "TRE"
environments = [
  {{ id = "stage", name = "Staging", actuator = {{ kind = "codepipeline", pipeline = "terraform-stage", variables = {{ release_id = "{{release_id}}", env = "{{environment}}" }}, poll_interval = "100ms" }} }},
]
"#,
        stub.endpoint
    ))
    .await;
    for id in ["r1", "r2", "r3"] {
        h.put_release(
            TABLE,
            release(
                id,
                "tre",
                json!({ "parser": format!("registry.example/parser:{id}") }),
            ),
        )
        .await;
    }
    (h, stub, state)
}

#[tokio::test]
async fn a_pipeline_is_started_once_with_its_variables_and_followed_to_success() {
    let (h, stub, state) = setup(vec![vec!["InProgress", "InProgress", "Succeeded"]]).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(
        entry
            .status_message
            .as_deref()
            .unwrap()
            .ends_with("pipeline terraform-stage execution exec-1 succeeded"),
        "{entry:?}"
    );
    assert_eq!(stub.count("StartPipelineExecution"), 1);
    let variables = state.lock().unwrap().executions[0].3.clone();
    assert!(
        variables
            .as_array()
            .unwrap()
            .contains(&json!({ "name": "release_id", "value": "r1" }))
    );
    assert!(
        variables
            .as_array()
            .unwrap()
            .contains(&json!({ "name": "env", "value": "stage" }))
    );
    assert_eq!(
        h.parameters("/tre/images/stage").await["/tre/images/stage/parser"].0,
        "registry.example/parser:r1",
        "pinned before the pipeline ran"
    );
    let state = h
        .until_state("tre", "stage", |s| {
            s.activity.status() == Some(Status::Succeeded)
        })
        .await;
    assert!(state.activity.run().is_none(), "the run is over");
    controller.stop().await;
}

#[tokio::test]
async fn a_waiting_manual_approval_is_its_own_state_not_a_timeout() {
    let (h, _stub, state) = setup(vec![vec!["InProgress", "Approval", "Succeeded"]]).await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    let message = h
        .until_status(TABLE, "r1", 0, Status::AwaitingApproval)
        .await;
    assert_eq!(
        message,
        "pipeline terraform-stage: awaiting approval in stage Approve (action ManualApproval)"
    );
    h.until_state("tre", "stage", |s| {
        s.activity.status() == Some(Status::AwaitingApproval)
    })
    .await;

    state.lock().unwrap().release = true;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;
}

#[tokio::test]
async fn failed_stopped_and_superseded_executions_fail_the_deployment_with_the_reason() {
    let (h, stub, _) = setup(vec![
        vec!["InProgress", "Failed"],
        vec!["Stopped"],
        vec!["InProgress", "Superseded"],
    ])
    .await;
    let controller = h.start_controller().await;
    let expected = [
        ("r1", "execution exec-1 failed: the pipeline says Failed"),
        ("r2", "execution exec-2 stopped: the pipeline says Stopped"),
        (
            "r3",
            "execution exec-3 superseded: the pipeline says Superseded",
        ),
    ];
    for (i, (id, message)) in expected.into_iter().enumerate() {
        h.request(TABLE, id, "stage", &format!("2024-05-01T10:00:0{i}.000000"))
            .await;
        let entry = h.finished(TABLE, id, 0).await;
        assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
        assert!(
            entry.status_message.as_deref().unwrap().contains(message),
            "{entry:?}"
        );
    }
    assert_eq!(
        stub.count("StartPipelineExecution"),
        3,
        "one start per intent, no retry loop"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_restarted_controller_follows_the_recorded_execution_instead_of_starting_another() {
    let (h, stub, state) = setup(vec![vec!["Hold", "Succeeded"]]).await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    h.until_status(TABLE, "r1", 0, Status::InProgress).await;
    h.until_state("tre", "stage", |s| s.activity.run().is_some())
        .await;
    controller.stop().await;
    let recorded = h.env_state("tre", "stage").await;
    assert_eq!(recorded.activity.run().unwrap().handle, "exec-1");

    state.lock().unwrap().release = true;
    let controller = h.start_controller().await;
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        stub.count("StartPipelineExecution"),
        1,
        "followed, not started again"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_newer_intent_supersedes_one_whose_pipeline_is_still_running() {
    let (h, stub, state) = setup(vec![
        vec!["Hold", "Succeeded"],
        vec!["InProgress", "Succeeded"],
    ])
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    h.until_status(TABLE, "r1", 0, Status::InProgress).await;
    while stub.count("StartPipelineExecution") == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.request(TABLE, "r2", "stage", "2024-05-01T11:00:00.000000")
        .await;

    let older = h.finished(TABLE, "r1", 0).await;
    assert_eq!(older.status, Some(Status::Superseded), "{older:?}");
    let newer = h.finished(TABLE, "r2", 0).await;
    assert_eq!(newer.status, Some(Status::Succeeded), "{newer:?}");
    assert_eq!(
        stub.count("StartPipelineExecution"),
        2,
        "one execution per intent"
    );
    assert_eq!(state.lock().unwrap().executions[1].0, "exec-2");
    controller.stop().await;
}

#[tokio::test]
async fn a_cancelled_deployment_stops_its_pipeline_execution_and_is_recorded_cancelled() {
    let (h, stub, state) = setup(vec![vec!["Hold", "Succeeded"]]).await;
    let controller = h.start_controller().await;
    let (code, _, err) = h
        .run(&["cancel", "r1", "--env", "stage", "--reason", "wrong build"])
        .await;
    assert_eq!(code, 1, "nothing to cancel yet: {err}");
    assert!(err.contains("nothing to cancel"), "{err}");
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    h.until_status(TABLE, "r1", 0, Status::InProgress).await;
    while stub.count("StartPipelineExecution") == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Followed, it says which stage runs (what `deploy --wait` shows).
    h.until_entry(TABLE, "r1", 0, |e| {
        e.status_message
            .as_deref()
            .is_some_and(|m| m.ends_with("execution exec-1 in progress: stage Apply"))
    })
    .await;
    let (code, _, err) = h
        .run(&["cancel", "r1", "--env", "stage", "--reason", "wrong build"])
        .await;
    assert_eq!(code, 0, "{err}");
    let message = h.until_status(TABLE, "r1", 0, Status::Cancelled).await;
    assert!(
        message.starts_with("cancelled by ")
            && message
                .contains(": wrong build; pipeline terraform-stage execution exec-1 was stopped"),
        "{message}"
    );
    let stopped = state.lock().unwrap().stopped.clone();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].0, "exec-1");
    assert!(!stopped[0].1, "not abandoned: actions in progress finish");
    assert!(stopped[0].2.contains("wrong build"), "{stopped:?}");
    let state = h
        .until_state("tre", "stage", |s| s.activity.phase() == Some("cancelled"))
        .await;
    assert_eq!(state.history[0].status, Status::Cancelled);
    assert_eq!(
        stub.count("StartPipelineExecution"),
        1,
        "never started again"
    );
    // A finished deployment cannot be cancelled.
    let (code, _, err) = h.run(&["cancel", "r1", "--env", "stage"]).await;
    assert_eq!(code, 1, "{err}");
    controller.stop().await;
}
