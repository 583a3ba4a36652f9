//! `relctl runner`: the work of one Terraform (or any commands) run, in a process of its
//! own. It fetches the module when it comes from a source ([`source`]: a fresh
//! workspace, removed at the end, its revision said on the first line of output), runs
//! the commands one after another in its directory, each in a process group of its
//! own, forwards their output line by line on stdout, and exits with the first failing
//! command's status (0 when all succeed; [`SOURCE_FAILED`] when the source could not be
//! fetched).
//!
//! It never outlives its controller's interest in it: the controller writes a byte to
//! its stdin every second; when those stop for `keepalive` (the controller died, was
//! SIGKILLed or paused, or lost the lease) or stdin closes, and on SIGINT or SIGTERM,
//! it interrupts the command gracefully — SIGINT to its process group, which Terraform
//! answers by stopping cleanly and releasing its state lock — then SIGTERM after
//! `grace`, then SIGKILL, and exits [`INTERRUPTED`]. So a new leader that waits longer
//! than `keepalive + grace` after the last heartbeat knows the old run is over.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

/// The exit status of a run that was interrupted before it finished.
pub const INTERRUPTED: i32 = 130;
/// The exit status of a run whose source could not be fetched (nothing was run).
pub const SOURCE_FAILED: i32 = 3;
/// The exit status of an apply whose approved plan is gone: the controller plans again.
pub const PLAN_LOST: i32 = 4;
/// The exit status of a drift check whose plan (its last command) found changes:
/// `terraform plan -detailed-exitcode`'s 2, told apart from any earlier command's 2.
pub const DRIFTED: i32 = 5;
/// The first line of a run with a source: this, then the revision fetched.
pub const SOURCE_LINE: &str = "relctl runner: source ";
/// A plan run's line, before its plan line: the source as fetched (JSON), which its
/// apply fetches again exactly.
pub const PINNED_LINE: &str = "relctl runner: source pinned ";

pub mod plan;
pub mod source;

/// What the runner is asked to do.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// Where the commands run; with a `source`, the directory it is unpacked under
    /// (the scratch directory), each run in a fresh workspace of its own.
    pub dir: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<source::JobSource>,
    /// Argument lists, run in order until one fails.
    pub commands: Vec<Vec<String>>,
    /// How long without a byte on stdin before the runner stops by itself; none in an
    /// ECS task, which has no stdin and is stopped with StopTask (SIGTERM).
    #[serde(default, with = "humantime_serde")]
    pub keepalive: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// A plan kept after the commands, or put in place before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<plan::PlanStep>,
    /// A drift check: the last command's exit status 2 (changes) becomes [`DRIFTED`],
    /// and no other command's status may be taken for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

/// The environment variable the job is handed in (as JSON).
pub const JOB_ENV: &str = "RELCTL_RUNNER_JOB";

/// Why the current command is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The controller stopped sending keepalives, or closed stdin.
    Abandoned,
    /// SIGINT or SIGTERM to the runner.
    Signalled,
}

