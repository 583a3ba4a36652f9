//! The `relctl` binary itself: configuration errors, JSON logs with the reconcile span,
//! and a graceful drain on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::support::{BUGFARM, Harness, release};
use relctl::model::Status;
use serde_json::{Value, json};

#[test]
fn a_bad_configuration_names_the_offending_keys_and_exits_non_zero() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "[controller]\npoll_interval = \"10ms\"\n[[projects]]\nid = \"a/b\"\nname = \"x\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_relctl"))
        .arg("status")
        .env("RELCTL_CONFIG", file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("controller.poll_interval: must be at least 250ms"),
        "{stderr}"
    );
    assert!(stderr.contains("projects[0].id"), "{stderr}");
}

#[test]
fn an_environment_variable_overrides_the_file_and_is_validated_too() {
    let output = Command::new(env!("CARGO_BIN_EXE_relctl"))
        .arg("status")
        .env_remove("RELCTL_CONFIG")
        .env("RELCTL_CONTROLLER__CONCURRENCY", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("controller.concurrency: must be at least 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_controller_logs_json_with_its_span_and_drains_on_sigterm() {
    let h = Harness::new(BUGFARM).await;
    h.put_release(
        "relctl-releases",
        release(
            "r1",
            "bugfarm",
            json!({ "hatching": "registry.example/hatching:v1" }),
        ),
    )
    .await;
    let mut child = h
        .relctl()
        .arg("controller")
        .env("RELCTL_LOG_FORMAT", "json")
        .env("RELCTL_LOG__EMF", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |needle: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}; saw {seen:#?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            return serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        }
    };
    let serving = wait_for("serving /metrics");
    let addr = serving["addr"].as_str().unwrap().to_owned();
    wait_for("leading: watching streams");
    let probe = Command::new(env!("CARGO_BIN_EXE_relctl"))
        .args(["health", "--addr", &addr])
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");

    h.request(
        "relctl-releases",
        "r1",
        "stage",
        "2024-05-01T10:00:00.000000",
    )
    .await;
    let line = wait_for("deployment succeeded");
    assert_eq!(line["span"]["name"], "reconcile", "{line}");
    assert_eq!(line["span"]["project"], "bugfarm", "{line}");
    assert_eq!(line["span"]["environment"], "stage", "{line}");
    assert_eq!(line["span"]["release_id"], "r1", "{line}");
    assert_eq!(
        h.finished("relctl-releases", "r1", 0).await.status,
        Some(Status::Succeeded)
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for("controller stopped");
    // The drain is bounded by drain_timeout (5s here); this only guards a hang.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "controller did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "SIGTERM drains and exits 0: {status:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let emf: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        emf.iter().any(|doc| doc["environment"] == "stage"
            && doc["result"] == "done"
            && doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "relctl"),
        "one EMF line per reconcile on stdout: {stdout}"
    );
    let probe = Command::new(env!("CARGO_BIN_EXE_relctl"))
        .args(["health", "--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(
        probe.status.code(),
        Some(1),
        "nothing serves after shutdown"
    );
}

#[test]
fn configuration_can_come_whole_from_relctl_config_toml() {
    let output = Command::new(env!("CARGO_BIN_EXE_relctl"))
        .arg("status")
        .env_remove("RELCTL_CONFIG")
        .env("RELCTL_CONFIG_TOML", "[controller]\nconcurrency = 0\n")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("controller.concurrency: must be at least 1"),
        "{stderr}"
    );
}
