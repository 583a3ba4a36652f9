//! Running an environment's hooks (`config::hooks`): each a child process with the
//! deployment in its environment, stopped at its timeout (killed with the reconcile if
//! that is dropped). Their verdicts, in words, for the deployment's status.

use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{
    config::hooks::{CheckMode, Hook},
    model::{EnvKey, Images, IntentRef},
};

/// Lines of a failed hook's output kept for the status.
const TAIL_LINES: usize = 10;

/// Runs `hooks` of `phase` in order. Ok: what to add to the status (observe-only
/// verdicts, the hooks that passed); Err: why an enforced hook failed the deployment
/// (the ones after it do not run).
pub async fn run_all(
    hooks: &[&Hook],
    phase: &str,
    key: &EnvKey,
    intent: &IntentRef,
    images: &Images,
) -> Result<String, String> {
    let mut passed = Vec::new();
    let mut observed = Vec::new();
    for hook in hooks {
        match run_one(hook, phase, key, intent, images).await {
            Ok(()) => passed.push(hook.name().to_owned()),
            Err(why) if hook.mode == CheckMode::Observe => observed.push(format!(
                "observe-only {phase} hook {} failed (not enforced): {why}",
                hook.name()
            )),
            Err(why) => return Err(format!("{phase} hook {} failed: {why}", hook.name())),
        }
    }
    let mut note = String::new();
    if !passed.is_empty() {
        note.push_str(&format!("; {phase} hooks passed: {}", passed.join(", ")));
    }
    for o in observed {
        note.push_str("; ");
        note.push_str(&o);
    }
    Ok(note)
}

async fn run_one(
    hook: &Hook,
    phase: &str,
    key: &EnvKey,
    intent: &IntentRef,
    images: &Images,
) -> Result<(), String> {
    let Some((program, args)) = hook.command.split_first() else {
        return Err("no command".into());
    };
    let images = serde_json::to_string(images).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(program);
    // Only what a hook needs: never the controller's own credentials or secrets.
    command.env_clear();
    for name in ["PATH", "HOME", "LANG", "TZ", "TMPDIR"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command
        .args(args)
        .envs(&hook.env)
        .env("RELCTL_PROJECT", &key.project)
        .env("RELCTL_ENVIRONMENT", &key.environment)
        .env("RELCTL_RELEASE_ID", &intent.release_id)
        .env("RELCTL_IMAGES", images)
        .env("RELCTL_HOOK", phase)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout (or a dropped reconcile) ends what it
        // started too.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &hook.dir {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    let group = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(pid as i32));
    let _ends_group = EndsGroup(group);
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let output = tokio::spawn(async move {
        let (out, err) = tokio::join!(tail(out), tail(err));
        let mut text = out;
        text.extend(err);
        text
    });
    let status = match tokio::time::timeout(hook.timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            return Err(format!(
                "did not finish within {}",
                humantime::format_duration(hook.timeout)
            ));
        }
    };
    // Output still held open by something it left running is not waited for long.
    let text = match tokio::time::timeout(std::time::Duration::from_secs(2), output).await {
        Ok(Ok(text)) => text,
        _ => Vec::new(),
    };
    let status = status.map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    // Each line cut, so the last lines (where the error usually is) fit the status.
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| l.chars().take(160).collect::<String>())
        .collect::<Vec<_>>()
        .join(" | ");
    Err(format!(
        "{status}{}",
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {tail}")
        }
    ))
}

/// The last [`TAIL_BYTES`] a stream wrote, read to its end (so the child never blocks
/// on a full pipe, however much it writes).
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    const TAIL_BYTES: usize = 16 * 1024;
    let Some(mut stream) = stream else {
        return Vec::new();
    };
    let mut kept = std::collections::VecDeque::with_capacity(TAIL_BYTES);
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend(&buffer[..n]);
        let over = kept.len().saturating_sub(TAIL_BYTES);
        kept.drain(..over);
    }
    kept.into()
}

/// Ends a hook's process group when the hook is done with (finished, timed out, or its
/// reconcile dropped): nothing it started outlives it.
struct EndsGroup(Option<rustix::process::Pid>);

impl Drop for EndsGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}
