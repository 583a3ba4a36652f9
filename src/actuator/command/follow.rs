//! Following one runner process: keepalives written to its stdin every second, its
//! output logged line by line (control characters stripped, lines cut) with a bounded
//! tail kept for the status message, the revision of its source read from its first
//! line, and its end recorded in the run record.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncWriteExt, BufReader},
    process::Child,
};
use tracing::{info, warn};

use super::{
    LINE_CHARS, Mode, Runs, TAIL_BYTES,
    runs::{LocalState, now_ms},
};
use crate::{
    model::EnvKey,
    runner::{INTERRUPTED, PINNED_LINE, PLAN_LOST, SOURCE_FAILED, SOURCE_LINE, plan::PLAN_LINE},
};

/// Follows one runner to its end: keepalives in, output out, the end recorded.
pub(super) async fn follow(
    mut child: Child,
    runs: Arc<Runs>,
    key: EnvKey,
    run_id: String,
    steps: usize,
    mode: Mode,
    images: String,
) {
    let mut stdin = child.stdin.take();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for reader in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            while let Some(line) =
                crate::runner::next_line(&mut reader, crate::runner::MAX_LINE).await
            {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut lines_seen = 0usize;
    let mut revision: Option<String> = None;
    let mut planned: Option<(String, String)> = None;
    let mut pinned: Option<String> = None;
    // How many commands were started (the runner says so before each).
    let mut started = 0usize;
    let mut findings = super::findings::Findings::default();
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    let status = loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if let Some(pipe) = stdin.as_mut()
                    && pipe.write_all(b"\n").await.is_err()
                {
                    stdin = None;
                }
            }
            line = rx.recv() => match line {
                Some(raw) => {
                    // Read whole, before the cut for people: it is JSON.
                    if mode == Mode::Plan
                        && let Some(pin) = raw.strip_prefix(PINNED_LINE)
                    {
                        pinned = Some(pin.to_owned());
                    }
                    started += usize::from(raw.starts_with("relctl runner: running `"));
                    if mode == Mode::Drift {
                        findings.see(&strip_ansi(&raw));
                    }
                    let line = cut(&strip_ansi(&raw), LINE_CHARS);
                    // The runner says the source's revision first, before any command
                    // runs: a later line that looks the same is a command's, not it.
                    lines_seen += 1;
                    if lines_seen == 1
                        && let Some(fetched) = line.strip_prefix(SOURCE_LINE)
                    {
                        revision = Some(fetched.to_owned());
                    }
                    // A plan run's last line is the runner's: the newest one counts.
                    if mode == Mode::Plan
                        && let Some(plan) = line.strip_prefix(PLAN_LINE)
                        && let Some((digest, summary)) = plan.split_once(' ')
                    {
                        planned = Some((digest.to_owned(), summary.to_owned()));
                    }
                    info!(target: "relctl::actuator::output", run_id, "{line}");
                    tail.push_back(line.clone());
                    while tail.iter().map(|l| l.len() + 1).sum::<usize>() > TAIL_BYTES {
                        tail.pop_front();
                    }
                    if let Some(local) = runs.local().get_mut(&run_id) {
                        local.state = LocalState::Running { last_line: Some(line) };
                    }
                }
                None => break child.wait().await,
            },
        }
    };
    drop(stdin);
    let ran_any = started > 0;
    let tail: Vec<String> = tail.into_iter().collect();
    let (state, record, message) = match status {
        Ok(s) if mode == Mode::Drift => {
            let (record, message, result) = super::findings::ended(s.code(), &findings).record();
            match result {
                Ok(None) => (LocalState::Succeeded(message.clone()), record, message),
                Ok(Some(found)) => (LocalState::Drifted(found), record, message),
                Err(_) if record == "interrupted" => (LocalState::Interrupted, record, message),
                // Here the output's tail is at hand: the failure says it.
                Err(why) => {
                    let why = format!(
                        "{why}; last output (at most {TAIL_BYTES} bytes):\n{}",
                        tail.join("\n")
                    );
                    (LocalState::Failed(why.clone()), record, why)
                }
            }
        }
        Ok(s) if s.success() && mode == Mode::Plan => match planned {
            Some((digest, mut summary)) => {
                if let Some(revision) = &revision {
                    summary.push_str(&format!(" on {revision}"));
                }
                let message = format!("{digest} {summary}");
                (LocalState::Planned { digest, summary }, "planned", message)
            }
            None => {
                let why = "the plan run ended without saying which plan it kept".to_owned();
                (LocalState::Failed(why.clone()), "failed", why)
            }
        },
        Ok(s) if s.success() => {
            let mut message = match &mode {
                Mode::Apply { digest, .. } => {
                    format!("applied the approved plan {digest}: {steps} commands succeeded")
                }
                _ => format!("{steps} commands succeeded"),
            };
            if let Some(revision) = &revision {
                message.push_str(&format!(" on {revision}"));
            }
            (LocalState::Succeeded(message.clone()), "succeeded", message)
        }
        Ok(s) if s.code() == Some(SOURCE_FAILED) && !ran_any => {
            let why = format!(
                "the module's source could not be fetched, so nothing ran: {}",
                tail.iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("relctl runner: "))
                    .unwrap_or("(no reason given)")
            );
            (LocalState::Failed(why.clone()), "failed", why)
        }
        // The runner's own codes, only where the runner can have meant them (a command's
        // exit status passes through and may be any number).
        Ok(s) if s.code() == Some(PLAN_LOST) && matches!(mode, Mode::Apply { .. }) && !ran_any => {
            let why = "the approved plan was gone when its apply started; planning again for a new approval".to_owned();
            warn!(run_id, "{why}");
            (LocalState::Interrupted, "interrupted", why)
        }
        Ok(s) if s.code() == Some(INTERRUPTED) => {
            let why = "the run was interrupted before it finished".to_owned();
            (LocalState::Interrupted, "interrupted", why)
        }
        Ok(s) => {
            let on = revision
                .as_ref()
                .map(|r| format!(" on {r}"))
                .unwrap_or_default();
            let output = tail.join("\n");
            let unlock = super::lock::unlock_hint(&output, &key);
            let why = format!(
                "the commands failed ({s}){on}{unlock}; last output (at most {TAIL_BYTES} bytes; all of it is in the log):\n{output}"
            );
            (LocalState::Failed(why.clone()), "failed", why)
        }
        Err(e) => {
            let why = format!("failed to wait for the runner: {e}");
            (LocalState::Failed(why.clone()), "failed", why)
        }
    };
    info!(run_id, outcome = record, "run ended");
    // Before `planned` is recorded: an approval then finds what the plan was made with.
    if record == "planned"
        && let Err(error) = runs
            .store
            .set_run_plan(&key, &run_id, &images, pinned.as_deref())
            .await
    {
        warn!(run_id, %error, "failed to record what the plan was made with");
    }
    if let Err(error) = runs
        .store
        .finish_run(&key, &run_id, record, &message, now_ms())
        .await
    {
        warn!(run_id, %error, "failed to record how the run ended");
    }
    if let Some(local) = runs.local().get_mut(&run_id) {
        local.state = state;
    }
}

/// `text`, cut to `max` characters with a marker.
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… [cut]")
}

/// Drops terminal control sequences (CSI `ESC [ … letter`, OSC `ESC ] … BEL` such as a
/// title change) and every other control, bidi or invisible character
/// ([`crate::model::shown::is_hazard`]), tabs apart: they mean nothing in a status
/// message, and must not reach a person's terminal.
pub(super) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            }
        } else if c == '\t' || !crate::model::shown::is_hazard(c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_and_control_characters_are_stripped_from_output_lines() {
        assert_eq!(
            strip_ansi("\u{1b}[31m│\u{1b}[0m \u{1b}[1mError: \u{1b}[0mNo value\u{7}\r"),
            "│ Error: No value"
        );
        assert_eq!(
            strip_ansi("a\u{1b}]0;pwned\u{7}b\u{1b}]2;x\u{1b}\\c\u{9b}31md\u{202e}e\tf"),
            "abc31mde\tf"
        );
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        assert_eq!(cut("abcdef", 3), "abc… [cut]");
        assert_eq!(cut("abc", 3), "abc");
    }
}