/// `println!` that survives its reader going away: once the controller is gone, a
/// write to the pipe fails (EPIPE), and the runner must still stop its commands (a
/// panicking `println!` here once left Terraform running after a SIGKILLed controller).
/// No parent-death signal: Linux sends it when the spawning *thread* ends, and the
/// closed keepalive pipe already says the controller is gone.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs `job`; returns the exit status for the process.
pub async fn run(job: Job) -> i32 {
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel();
    if let Some(keepalive) = job.keepalive {
        tokio::spawn(watch_keepalive(keepalive, stop_tx.clone()));
    }
    tokio::spawn(watch_signals(stop_tx));
    // Kept to the end of the run: dropping it removes the workspace.
    let fetched = match &job.source {
        None => None,
        Some(wanted) => {
            // Not cut short: the unpacking runs on a thread of its own, which would go
            // on writing into a workspace already removed. The fetch is bounded in
            // size; a stop asked meanwhile is honoured as soon as it is done.
            let fetched = source::fetch(wanted, &job.dir).await;
            if stop_rx.try_recv().is_ok() {
                say!("relctl runner: asked to stop while fetching the source");
                return INTERRUPTED;
            }
            match fetched {
                Ok(fetched) => {
                    say!("{SOURCE_LINE}{}", fetched.revision);
                    Some(fetched)
                }
                Err(why) => {
                    say!("relctl runner: {why}");
                    return SOURCE_FAILED;
                }
            }
        }
    };
    let dir = fetched.as_ref().map_or(&job.dir, |f| &f.dir);
    // The plan file in the run's directory goes with the run (it holds state).
    let _plan_file = job
        .plan
        .as_ref()
        .map(|_| RemoveOnDrop(dir.join(plan::PLAN_FILE)));
    if let Some(plan::PlanStep::Load { from, digest }) = &job.plan
        && let Err(plan::Lost(why)) = plan::load(from, digest, dir).await
    {
        say!("relctl runner: {why}");
        return PLAN_LOST;
    }
    let last = job.commands.len().saturating_sub(1);
    for (i, command) in job.commands.iter().enumerate() {
        let Some((program, args)) = command.split_first() else {
            say!("relctl runner: an empty command");
            return 1;
        };
        let shown = command.join(" ");
        say!("relctl runner: running `{shown}` in {}", dir.display());
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: an interrupt reaches Terraform and its providers.
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                say!("relctl runner: failed to start `{shown}`: {error}");
                return 127;
            }
        };
        forward_output(&mut child);
        let status = tokio::select! {
            status = child.wait() => status,
            Some(why) = stop_rx.recv() => {
                say!("relctl runner: {}; interrupting `{shown}`", match why {
                    Stop::Abandoned => "the controller stopped following this run",
                    Stop::Signalled => "asked to stop",
                });
                interrupt(&mut child, job.grace).await;
                return INTERRUPTED;
            }
        };
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                let code = status.code().unwrap_or(1);
                if job.drift && i == last && code == 2 {
                    say!("relctl runner: the plan has changes: drift");
                    return DRIFTED;
                }
                say!("relctl runner: `{shown}` exited with {status}");
                if job.drift && code == DRIFTED {
                    return 1;
                }
                return code;
            }
            Err(error) => {
                say!("relctl runner: failed to wait for `{shown}`: {error}");
                return 1;
            }
        }
    }
    if let Some(plan::PlanStep::Save { to }) = &job.plan {
        if let Some(pinned) = fetched.as_ref().and_then(|f| f.pinned.as_ref())
            && let Ok(json) = serde_json::to_string(pinned)
        {
            say!("{PINNED_LINE}{json}");
        }
        return keep_plan(dir, to).await;
    }
    0
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Keeps the plan the commands made and says what it does: its digest and summary.
async fn keep_plan(dir: &std::path::Path, to: &std::path::Path) -> i32 {
    let digest = match plan::save(dir, to).await {
        Ok(digest) => digest,
        Err(why) => {
            say!("relctl runner: {why}");
            return 1;
        }
    };
    let show = Command::new("terraform")
        .args(["show", "-json", "-no-color", plan::PLAN_FILE])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await;
    let summary = match show {
        Ok(out) if out.status.success() => match serde_json::from_slice(&out.stdout) {
            Ok(json) => plan::summary(&json),
            Err(e) => format!("(terraform show -json was not JSON: {e})"),
        },
        Ok(out) => format!(
            "(terraform show -json failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("(terraform show could not start: {e})"),
    };
    say!("{}{digest} {summary}", plan::PLAN_LINE);
    0
}

/// The most of one output line that is passed on; the rest of a longer one is dropped
/// (the pipe is still read, so the command never blocks on it).
pub const MAX_LINE: usize = 64 * 1024;

/// The next line of `reader` without its newline, decoded lossily (output that is not
/// UTF-8 is still read, never stops the reading) and cut at `max` bytes; none at the end.
pub async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> Option<String> {
    let mut line = Vec::new();
    let mut read_any = false;
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(_) => &[],
        };
        if buf.is_empty() {
            return read_any.then(|| String::from_utf8_lossy(&line).into_owned());
        }
        read_any = true;
        let (chunk, used, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if done {
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// Copies the child's stdout and stderr to ours, a line at a time.
fn forward_output(child: &mut Child) {
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            while let Some(line) = next_line(&mut reader, MAX_LINE).await {
                say!("{line}");
            }
        });
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            while let Some(line) = next_line(&mut reader, MAX_LINE).await {
                say!("{line}");
            }
        });
    }
}

/// SIGINT to the child's process group, SIGTERM after `grace`, SIGKILL 5 s later.
async fn interrupt(child: &mut Child, grace: Duration) {
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let signal = |sig| {
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, sig);
        }
    };
    signal(rustix::process::Signal::INT);
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return;
    }
    signal(rustix::process::Signal::TERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_ok()
    {
        return;
    }
    signal(rustix::process::Signal::KILL);
    let _ = child.wait().await;
}

/// Says `Abandoned` once no byte came on stdin for `keepalive`, or stdin closed.
async fn watch_keepalive(keepalive: Duration, stop: mpsc::UnboundedSender<Stop>) {
    let mut stdin = tokio::io::stdin();
    let mut byte = [0u8; 64];
    loop {
        match tokio::time::timeout(keepalive, stdin.read(&mut byte)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => {
                let _ = stop.send(Stop::Abandoned);
                return;
            }
        }
    }
}

async fn watch_signals(stop: mpsc::UnboundedSender<Stop>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = stop.send(Stop::Signalled);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_that_is_not_utf8_or_too_long_is_still_read_line_by_line() {
        let mut input: Vec<u8> = b"plain\n".to_vec();
        input.extend_from_slice(b"bad \xff\xfe bytes\n");
        input.extend_from_slice(&[b'x'; 100]);
        input.extend_from_slice(b"\nlast");
        let mut reader = BufReader::new(&input[..]);
        assert_eq!(next_line(&mut reader, 10).await.as_deref(), Some("plain"));
        assert_eq!(
            next_line(&mut reader, 64).await.as_deref(),
            Some("bad \u{fffd}\u{fffd} bytes")
        );
        assert_eq!(
            next_line(&mut reader, 10).await.as_deref(),
            Some("xxxxxxxxxx"),
            "cut at the limit, the rest of the line dropped"
        );
        assert_eq!(next_line(&mut reader, 10).await.as_deref(), Some("last"));
        assert_eq!(next_line(&mut reader, 10).await, None);
    }
}
