//! Command (Terraform) runs under the faults that used to start two at once: a newer
//! intent mid-apply, SIGTERM of the controller, a leader that loses its lease while
//! paused, and an error right after the start. The "apply" is a real child process
//! that logs its pid and its start and stop times; no two runs of one environment may
//! ever overlap.

use std::{path::Path, time::Duration};

use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, process::Controller, release, until};

const TABLE: &str = "relctl-releases";

/// The apply: reads how long to run from the `seconds` file, then logs `start` (so a
/// test that sees the start may change the file for the next run only), runs, logs
/// `end`, or `stop` when interrupted.
const SCRIPT: &str = r#"#!/bin/sh
log="$RUN_DIR/log"
trap 'echo "stop $$ $(date +%s%N) int" >> "$log"; exit 130' INT
trap 'echo "stop $$ $(date +%s%N) term" >> "$log"; exit 143' TERM
ticks=$(( $(cat "$RUN_DIR/seconds") * 10 ))
echo "start $$ $(date +%s%N) $RELCTL_RELEASE_ID" >> "$log"
i=0
while [ "$i" -lt "$ticks" ]; do
  sleep 0.1 & wait $!
  i=$((i + 1))
done
echo "end $$ $(date +%s%N)" >> "$log"
"#;

fn workdir(seconds: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.sh"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("seconds"), seconds.to_string()).unwrap();
    dir
}

fn config(dir: &Path, lease: Option<(&str, &str)>) -> String {
    let lease = lease
        .map(|(d, r)| format!("[lease]\nduration = \"{d}\"\nrenew_every = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"{lease}
[[projects]]
id = "infra"
name = "Infrastructure"

[[projects.environments]]
id = "prod"
name = "Production"
actuator = {{ kind = "terraform", dir = {dir:?}, commands = [["sh", "run.sh"]], env = {{ RUN_DIR = {dir:?} }}, interrupt_grace = "2s", timeout = "10m" }}
"#,
        dir = dir.display().to_string()
    )
}

/// One run as the log tells it: pid, release, start and (if over) stop, in ns.
#[derive(Debug, Clone)]
struct Interval {
    pid: String,
    release: String,
    start: u128,
    end: Option<u128>,
    interrupted: bool,
}

fn runs(dir: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let mut found: Vec<Interval> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["start", pid, at, release] => found.push(Interval {
                pid: (*pid).into(),
                release: (*release).into(),
                start: at.parse().unwrap(),
                end: None,
                interrupted: false,
            }),
            [kind @ ("end" | "stop"), pid, at, ..] => {
                if let Some(run) = found.iter_mut().find(|r| r.pid == *pid) {
                    run.end = Some(at.parse().unwrap());
                    run.interrupted = *kind == "stop";
                }
            }
            _ => {}
        }
    }
    found
}

/// No run started before the previous one was over.
fn assert_never_overlapping(dir: &Path) -> Vec<Interval> {
    let mut all = runs(dir);
    all.sort_by_key(|r| r.start);
    for pair in all.windows(2) {
        let ended = pair[0].end.unwrap_or(u128::MAX);
        assert!(
            ended <= pair[1].start,
            "two runs at once: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    all
}

async fn until_runs(dir: &Path, what: &str, done: impl Fn(&[Interval]) -> bool) {
    until(
        what,
        async || {
            let runs = runs(dir);
            (
                runs.len(),
                runs.iter().filter(|r| r.end.is_some()).count(),
                done(&runs),
            )
        },
        |(_, _, done)| *done,
    )
    .await;
}

#[tokio::test]
async fn a_newer_intent_interrupts_the_running_apply_before_its_own_starts() {
    let dir = workdir(30);
    let h = Harness::new(&config(dir.path(), None)).await;
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(id, "infra", json!({ "app": format!("r.example/app:{id}") })),
        )
        .await;
    }
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until_runs(dir.path(), "r1's run started", |r| r.len() == 1).await;
    std::fs::write(dir.path().join("seconds"), "1").unwrap();
    h.request(TABLE, "r2", "prod", "2024-05-01T10:00:01.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Superseded)
    );
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].interrupted && all[0].release == "r1", "{all:?}");
    assert!(!all[1].interrupted && all[1].release == "r2", "{all:?}");
    controller.stop().await;
}

#[tokio::test]
async fn on_sigterm_a_run_is_interrupted_after_the_drain_and_the_next_leader_runs_it_again() {
    let dir = workdir(60);
    let h = Harness::new(&config(dir.path(), None)).await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let mut first = Controller::start(&h);
    first.wait_for("leading: watching streams", Duration::from_secs(60));
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until_runs(dir.path(), "the run started", |r| r.len() == 1).await;
    first.signal("TERM");
    assert!(
        first.exited(Duration::from_secs(60)).success(),
        "drains and exits 0"
    );
    let interrupted = runs(dir.path());
    assert!(
        interrupted[0].interrupted,
        "stopped cleanly, not killed: {interrupted:?}"
    );
    let entry = h.release(TABLE, "r1").await.deployments[0].clone();
    assert_ne!(entry.status, Some(Status::Succeeded));

    std::fs::write(dir.path().join("seconds"), "1").unwrap();
    let _second = Controller::start(&h);
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 2, "run again after the interruption: {all:?}");
}

