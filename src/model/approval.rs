//! Approvals that hold: a deployment to a `protected` environment goes ahead only on an
//! approval recorded in the approvals table, where an item's key proves who wrote it
//! (see `store::attestations`). `approved_by` in a deployment entry is shown, never
//! trusted. With `four_eyes`, the approver must be another AWS principal than the one
//! whose own attestation says it requested the deployment.

pub use super::principals::Principal;

/// What the approvals table holds for one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvals {
    /// Who approved it, for the images it would apply now.
    pub approvers: Vec<Principal>,
    /// Who requested it, as their own attestations (written by `relctl deploy`) prove.
    pub requesters: Vec<Principal>,
    /// Approvals that do not count: by principals the environment's `approvers` does
    /// not list.
    pub not_listed: Vec<Principal>,
    /// The environment's `approvers`, where it lists them, and why the list could not
    /// be looked up (then nobody counts).
    pub listed: Vec<String>,
    pub list_error: Option<String>,
}

impl Approvals {
    /// Keeps only the approvals by principals of `approvers` (the configured ARNs, and
    /// their unique ids as IAM resolved them); none where they could not be resolved.
    pub fn only(
        mut self,
        approvers: &[String],
        resolved: &[super::principals::Listed],
        errors: &[String],
    ) -> Self {
        if approvers.is_empty() {
            return self;
        }
        self.listed = approvers.to_vec();
        if !errors.is_empty() {
            self.list_error = Some(errors.join("; "));
        }
        let (admitted, not_listed) = self
            .approvers
            .into_iter()
            .partition(|a| super::principals::admitted(resolved, a));
        self.approvers = admitted;
        self.not_listed = not_listed;
        self
    }
}

/// Why a deployment to a protected environment must still wait, if it must.
pub fn approval_missing(
    approvals: &Approvals,
    release_id: &str,
    environment: &str,
    four_eyes: bool,
) -> Option<String> {
    let approve = format!("`relctl approve {release_id} --env {environment}`");
    if approvals.approvers.is_empty() {
        if approvals.listed.is_empty() {
            return Some(format!(
                "environment {environment} is protected: waiting for an approval ({approve})"
            ));
        }
        let mut why = format!(
            "environment {environment} is protected: waiting for an approval by one of {} ({approve})",
            approvals.listed.join(", ")
        );
        if !approvals.not_listed.is_empty() {
            let who: Vec<&str> = approvals
                .not_listed
                .iter()
                .map(|p| p.arn.as_str())
                .collect();
            why.push_str(&format!(
                "; approvals by {} do not count: not listed in `approvers`",
                who.join(", ")
            ));
        }
        if let Some(error) = &approvals.list_error {
            why.push_str(&format!("; {error}"));
        }
        return Some(why);
    }
    if !four_eyes {
        return None;
    }
    if approvals.requesters.is_empty() {
        return Some(format!(
            "environment {environment} needs four eyes, but who requested this deployment is not recorded; request it with `relctl deploy`, which records the requester's AWS identity"
        ));
    }
    let requester = |a: &Principal| approvals.requesters.iter().any(|r| r.same(a));
    if approvals.approvers.iter().all(requester) {
        let who: Vec<&str> = approvals
            .requesters
            .iter()
            .map(|r| r.arn.as_str())
            .collect();
        return Some(format!(
            "environment {environment} needs four eyes: the approver must not be the requester ({}); another principal must run {approve}",
            who.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: &str) -> Principal {
        Principal {
            id: id.into(),
            arn: format!("arn:aws:iam::1:user/{id}"),
        }
    }

    #[test]
    fn no_approval_waits() {
        let why = approval_missing(&Approvals::default(), "r1", "prod", false).unwrap_or_default();
        assert!(
            why.contains("waiting for an approval (`relctl approve r1 --env prod`)"),
            "{why}"
        );
    }

    #[test]
    fn any_recorded_approval_counts_without_four_eyes() {
        let approvals = Approvals {
            approvers: vec![principal("alice")],
            ..Default::default()
        };
        assert_eq!(approval_missing(&approvals, "r1", "prod", false), None);
    }

    #[test]
    fn four_eyes_needs_a_known_requester_and_another_approver() {
        let mut approvals = Approvals {
            approvers: vec![principal("alice")],
            ..Default::default()
        };
        let unknown = approval_missing(&approvals, "r1", "live", true).unwrap_or_default();
        assert!(unknown.contains("not recorded"), "{unknown}");
        approvals.requesters = vec![principal("alice")];
        let same = approval_missing(&approvals, "r1", "live", true).unwrap_or_default();
        assert!(
            same.contains("the approver must not be the requester"),
            "{same}"
        );
        // Every principal that attested the request counts as a requester.
        approvals.requesters.push(principal("bob"));
        approvals.approvers.push(principal("bob"));
        assert!(approval_missing(&approvals, "r1", "live", true).is_some());
        approvals.approvers.push(principal("carol"));
        assert_eq!(approval_missing(&approvals, "r1", "live", true), None);
    }

    #[test]
    fn only_listed_approvers_count_and_an_unresolved_list_admits_nobody() {
        use crate::model::principals::Listed;
        let listed = [Listed {
            arn: "arn:aws:iam::1:role/rm".into(),
            id: "AROARM".into(),
            role: true,
        }];
        let approvals = || Approvals {
            approvers: vec![principal("AIDAMALLORY"), principal("AROARM:alice")],
            ..Default::default()
        };
        let list = vec!["arn:aws:iam::1:role/rm".to_owned()];
        let kept = approvals().only(&list, &listed, &[]);
        assert_eq!(kept.approvers, vec![principal("AROARM:alice")]);
        assert_eq!(approval_missing(&kept, "r1", "prod", false), None);
        let only_mallory = Approvals {
            approvers: vec![principal("AIDAMALLORY")],
            ..Default::default()
        }
        .only(&list, &listed, &[]);
        let why = approval_missing(&only_mallory, "r1", "prod", false).unwrap_or_default();
        assert!(
            why.contains("waiting for an approval by one of arn:aws:iam::1:role/rm")
                && why.contains("approvals by arn:aws:iam::1:user/AIDAMALLORY do not count"),
            "{why}"
        );
        let unresolved = approvals().only(&list, &[], &["cannot tell who it is".into()]);
        assert!(unresolved.approvers.is_empty());
        let why = approval_missing(&unresolved, "r1", "prod", false).unwrap_or_default();
        assert!(why.ends_with("; cannot tell who it is"), "{why}");
        // No list: every recorded approval counts.
        assert_eq!(approvals().only(&[], &[], &[]).approvers.len(), 2);
    }

    #[test]
    fn sessions_of_one_role_are_told_apart_by_session_name() {
        let a = principal("AROAEXAMPLE:alice");
        let b = principal("AROAEXAMPLE:bob");
        assert!(!a.same(&b));
        assert!(a.same(&a.clone()));
    }
}
