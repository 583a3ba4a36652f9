//! The CLI for people: tables of short release ids (8 characters, as git shows
//! commits) and ages, `--output wide` for the whole ids and times, colour only where
//! asked for or on a terminal (never in a pipe, never with `--color never`), and a
//! unique prefix of a release id taken wherever a release id is — an ambiguous one
//! refused, naming the candidates.

use crate::support::{Harness, release};
use serde_json::json;

const TABLE: &str = "relctl-releases";
const ONE: &str = "3f9c2a1e-7b6d-4e5f-8a9b-0c1d2e3f4a51";
const TWO: &str = "3f9c2a1e-7b6d-4e5f-8a9b-0c1d2e3f4a52";
const OTHER: &str = "a1b2c3d4-9999-4e5f-8a9b-0c1d2e3f4a53";

#[tokio::test]
async fn tables_show_short_ids_and_ages_and_a_unique_prefix_stands_for_its_release() {
    let h = Harness::new(crate::support::BUGFARM).await;
    for id in [ONE, TWO, OTHER] {
        h.put_release(
            TABLE,
            release(
                id,
                "bugfarm",
                json!({ "app": format!("r.example/app:{id}") }),
            ),
        )
        .await;
    }
    let controller = h.start_controller().await;

    // A prefix only one id starts with is that release: deployed by it.
    let (code, out, err) = h
        .run(&["deploy", "a1b2c3d4", "--env", "stage", "--wait"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("succeeded"), "{out}{err}");
    let entry = h.finished(TABLE, OTHER, 0).await;
    assert_eq!(entry.environment.id, "stage");
    // One two ids start with is refused, naming both; nothing is written.
    let (code, _, err) = h.run(&["deploy", "3f9c2a1e", "--env", "stage"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("3f9c2a1e is the start of 2 release ids")
            && err.contains(ONE)
            && err.contains(TWO),
        "{err}"
    );
    assert!(h.release(TABLE, ONE).await.deployments.is_empty());
    let (code, out, err) = h
        .run(&["release", "show", "3f9c2a1e-7b6d-4e5f-8a9b-0c1d2e3f4a52"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(TWO), "{out}");
    let (code, _, err) = h.run(&["release", "show", "3f9"]).await;
    assert_eq!(code, 1, "a prefix shorter than 4 is not looked for: {err}");

    // The list: ids cut to 8 where that tells them apart, whole where it does not;
    // ages, not timestamps; no colour in a pipe.
    let (code, out, err) = h.run(&["release", "list", "--project", "bugfarm"]).await;
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("RELEASE") && header.contains("AGE") && header.contains("RUNNING IN"),
        "{out}"
    );
    let other = out
        .lines()
        .find(|l| l.starts_with("a1b2c3d4 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(other.contains(" ago") && other.contains("stage"), "{other}");
    assert!(!out.contains(OTHER), "the id is cut: {out}");
    assert!(
        out.contains(ONE) && out.contains(TWO),
        "ids alike are shown whole: {out}"
    );
    assert!(!out.contains('\u{1b}'), "no colour in a pipe: {out:?}");

    // Wide: whole ids and times.
    let (code, out, _) = h
        .run(&["release", "list", "--project", "bugfarm", "-o", "wide"])
        .await;
    assert_eq!(code, 0);
    assert!(out.contains(OTHER), "{out}");
    assert!(!out.contains(" ago"), "{out}");

    // History and status: short ids, ages, statuses; colour when asked for.
    h.until_state("bugfarm", "stage", |s| !s.history.is_empty())
        .await;
    let (code, out, err) = h
        .run(&[
            "history",
            "--project",
            "bugfarm",
            "--env",
            "stage",
            "--color",
            "always",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next().is_some_and(|l| l.starts_with("AGE")),
        "{out}"
    );
    assert!(out.contains("a1b2c3d4") && !out.contains(OTHER), "{out}");
    let succeeded = out
        .lines()
        .find(|l| l.contains("succeeded"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        succeeded.contains("\u{1b}[") && !out.lines().next().unwrap().contains('\u{1b}'),
        "the status is coloured, the header is not: {out:?}"
    );
    let (_, out, _) = h
        .run(&[
            "history",
            "--project",
            "bugfarm",
            "--env",
            "stage",
            "--color",
            "never",
        ])
        .await;
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let (code, out, err) = h.run(&["status", "--project", "bugfarm"]).await;
    assert_eq!(code, 0, "{err}");
    let stage = out
        .lines()
        .find(|l| l.starts_with("bugfarm") && l.contains("stage"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        stage.contains("a1b2c3d4") && !stage.contains(OTHER),
        "{stage}"
    );
    let (_, out, _) = h
        .run(&["status", "--project", "bugfarm", "-o", "wide"])
        .await;
    assert!(out.contains(OTHER), "{out}");
    controller.stop().await;
}

/// `relctl logs`: the deployment now, its last run's outcome and output, the recent
/// history; `status --watch` shows the table again each interval until Ctrl-C.
#[tokio::test]
async fn logs_show_the_last_runs_output_and_status_watch_repeats_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(&format!(
        r#"
[[projects]]
id = "infra"
name = "Infra"

[[projects.environments]]
id = "prod"
name = "Production"
actuator = {{ kind = "terraform", dir = {dir:?}, commands = [["sh", "-c", "echo checking the plan; echo the state is not ready >&2; exit 3"]], timeout = "5m" }}
"#,
        dir = dir.path().display().to_string()
    ))
    .await;
    h.put_release(
        TABLE,
        release("r1", "infra", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    let (code, _, err) = h
        .run(&["logs", "--project", "infra", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    h.request(TABLE, "r1", "prod", "2026-12-02T10:00:00.000000")
        .await;
    let failed = h.finished(TABLE, "r1", 0).await;
    assert_eq!(failed.status, Some(relctl::model::Status::Failed));
    h.until_state("infra", "prod", |s| !s.history.is_empty())
        .await;
    let (code, out, err) = h
        .run(&["logs", "--project", "infra", "--env", "prod"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("infra/prod: release r1, failed"), "{out}");
    let run = out.find("last run: ").unwrap_or_else(|| panic!("{out}"));
    assert!(
        out[run..].contains("failed") && out[run..].contains("the state is not ready"),
        "the run's output tail: {out}"
    );
    assert!(
        out.contains("recent:") && out.contains("r1  failed"),
        "{out}"
    );
    let (code, out, _) = h
        .run(&["logs", "--project", "infra", "--env", "prod", "-o", "json"])
        .await;
    assert_eq!(code, 0);
    let logs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(logs["run"]["state"], "failed", "{logs}");
    let (code, _, err) = h
        .run(&["logs", "--project", "infra", "--env", "nope"])
        .await;
    assert_eq!(code, 1, "an unknown environment: {err}");

    // --watch: the table again each interval, until Ctrl-C (SIGINT), then exit 0.
    let mut command = tokio::process::Command::from(h.relctl());
    command
        .args(["status", "--watch", "--interval", "200ms"])
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    crate::support::until(
        "status --watch shows the table twice",
        async || {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = [0u8; 4096];
            if let Ok(Ok(n)) = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                stdout.read(&mut buffer),
            )
            .await
            {
                seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
            seen.matches("controller: ").count()
        },
        |n| *n >= 2,
    )
    .await;
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a watch: {seen}");
    controller.stop().await;
}
