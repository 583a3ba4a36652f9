//! People's screens and logs show data, never control: record values with ESC, BEL,
//! CR, LF, C1 and bidi characters, written with the raw DynamoDB API, reach every CLI
//! table, the status page and the text log escaped. Assertions are on bytes.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::mpsc,
    time::Duration,
};

use relctl::model::Status;
use serde_json::json;

use crate::support::{BUGFARM, Harness, get, release};

const TABLE: &str = "relctl-releases";

/// Retitles the terminal, clears it, forges a row, a C1 CSI and a right-to-left override.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nFORGED ROW\u{9b}31m\u{202e}gnp.exe";

/// `out` holds nothing a terminal would obey, and no line a record forged.
fn assert_inert(what: &str, out: &str) {
    for (bad, name) in [
        ("\u{1b}", "ESC"),
        ("\u{7}", "BEL"),
        ("\r", "CR"),
        ("\u{9b}", "C1 CSI"),
        ("\u{202e}", "RLO"),
    ] {
        assert!(!out.contains(bad), "{what} holds a raw {name}: {out:?}");
    }
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "{what} has a forged line: {out}"
    );
}

#[tokio::test]
async fn cli_tables_show_record_values_escaped() {
    let h = Harness::new(BUGFARM).await;
    let mut item = release("hostile", "bugfarm", json!({ "app": "r.example/app:1" }));
    item["description"] = json!(HOSTILE);
    item["last_date_deployed"] = json!("2024-05-01T10:00:00.000000");
    item["deployments"] = json!([{
        "date_created": "2024-05-01T10:00:00.000000",
        "environment": { "id": "stage", "name": "Staging" },
        "requested_by": { "id": HOSTILE, "name": HOSTILE },
        "status": "failed",
        "status_message": HOSTILE,
    }]);
    h.put_release(TABLE, item).await;
    let mut other = release(
        &format!("id{HOSTILE}"),
        "bugfarm",
        json!({ "app": "r.example/app:2" }),
    );
    other["description"] = json!("plain");
    h.put_release(TABLE, other).await;

    for args in [
        &["release", "list", "--project", "bugfarm"][..],
        &["release", "show", "hostile"],
        &["history", "--project", "bugfarm", "--env", "stage"],
    ] {
        let (code, stdout, stderr) = h.run(args).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_inert(&format!("{args:?}"), &stdout);
        assert_inert(&format!("{args:?} stderr"), &stderr);
        assert!(
            stdout.contains("\\u{1b}]0;pwned\\u{7}"),
            "{args:?} shows the value, escaped: {stdout}"
        );
    }
    // JSON stays exact: the value round-trips.
    let (_, stdout, _) = h
        .run(&["release", "show", "hostile", "--output", "json"])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["description"], HOSTILE);
}

#[tokio::test]
async fn status_and_the_page_show_a_failure_quoting_a_record_escaped() {
    let h = Harness::new(BUGFARM).await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "bugfarm",
            json!({ "app": format!("r.example/app:{HOSTILE}") }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let (code, stdout, stderr) = h.run(&["status"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_inert("status", &stdout);
    assert!(stdout.contains("\\u{1b}"), "{stdout}");
    let (_, page) = get(controller.addr, "/").await;
    assert_inert("the page", &page);
    assert!(page.contains("\\u{1b}"), "{page}");
    controller.stop().await;
}

#[tokio::test]
async fn a_text_log_line_for_a_record_with_a_newline_stays_one_line() {
    let h = Harness::new(BUGFARM).await;
    let forged = "evil\n2026-12-01T00:00:00.000000Z  INFO relctl: FORGED deployment succeeded";
    let mut child = h
        .relctl()
        .arg("controller")
        .env("RELCTL_LOG_FORMAT", "text")
        .stdout(Stdio::null())
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
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}; saw {seen:#?}"));
        seen.push(line.clone());
        assert!(
            !line.starts_with("2026-12-01T00:00:00"),
            "forged: {seen:#?}"
        );
        if line.contains(needle) {
            return line;
        }
    };
    wait_for("leading: watching streams");
    h.put_release(
        TABLE,
        release(forged, "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    h.request(TABLE, forged, "stage", "2024-05-01T10:00:00.000000")
        .await;
    let refused = wait_for("deployment refused");
    assert!(
        refused.contains(r#"release_id="evil\n2026-12-01T00:00:00.000000Z  INFO relctl: FORGED deployment succeeded""#),
        "{refused}"
    );
    assert!(!refused.contains('\u{1b}'), "{refused:?}");
    let _ = child.kill();
    let _ = child.wait();
}