#[tokio::test]
async fn a_leader_paused_mid_apply_loses_it_and_the_new_leader_waits_for_its_run_to_be_over() {
    let dir = workdir(60);
    let h = Harness::new(&config(dir.path(), Some(("3s", "1s")))).await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let mut a = Controller::start(&h);
    a.wait_for("leading: watching streams", Duration::from_secs(60));
    let mut b = Controller::start(&h);
    b.wait_for(
        "standby: another replica holds the lease",
        Duration::from_secs(60),
    );
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until_runs(dir.path(), "the run started", |r| r.len() == 1).await;
    std::fs::write(dir.path().join("seconds"), "1").unwrap();
    // Paused: no keepalives, no heartbeats, no lease renewal.
    a.signal("STOP");
    b.wait_for("leading: watching streams", Duration::from_secs(60));
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    a.signal("CONT");
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].interrupted,
        "the paused leader's run stopped by itself: {all:?}"
    );
}

#[tokio::test]
async fn an_error_right_after_the_start_does_not_start_a_second_run() {
    let dir = workdir(2);
    let h = Harness::new(&config(dir.path(), None)).await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let mut controller =
        Controller::start_with(&h, &[("RELCTL_FAILPOINT", "actuator-started:error")]);
    controller.wait_for("leading: watching streams", Duration::from_secs(60));
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.wait_for("failpoint actuator-started:error", Duration::from_secs(5));
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 1, "one run for one intent: {all:?}");
}

#[tokio::test]
async fn a_killed_controller_leaves_no_apply_running_and_the_next_leader_runs_it_again() {
    let dir = workdir(60);
    let h = Harness::new(&config(dir.path(), Some(("3s", "1s")))).await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let mut a = Controller::start(&h);
    a.wait_for("leading: watching streams", Duration::from_secs(60));
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until_runs(dir.path(), "the run started", |r| r.len() == 1).await;
    std::fs::write(dir.path().join("seconds"), "1").unwrap();
    // SIGKILL: no drain, no handler; the runner sees its keepalive pipe close.
    a.signal("KILL");
    until_runs(dir.path(), "the orphaned run stopped by itself", |r| {
        r[0].end.is_some()
    })
    .await;
    let mut b = Controller::start(&h);
    b.wait_for("leading: watching streams", Duration::from_secs(60));
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].interrupted,
        "interrupted (SIGINT), not left running: {all:?}"
    );
}

#[tokio::test]
async fn a_cancelled_apply_is_interrupted_recorded_cancelled_and_not_run_again() {
    let dir = workdir(300);
    let h = Harness::new(&config(dir.path(), None)).await;
    for id in ["r1", "r2"] {
        h.put_release(
            TABLE,
            release(id, "infra", json!({ "app": format!("r.example/app:{id}") })),
        )
        .await;
    }
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    until_runs(dir.path(), "r1's run started", |r| r.len() == 1).await;
    let (code, _, err) = h
        .run(&["cancel", "r1", "--env", "prod", "--reason", "it hangs"])
        .await;
    assert_eq!(code, 0, "{err}");
    let message = h.until_status(TABLE, "r1", 0, Status::Cancelled).await;
    assert!(
        message.contains(": it hangs; terraform run")
            && message.ends_with("was interrupted; what was applied so far stays"),
        "{message}"
    );
    until_runs(dir.path(), "r1's run stopped", |r| {
        r.first().is_some_and(|r| r.end.is_some())
    })
    .await;
    // The slot is free again: the next deployment runs, once, after it.
    std::fs::write(dir.path().join("seconds"), "0").unwrap();
    h.request(TABLE, "r2", "prod", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 2, "r1 never ran again: {all:?}");
    assert!(all[0].interrupted && all[0].release == "r1", "{all:?}");
    assert_eq!(
        h.release(TABLE, "r1").await.deployments[0].status,
        Some(Status::Cancelled)
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_deployment_past_its_deadline_fails_and_its_run_is_interrupted() {
    let dir = workdir(300);
    // Long enough for the pinning before the run on a loaded machine (2s was not, once).
    let h = Harness::new(&format!("{}deadline = \"8s\"\n", config(dir.path(), None))).await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let why = entry.status_message.unwrap_or_default();
    assert!(
        why.starts_with("deadline passed: not finished within 8s of going in progress at")
            && why.ends_with("(it was applying)"),
        "{why}"
    );
    until_runs(dir.path(), "the run stopped", |r| {
        r.first().is_some_and(|r| r.end.is_some())
    })
    .await;
    let all = assert_never_overlapping(dir.path());
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].interrupted, "{all:?}");
    controller.stop().await;
}
