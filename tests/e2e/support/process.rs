//! `relctl controller` as a child process with JSON logs, for tests that kill, pause
//! and resume it. Its log lines are read on a thread into a channel.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::Harness;

pub struct Controller {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Controller {
    pub fn start(h: &Harness) -> Self {
        Self::start_with(h, &[])
    }

    /// With extra environment variables (a failpoint, say).
    pub fn start_with(h: &Harness, env: &[(&str, &str)]) -> Self {
        let mut child = h
            .relctl()
            .arg("controller")
            .envs(env.iter().copied())
            .env("RELCTL_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("relctl controller starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The next log line containing `needle`, as JSON; panics after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no log line with {needle:?} within {timeout:?}; saw {:#?}",
                    self.seen
                );
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return serde_json::from_str(&line).unwrap_or(Value::Null);
            }
        }
    }

    /// Waits for the process to end by itself; its exit status.
    pub fn exited(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}; saw {:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
