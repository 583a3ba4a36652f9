//! What a drift check's runner said: the plan's changes read from Terraform's own
//! output, and how the check ended by the runner's exit status. Shared by the local
//! runner's follower and the ECS task's.

use crate::runner::{DRIFTED, INTERRUPTED};

/// The plan's addresses named in a finding; beyond that, a count.
const NAMED: usize = 10;

/// What a drift plan's output says it would change.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// Terraform's `Plan: 1 to add, 2 to change, 0 to destroy.`
    plan: Option<String>,
    addresses: Vec<String>,
    more: usize,
}

impl Findings {
    /// Takes in one output line (control characters already stripped).
    pub(super) fn see(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Plan: ") {
            self.plan = Some(rest.trim_end_matches('.').to_owned());
            return;
        }
        // `# aws_s3_object.page will be updated in-place`, `… must be replaced`.
        let Some(rest) = line.strip_prefix("# ") else {
            return;
        };
        let Some(address) = [" will be ", " must be "]
            .iter()
            .find_map(|verb| rest.split_once(verb).map(|(a, _)| a))
        else {
            return;
        };
        if self.addresses.len() < NAMED {
            self.addresses.push(address.to_owned());
        } else {
            self.more += 1;
        }
    }

    /// In words: `1 to add, 0 to change, 0 to destroy (null_resource.a, …)`.
    pub(super) fn summary(&self) -> String {
        let mut text = self
            .plan
            .clone()
            .unwrap_or_else(|| "the plan has changes".into());
        if !self.addresses.is_empty() {
            let mut named = self.addresses.join(", ");
            if self.more > 0 {
                named.push_str(&format!(" and {} more", self.more));
            }
            text.push_str(&format!(" ({named})"));
        }
        text
    }
}

/// How a drift check's runner ended, by its exit status alone (the runner turns the
/// plan's own 2 into [`DRIFTED`]); `findings` says what would change.
pub(super) fn ended(code: Option<i32>, findings: &Findings) -> Ended {
    match code {
        Some(0) => Ended::Clean,
        Some(DRIFTED) => Ended::Drifted(findings.summary()),
        Some(INTERRUPTED) => Ended::Interrupted,
        Some(code) => Ended::Failed(format!(
            "the drift check's commands failed (exit status {code})"
        )),
        None => Ended::Failed("the drift check's runner was killed".into()),
    }
}

/// How a drift check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    Clean,
    Drifted(String),
    /// Stopped (for a deployment, or a shutdown): it tells nothing.
    Interrupted,
    Failed(String),
}

impl Ended {
    /// As the run record says it, and the check's result.
    pub(super) fn record(self) -> (&'static str, String, Result<Option<String>, String>) {
        match self {
            Self::Clean => (
                "succeeded",
                "no drift: the plan changes nothing".into(),
                Ok(None),
            ),
            Self::Drifted(found) => ("drifted", found.clone(), Ok(Some(found))),
            Self::Interrupted => {
                let why = "the drift check was interrupted before it finished".to_owned();
                ("interrupted", why.clone(), Err(why))
            }
            Self::Failed(why) => ("failed", why.clone(), Err(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_s_output_says_what_drifted() {
        let mut findings = Findings::default();
        for line in [
            "Terraform will perform the following actions:",
            "  # terraform_data.page will be updated in-place",
            "  # aws_s3_object.a must be replaced",
            "# not an address",
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ] {
            findings.see(line);
        }
        assert_eq!(
            findings.summary(),
            "0 to add, 1 to change, 0 to destroy (terraform_data.page, aws_s3_object.a)"
        );
        assert_eq!(
            ended(Some(DRIFTED), &findings),
            Ended::Drifted(findings.summary())
        );
        assert_eq!(ended(Some(0), &findings), Ended::Clean);
        // `terraform init` exiting 2 is a failure, not drift (the runner says drift).
        assert!(matches!(ended(Some(2), &findings), Ended::Failed(_)));
        assert_eq!(ended(Some(INTERRUPTED), &findings), Ended::Interrupted);
        assert!(matches!(ended(None, &findings), Ended::Failed(_)));
    }

    #[test]
    fn a_finding_names_at_most_a_handful_of_addresses() {
        let mut findings = Findings::default();
        for i in 0..13 {
            findings.see(&format!("  # null_resource.r{i} will be created"));
        }
        let summary = findings.summary();
        assert!(
            summary.starts_with("the plan has changes (null_resource.r0,"),
            "{summary}"
        );
        assert!(
            summary.ends_with("null_resource.r9 and 3 more)"),
            "{summary}"
        );
    }
}
