//! relctl on a terminal, through a real pseudo-terminal (portable-pty): `deploy
//! --wait` shows one live line and leaves the outcome on the screen; Ctrl-C stops the
//! waiting, says so, and leaves the deployment alone; tables are coloured on a
//! terminal by default and not with `NO_COLOR`.

use std::{
    io::{Read, Write},
    sync::{Arc, Mutex},
};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, release, until};

const TABLE: &str = "relctl-releases";

/// A relctl run in a pseudo-terminal: what it has written so far, and its exit code
/// once it has one.
struct OnTerminal {
    output: Arc<Mutex<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl OnTerminal {
    fn start(h: &Harness, args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 160,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let template = h.relctl();
        let mut command = CommandBuilder::new(template.get_program());
        command.args(args);
        command.env_clear();
        for name in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.env("TERM", "xterm-256color");
        for (name, value) in template.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = pair.slave.spawn_command(command).expect("relctl starts");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("a reader");
        let keys = pair.master.take_writer().expect("a writer");
        let output: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Self {
            output,
            child,
            keys,
            _master: pair.master,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output holds `wanted` (or relctl ended without it).
    async fn until_shows(&mut self, wanted: &str) -> String {
        let output = self.output.clone();
        until(
            &format!("the terminal shows {wanted:?}"),
            async || String::from_utf8_lossy(&output.lock().unwrap()).contains(wanted),
            |shown| *shown,
        )
        .await;
        self.text()
    }

    /// Waits for relctl to exit: its code, and all it wrote.
    async fn exit(mut self) -> (u32, String) {
        let code = until(
            "relctl exits",
            async || self.child.try_wait().ok().flatten().map(|s| s.exit_code()),
            Option::is_some,
        )
        .await
        .unwrap_or_default();
        // What it wrote last is read by the reader thread: wait for it to settle.
        let mut seen = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = self.output.lock().unwrap().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        (code, self.text())
    }
}

const CONFIG: &str = r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "stage"
name = "Staging"

[[projects.environments]]
id = "prod"
name = "Production"
protected = true
"#;

#[tokio::test]
async fn on_a_terminal_wait_is_one_live_line_ctrl_c_stops_only_the_waiting_and_tables_are_coloured()
{
    let h = Harness::new(CONFIG).await;
    h.put_release(
        TABLE,
        release("r1", "shop", json!({ "web": "r.example/web:1" })),
    )
    .await;
    let controller = h.start_controller().await;

    // A deployment that succeeds: the live line, then the outcome left on the screen.
    let run = OnTerminal::start(&h, &["deploy", "r1", "--env", "stage", "--wait"], &[]);
    let (code, shown) = run.exit().await;
    assert_eq!(code, 0, "{shown}");
    // What is left on the screen: the last redraw of the line, after its last `\r`.
    let last = shown
        .trim_end()
        .rsplit('\r')
        .next()
        .unwrap_or_default()
        .trim_start_matches("\u{1b}[2K");
    assert!(
        last.starts_with('[') && last.contains("] succeeded") && last.contains("pinned 1 of 1"),
        "the outcome stays: {last:?} in {shown:?}"
    );
    assert!(
        shown.contains('\r') || shown.contains("\u{1b}["),
        "a live line redrawn: {shown:?}"
    );

    // One that waits for an approval: Ctrl-C stops the waiting, not the deployment.
    let mut run = OnTerminal::start(&h, &["deploy", "r1", "--env", "prod", "--wait"], &[]);
    run.until_shows("relctl approve r1 --env prod").await;
    run.keys.write_all(b"\x03").expect("Ctrl-C typed");
    run.keys.flush().ok();
    let (code, shown) = run.exit().await;
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("stopped waiting (Ctrl-C); the deployment itself goes on: `relctl wait r1 --env prod` follows it again"),
        "{shown:?}"
    );
    let entry = h.release(TABLE, "r1").await.deployments[1].clone();
    assert_eq!(entry.environment.id, "prod");
    assert_eq!(
        entry.status,
        Some(Status::Blocked),
        "left waiting: {entry:?}"
    );
    assert!(entry.cancel.is_none(), "nothing asked of it: {entry:?}");

    // Tables: coloured on a terminal, plain with NO_COLOR.
    let run = OnTerminal::start(&h, &["status", "--project", "shop"], &[]);
    let (code, shown) = run.exit().await;
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("\u{1b}["), "colour on a terminal: {shown:?}");
    let run = OnTerminal::start(&h, &["status", "--project", "shop"], &[("NO_COLOR", "1")]);
    let (code, shown) = run.exit().await;
    assert_eq!(code, 0, "{shown}");
    assert!(
        !shown.contains("\u{1b}["),
        "no colour with NO_COLOR: {shown:?}"
    );
    controller.stop().await;
}
