//! The Terraform actuator, or any list of commands: run one after another in a
//! directory, with `RELCTL_PROJECT`, `RELCTL_ENVIRONMENT`, `RELCTL_RELEASE_ID` and
//! `RELCTL_IMAGES` (JSON service → URI) in their environment, and the same as
//! `TF_VAR_relctl_project` … `TF_VAR_relctl_images`, every output line logged,
//! a timeout, and the exit status deciding. The run happens in a background task; the
//! reconcile only checks on it. A run lost to a restart is started again: `terraform
//! apply` converges, so running it twice is safe where starting a pipeline twice is not.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};
use tracing::{Instrument, info, warn};

use super::{Actuator, ActuatorError, Progress, Run};

/// Output lines kept for the status message of a failed run.
const TAIL: usize = 15;

#[derive(Debug, Clone)]
enum State {
    Running { last_line: Option<String> },
    Succeeded,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct CommandActuator {
    pub dir: PathBuf,
    pub commands: Vec<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// After the commands, `terraform plan -detailed-exitcode` must exit 0.
    pub verify_plan: bool,
    runs: Arc<Mutex<HashMap<String, State>>>,
}

impl CommandActuator {
    pub fn new(
        dir: PathBuf,
        commands: Vec<Vec<String>>,
        env: Vec<(String, String)>,
        timeout: Duration,
        verify_plan: bool,
    ) -> Self {
        Self {
            dir,
            commands,
            env,
            timeout,
            verify_plan,
            runs: Arc::default(),
        }
    }

    fn set(runs: &Mutex<HashMap<String, State>>, handle: &str, state: State) {
        runs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.to_owned(), state);
    }

    fn steps(&self) -> Vec<Vec<String>> {
        let mut steps = self.commands.clone();
        if self.verify_plan {
            steps.push(
                [
                    "terraform",
                    "plan",
                    "-detailed-exitcode",
                    "-input=false",
                    "-lock=false",
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        steps
    }
}

/// Runs `steps` in order; the first failure ends the run with the output's tail.
async fn run_all(
    steps: Vec<Vec<String>>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
    runs: Arc<Mutex<HashMap<String, State>>>,
    handle: String,
) {
    let mut tail: VecDeque<String> = VecDeque::new();
    let outcome = tokio::time::timeout(timeout, async {
        for step in &steps {
            run_one(step, &dir, &env, &mut tail, &runs, &handle).await?;
        }
        Ok::<(), String>(())
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "timed out after {}",
            humantime::format_duration(timeout)
        ))
    });
    let state = match outcome {
        Ok(()) => State::Succeeded,
        Err(why) => {
            let tail: Vec<String> = tail.into_iter().collect();
            State::Failed(format!("{why}; last output:\n{}", tail.join("\n")))
        }
    };
    CommandActuator::set(&runs, &handle, state);
}

async fn run_one(
    step: &[String],
    dir: &PathBuf,
    env: &[(String, String)],
    tail: &mut VecDeque<String>,
    runs: &Mutex<HashMap<String, State>>,
    handle: &str,
) -> Result<(), String> {
    let Some((program, args)) = step.split_first() else {
        return Err("empty command".into());
    };
    let shown = step.join(" ");
    info!(command = %shown, dir = %dir.display(), "running");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("failed to start `{shown}` in {}: {e}", dir.display()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward(BufReader::new(stdout).lines(), tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward(BufReader::new(stderr).lines(), tx.clone()));
    }
    drop(tx);
    while let Some(line) = rx.recv().await {
        let line = strip_ansi(&line);
        info!(target: "relctl::actuator::output", "{line}");
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        CommandActuator::set(
            runs,
            handle,
            State::Running {
                last_line: Some(line),
            },
        );
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("failed to wait for `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        warn!(command = %shown, %status, "command failed");
        Err(format!("`{shown}` exited with {status}"))
    }
}

/// Drops terminal colour codes (`ESC [ … letter`): they mean nothing in a status message.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn forward<R: tokio::io::AsyncBufRead + Unpin>(
    mut lines: tokio::io::Lines<R>,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = tx.send(line);
    }
}

#[async_trait]
impl Actuator for CommandActuator {
    fn kind(&self) -> &'static str {
        "terraform"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn start(&self, run: &Run<'_>) -> Result<String, ActuatorError> {
        let handle = run.token();
        let images = serde_json::to_string(run.images).map_err(|e| ActuatorError::Spawn {
            what: "commands".into(),
            source: e.into(),
        })?;
        let mut env = self.env.clone();
        // The same values as Terraform input variables: a module declares
        // `variable "relctl_images" {}` and needs no wrapper script.
        for (name, value) in [
            ("PROJECT", run.key.project.clone()),
            ("ENVIRONMENT", run.key.environment.clone()),
            ("RELEASE_ID", run.intent.release_id.clone()),
            ("IMAGES", images),
        ] {
            env.push((
                format!("TF_VAR_relctl_{}", name.to_lowercase()),
                value.clone(),
            ));
            env.push((format!("RELCTL_{name}"), value));
        }
        Self::set(&self.runs, &handle, State::Running { last_line: None });
        tokio::spawn(
            run_all(
                self.steps(),
                self.dir.clone(),
                env,
                self.timeout,
                self.runs.clone(),
                handle.clone(),
            )
            .in_current_span(),
        );
        Ok(handle)
    }

    async fn check(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        let state = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(handle)
            .cloned();
        Ok(match state {
            None => {
                warn!(
                    handle,
                    "the command run was lost (controller restarted); running it again"
                );
                self.start(run).await?;
                Progress::Waiting {
                    after: Duration::from_secs(2),
                    message: "running the apply commands again after a restart".into(),
                }
            }
            Some(State::Running { last_line }) => Progress::Waiting {
                after: Duration::from_secs(1),
                message: match last_line {
                    Some(line) => format!("applying: {line}"),
                    None => "applying: starting".into(),
                },
            },
            Some(State::Succeeded) => {
                self.runs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(handle);
                Progress::Done {
                    message: format!("{} commands succeeded", self.steps().len()),
                }
            }
            Some(State::Failed(message)) => {
                self.runs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(handle);
                Progress::Failed { message }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_stripped_from_output_lines() {
        assert_eq!(
            strip_ansi("\u{1b}[31m│\u{1b}[0m \u{1b}[1mError: \u{1b}[0mNo value"),
            "│ Error: No value"
        );
    }
}
