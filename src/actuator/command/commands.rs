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
    /// The set-up commands, then `terraform apply` of the approved plan, with the
    /// module fetched exactly as the plan run fetched it.
    Apply {
        digest: String,
        source: Option<crate::runner::source::JobSource>,
    },
    /// The set-up commands, then `terraform plan -detailed-exitcode` without the state
    /// lock: whether the deployed release still describes what runs.
    Drift,
}

impl Mode {
    /// As a run record names it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Whole => "whole",
            Self::Plan => "plan",
            Self::Apply { .. } => "apply",
            Self::Drift => "drift",
        }
    }
}

/// The `terraform init` commands among the set-up commands (all but the last): what
/// must run before any other Terraform command can reach the state, and nothing that
/// changes it.
pub fn inits(commands: &[Vec<String>]) -> Vec<Vec<String>> {
    let n = commands.len().saturating_sub(1);
    commands[..n]
        .iter()
        .filter(|c| {
            c.first().is_some_and(|p| p == "terraform") && c.get(1).is_some_and(|a| a == "init")
        })
        .cloned()
        .collect()
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

impl CommandActuator {
    /// The configured commands before the apply (`terraform init`, …): all but the last,
    /// which, where plans are approved, the configuration holds to be `terraform apply`
    /// (see [`apply_is_last`]).
    pub(super) fn setup(&self) -> Vec<Vec<String>> {
        let n = self.commands.len().saturating_sub(1);
        self.commands[..n].to_vec()
    }

    /// `terraform plan` with the configured apply's own options (`-var-file`, `-target`,
    /// …), so the plan is of what that apply would do.
    fn plan_command(&self) -> Vec<String> {
        plan_of(self.commands.last())
    }

    pub(super) fn commands_for(&self, mode: &Mode) -> Vec<Vec<String>> {
        match mode {
            Mode::Whole => self.steps(),
            Mode::Plan => {
                let mut steps = self.setup();
                steps.push(self.plan_command());
                steps
            }
            Mode::Drift => {
                // Only `terraform init`: a check runs every interval and must change
                // nothing (a `terraform refresh`, an import or a script might).
                let mut steps = inits(&self.commands);
                steps.push(drift_plan_of(self.commands.last()));
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
        // Runs in ECS tasks keep it in S3: they share no disk.
        if let Some(plans) = self.tasks.as_ref().and_then(|t| t.config.plans.as_ref()) {
            return PathBuf::from(format!(
                "{}/{}/{}/{}.tfplan",
                plans.trim_end_matches('/'),
                key.project,
                key.environment,
                name.trim_start_matches("sha256:")
            ));
        }
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

/// `terraform plan -out` with `apply`'s options but `-auto-approve` and `-input`.
fn plan_of(apply: Option<&Vec<String>>) -> Vec<String> {
    let mut plan = args(&["terraform", "plan", "-input=false", "-out=relctl.tfplan"]);
    // The options that choose what is planned; apply-only ones (-auto-approve,
    // -backup, -state-out, …) are not the plan's.
    const PLANNED: [&str; 9] = [
        "-var",
        "-var-file",
        "-target",
        "-replace",
        "-refresh",
        "-parallelism",
        "-lock",
        "-compact-warnings",
        "-no-color",
    ];
    if let Some(apply) = apply {
        plan.extend(
            apply
                .iter()
                .skip(2)
                .filter(|a| {
                    let name = a
                        .trim_start_matches('-')
                        .split('=')
                        .next()
                        .unwrap_or_default();
                    PLANNED.iter().any(|p| p.trim_start_matches('-') == name)
                        || (name == "refresh-only")
                })
                .cloned(),
        );
    }
    plan
}

/// The drift check's plan: what `apply` would change, said by its exit status (2:
/// changes), taking no state lock (it changes nothing, and must not hold up a
/// deployment), keeping no plan, and always refreshing (`-refresh=false` and
/// `-refresh-only` dropped).
fn drift_plan_of(apply: Option<&Vec<String>>) -> Vec<String> {
    // Without a refresh, a change made outside Terraform is never seen.
    let mut plan: Vec<String> = plan_of(apply)
        .into_iter()
        .filter(|a| {
            !a.starts_with("-out=") && !a.starts_with("-lock") && !a.starts_with("-refresh")
        })
        .collect();
    plan.extend(args(&["-detailed-exitcode", "-lock=false"]));
    plan
}

/// Where a plan is approved before it is applied, the commands must end with the one
/// `terraform apply`, and no other may apply (a wrapper script, `-chdir=… apply`, a
/// shell): everything before it runs before the approval. Why not, if they do not.
pub fn apply_is_last(commands: &[Vec<String>]) -> Result<(), String> {
    let is_apply = |c: &Vec<String>| {
        c.first().is_some_and(|p| p == "terraform") && c.get(1).is_some_and(|a| a == "apply")
    };
    let Some((last, before)) = commands.split_last() else {
        return Err("no commands".into());
    };
    if !is_apply(last) {
        return Err("the last command must be `terraform apply …` (it becomes the apply of the approved plan; what comes before it runs before the approval)".into());
    }
    if let Some(other) = before
        .iter()
        .find(|c| c.iter().any(|w| w == "apply" || w.contains(" apply")))
    {
        return Err(format!(
            "{other:?} would apply before the plan is approved: only the last command may be `terraform apply`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter().map(|c| args(c)).collect()
    }

    #[test]
    fn only_a_last_terraform_apply_may_apply_where_plans_are_approved() {
        let init = &["terraform", "init", "-input=false"][..];
        let apply = &[
            "terraform",
            "apply",
            "-auto-approve",
            "-var-file=prod.tfvars",
        ][..];
        assert!(apply_is_last(&commands(&[init, apply])).is_ok());
        for (list, want) in [
            (commands(&[apply, init]), "the last command must be"),
            (
                commands(&[&["sh", "-c", "terraform apply -auto-approve"][..], apply]),
                "would apply before",
            ),
            (
                commands(&[&["terraform", "-chdir=prod", "apply"][..], apply]),
                "would apply before",
            ),
            (
                commands(&[init, &["./deploy.sh"][..]]),
                "the last command must be",
            ),
        ] {
            let why = apply_is_last(&list).unwrap_err();
            assert!(why.contains(want), "{list:?}: {why}");
        }
    }

    #[test]
    fn the_plan_takes_the_apply_s_own_options() {
        let apply = args(&[
            "terraform",
            "apply",
            "-auto-approve",
            "-input=false",
            "-var-file=prod.tfvars",
            "-target=module.a",
            "-backup=x",
            "--auto-approve",
        ]);
        assert_eq!(
            plan_of(Some(&apply)),
            args(&[
                "terraform",
                "plan",
                "-input=false",
                "-out=relctl.tfplan",
                "-var-file=prod.tfvars",
                "-target=module.a"
            ])
        );
        assert_eq!(
            drift_plan_of(Some(&apply)),
            args(&[
                "terraform",
                "plan",
                "-input=false",
                "-var-file=prod.tfvars",
                "-target=module.a",
                "-detailed-exitcode",
                "-lock=false"
            ])
        );
    }
}
