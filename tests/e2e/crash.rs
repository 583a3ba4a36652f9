//! Crash safety: the controller (the real binary) dies abruptly at each step of a
//! deployment in turn (RELCTL_FAILPOINT, an abort: no drain, no lease release), is
//! started again, and the deployment still ends `succeeded`, with exactly one pipeline
//! execution for the intent and nothing left in progress.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::support::{
    Harness,
    pipeline::{Pipeline, handle},
    process::Controller,
    release,
    stub::Stub,
};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

async fn crash_at(step: &str) {
    let state = Arc::new(Mutex::new(Pipeline::default()));
    state
        .lock()
        .unwrap()
        .scripts
        .push_back(vec!["InProgress", "Succeeded"]);
    let stub = {
        let state = state.clone();
        Stub::start(Arc::new(move |op, body| handle(&state, op, body))).await
    };
    let h = Harness::new(&format!(
        r#"
[aws.endpoints]
codepipeline = "{}"
[lease]
duration = "2s"
renew_every = "500ms"
[[projects]]
id = "tre"
name = "TRE"
environments = [ {{ id = "stage", name = "S", actuator = {{ kind = "codepipeline", pipeline = "p", poll_interval = "200ms" }} }} ]
"#,
        stub.endpoint
    ))
    .await;
    h.put_release(
        TABLE,
        release("r1", "tre", json!({ "parser": "r.example/parser:1" })),
    )
    .await;

    let mut doomed = Controller::start_with(&h, &[("RELCTL_FAILPOINT", step)]);
    doomed.wait_for("leading: watching streams", Duration::from_secs(30));
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    doomed.wait_for(&format!("failpoint {step}"), Duration::from_secs(30));
    let died = doomed.exited(Duration::from_secs(30));
    assert!(!died.success(), "{step}: died abruptly");

    let mut survivor = Controller::start(&h);
    survivor.wait_for("leading: watching streams", Duration::from_secs(30));
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(
        entry.status,
        Some(Status::Succeeded),
        "after a crash at {step}: {entry:?}"
    );
    assert_eq!(
        state.lock().unwrap().executions.len(),
        1,
        "{step}: one execution per intent"
    );
    // The state item follows the entry by one write.
    let env = h
        .until_state("tre", "stage", |s| {
            s.activity.status() == Some(Status::Succeeded)
        })
        .await;
    assert_eq!(env.observed.unwrap().release_id, "r1");
}

// Multi-threaded: the stub must answer while the test blocks reading the child's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_intent_is_taken_in() {
    crash_at("intake-advanced").await;
}

// Multi-threaded: the stub must answer while the test blocks reading the child's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_pinning() {
    crash_at("pinned").await;
}

// Multi-threaded: the stub must answer while the test blocks reading the child's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_pipeline_started_but_before_it_was_recorded() {
    crash_at("actuator-started").await;
}

// Multi-threaded: the stub must answer while the test blocks reading the child's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_status_was_written_but_before_the_state() {
    crash_at("status-succeeded").await;
}
