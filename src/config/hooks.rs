//! `hooks = { before = [...], after = [...], on_rollback = [...] }`: commands run, or
//! Lambda functions invoked, around a deployment (a migration, a smoke test, a
//! maintenance page). An `enforce` hook
//! that fails fails the deployment (an `after` one after its apply, so `on_failure`
//! applies); an `observe` one has its verdict recorded and shown, never enforced.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Before anything is pinned.
    #[serde(default)]
    pub before: Vec<Hook>,
    /// After the apply is verified, before the deployment succeeds (or bakes).
    #[serde(default)]
    pub after: Vec<Hook>,
    /// Before a rollback (relctl's own, or `relctl rollback`) is pinned, after `before`.
    #[serde(default)]
    pub on_rollback: Vec<Hook>,
}

impl Hooks {
    /// The hooks that run before a deployment is pinned.
    pub fn before(&self, rollback: bool) -> Vec<&Hook> {
        let extra = if rollback { &self.on_rollback[..] } else { &[] };
        self.before.iter().chain(extra).collect()
    }

    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        for (phase, hooks) in [
            ("before", &self.before),
            ("after", &self.after),
            ("on_rollback", &self.on_rollback),
        ] {
            for (i, hook) in hooks.iter().enumerate() {
                match (&hook.function, hook.command.is_empty()) {
                    (None, true) => problems.push(format!(
                        "{at}.hooks.{phase}[{i}]: give the program to run (command = [\"./smoke-test.sh\"]) or the Lambda function to invoke (function = \"smoke-test\")"
                    )),
                    (Some(_), false) => problems.push(format!(
                        "{at}.hooks.{phase}[{i}]: a hook is a command or a Lambda function, not both"
                    )),
                    (None, false) if hook.command[0].trim().is_empty() => problems.push(format!(
                        "{at}.hooks.{phase}[{i}].command: name the program to run, e.g. [\"./smoke-test.sh\"]"
                    )),
                    (Some(function), true) if !function_name(function) => problems.push(format!(
                        "{at}.hooks.{phase}[{i}].function: {function:?} is not a Lambda function name or ARN (letters, digits, -, _, and an ARN's : and .)"
                    )),
                    _ => {}
                }
                if hook.function.is_some() && (hook.dir.is_some() || !hook.env.is_empty()) {
                    problems.push(format!(
                        "{at}.hooks.{phase}[{i}]: dir and env are a command's; a function has its own configuration"
                    ));
                }
                if hook.timeout.is_zero() || hook.timeout > Duration::from_secs(3600) {
                    problems.push(format!(
                        "{at}.hooks.{phase}[{i}].timeout: between 1s and 1h (a hook holds a reconcile worker while it runs)"
                    ));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// What it is called in statuses (default: the program's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The program and its arguments, run with `RELCTL_PROJECT`, `RELCTL_ENVIRONMENT`,
    /// `RELCTL_RELEASE_ID`, `RELCTL_IMAGES` (JSON) and `RELCTL_HOOK` (its phase) in its
    /// environment, beside `env`.
    #[serde(default)]
    pub command: Vec<String>,
    /// Or a Lambda function (name or ARN) in the environment's account and Region,
    /// invoked synchronously with the deployment as JSON (`project`, `environment`,
    /// `release_id`, `images`, `hook`): it fails by raising, by answering `ok` other
    /// than true (`{"ok": false, "message": "…"}`) or a `statusCode` of 400 or more, or
    /// with an answer that is not JSON. Bounded by `timeout`, never retried.
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub mode: CheckMode,
    #[serde(default = "five_minutes", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Hook {
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.function.as_deref())
            .or(self.command.first().map(String::as_str))
            .unwrap_or("hook")
    }
}

/// A Lambda function's name, partial or full ARN, with an optional qualifier.
fn function_name(name: &str) -> bool {
    (1..=170).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$'))
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

/// Whether a check's verdict can fail a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// Its failure fails the deployment.
    #[default]
    Enforce,
    /// Its verdict is recorded and shown, never enforced: a new check on trial.
    Observe,
}
