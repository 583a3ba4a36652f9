//! What a run of the command actuator runs: the commands as configured, or — where
//! the plan is approved before it is applied — the set-up commands and `terraform
//! plan`, then the set-up commands and `terraform apply` of the kept plan.

use std::path::PathBuf;

use super::CommandActuator;
use crate::model::EnvKey;

/// What one run of the commands does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The commands as configured.
    Whole,
    /// The set-up commands, then `terraform plan`, the plan kept.
    Plan,
    /// The set-up commands, then `terraform apply` of the approved plan.
    Apply { digest: String },
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

impl CommandActuator {
    /// The configured commands before the apply (`terraform init`, …).
    pub(super) fn setup(&self) -> Vec<Vec<String>> {
        self.commands
            .iter()
            .filter(|c| {
                !(c.first().is_some_and(|p| p == "terraform")
                    && c.get(1).is_some_and(|a| a == "apply"))
            })
            .cloned()
            .collect()
    }

    pub(super) fn commands_for(&self, mode: &Mode) -> Vec<Vec<String>> {
        match mode {
            Mode::Whole => self.steps(),
            Mode::Plan => {
                let mut steps = self.setup();
                steps.push(args(&[
                    "terraform",
                    "plan",
                    "-input=false",
                    "-out=relctl.tfplan",
                ]));
                steps
            }
            Mode::Apply { .. } => {
                let mut steps = self.setup();
                steps.push(args(&[
                    "terraform",
                    "apply",
                    "-input=false",
                    "relctl.tfplan",
                ]));
                steps.extend(self.steps().into_iter().skip(self.commands.len()));
                steps
            }
        }
    }

    /// Where the plan of `run_id` in `key`'s environment is kept between its plan and
    /// its apply (outside every workspace).
    pub(super) fn plan_path(&self, key: &EnvKey, run_id: &str) -> PathBuf {
        let name = crate::runner::plan::digest(format!("{key}\n{run_id}").as_bytes());
        self.scratch
            .join("plans")
            .join(format!("{}.tfplan", name.trim_start_matches("sha256:")))
    }

    pub(super) fn steps(&self) -> Vec<Vec<String>> {
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
