//! Running an environment's hooks (`config::hooks`): each a child process with the
//! deployment in its environment, stopped at its timeout (killed with the reconcile if
//! that is dropped), or a Lambda function invoked with the deployment as JSON. Their
//! verdicts, in words, for the deployment's status.

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
    deployment: Deployment<'_>,
    lambda: Option<&aws_sdk_lambda::Client>,
) -> Result<String, String> {
    let mut passed = Vec::new();
    let mut observed = Vec::new();
    for hook in hooks {
        let verdict = match (&hook.function, lambda) {
            (Some(function), Some(client)) => {
                invoke(client, function, hook, phase, &deployment).await
            }
            (Some(_), None) => Err("no Lambda client for this environment".into()),
            (None, _) => run_one(hook, phase, &deployment).await,
        };
        match verdict {
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

/// The deployment a hook is about.
#[derive(Debug, Clone, Copy)]
pub struct Deployment<'a> {
    pub key: &'a EnvKey,
    pub intent: &'a IntentRef,
    pub images: &'a Images,
}

/// Invokes `function` synchronously with the deployment as JSON, bounded by the hook's
/// timeout: it failed if it raised (the error it names), or returned `"ok": false`.
async fn invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    hook: &Hook,
    phase: &str,
    deployment: &Deployment<'_>,
) -> Result<(), String> {
    let payload = serde_json::json!({
        "project": deployment.key.project,
        "environment": deployment.key.environment,
        "release_id": deployment.intent.release_id,
        "date_created": deployment.intent.date_created.to_wire(),
        "images": deployment.images,
        "hook": phase,
    });
    // The hook's own timeout, not the controller's per-call one (a smoke test may run
    // for minutes), and never retried: a migration must not run twice because an
    // answer was slow.
    let bound = hook.timeout + std::time::Duration::from_secs(5);
    let call = client
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .customize()
        .config_override(
            aws_sdk_lambda::config::Builder::default()
                .timeout_config(
                    aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                        .operation_timeout(bound)
                        .operation_attempt_timeout(bound)
                        .read_timeout(bound)
                        .build(),
                )
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()),
        )
        .send();
    let output = match tokio::time::timeout(hook.timeout, call).await {
        Err(_) => {
            return Err(format!(
                "did not answer within {}",
                humantime::format_duration(hook.timeout)
            ));
        }
        Ok(Err(e)) => {
            return Err(format!(
                "could not be invoked (lambda:Invoke): {}",
                crate::aws::error_message(&e)
            ));
        }
        Ok(Ok(output)) => output,
    };
    let raw = output
        .payload
        .as_ref()
        .map(|p| p.as_ref())
        .unwrap_or_default();
    let answer: Option<serde_json::Value> = if raw.is_empty() {
        Some(serde_json::Value::Null)
    } else {
        serde_json::from_slice(raw).ok()
    };
    let said = |field: &str| {
        answer
            .as_ref()
            .and_then(|a| a.get(field))
            .and_then(|m| m.as_str())
            .map(|m| m.chars().take(300).collect::<String>())
    };
    if let Some(error) = &output.function_error {
        return Err(format!(
            "raised {}: {}",
            error.chars().take(40).collect::<String>(),
            said("errorMessage").unwrap_or_else(|| "(no message)".into())
        ));
    }
    // It passed by answering nothing (null) or an object that does not say otherwise:
    // `ok` other than true, or an HTTP-style `statusCode` of 400 or more, fails it, and
    // so does an answer that is not JSON at all.
    let Some(answer_value) = answer.as_ref() else {
        return Err("answered something that is not JSON".into());
    };
    if answer_value
        .get("ok")
        .is_some_and(|ok| ok != &serde_json::Value::Bool(true))
    {
        return Err(
            said("message").unwrap_or_else(|| format!("it answered ok: {}", answer_value["ok"]))
        );
    }
    if let Some(code) = answer_value.get("statusCode").and_then(|c| c.as_u64())
        && code >= 400
    {
        return Err(said("message").or_else(|| said("body")).map_or_else(
            || format!("it answered statusCode {code}"),
            |m| format!("statusCode {code}: {m}"),
        ));
    }
    Ok(())
}

async fn run_one(hook: &Hook, phase: &str, deployment: &Deployment<'_>) -> Result<(), String> {
    let Deployment {
        key,
        intent,
        images,
    } = deployment;
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
