//! `hooks = { before = [...], after = [...], on_rollback = [...] }`: commands run around
//! a deployment (a migration, a smoke test, a maintenance page). An `enforce` hook
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
                if hook.command.first().is_none_or(|c| c.trim().is_empty()) {
                    problems.push(format!(
                        "{at}.hooks.{phase}[{i}].command: name the program to run, e.g. [\"./smoke-test.sh\"]"
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
    pub command: Vec<String>,
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
            .or(self.command.first().map(String::as_str))
            .unwrap_or("hook")
    }
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
