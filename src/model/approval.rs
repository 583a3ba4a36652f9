//! Approvals that hold: a deployment to a `protected` environment goes ahead only on an
//! approval recorded in the approvals table, where an item's key proves who wrote it
//! (see `store::attestations`). `approved_by` in a deployment entry is shown, never
//! trusted. With `four_eyes`, the approver must be another AWS principal than the one
//! whose own attestation says it requested the deployment.

/// An AWS principal as IAM identifies it: `aws:userid` (`AIDA…` for a user,
/// `AROA…:session-name` for an assumed role), and its ARN, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub arn: String,
}

impl Principal {
    /// The same principal. An assumed role's sessions are told apart by session name,
    /// which is what IAM Identity Center and roles that require
    /// `sts:RoleSessionName = ${aws:username}` make a person's identity.
    pub fn same(&self, other: &Principal) -> bool {
        self.id == other.id
    }
}

/// What the approvals table holds for one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvals {
    /// Who approved it, for the images it would apply now.
    pub approvers: Vec<Principal>,
    /// Who requested it, as their own attestations (written by `relctl deploy`) prove.
    pub requesters: Vec<Principal>,
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
        return Some(format!(
            "environment {environment} is protected: waiting for an approval ({approve})"
        ));
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
            requesters: vec![],
        };
        assert_eq!(approval_missing(&approvals, "r1", "prod", false), None);
    }

    #[test]
    fn four_eyes_needs_a_known_requester_and_another_approver() {
        let mut approvals = Approvals {
            approvers: vec![principal("alice")],
            requesters: vec![],
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
    fn sessions_of_one_role_are_told_apart_by_session_name() {
        let a = principal("AROAEXAMPLE:alice");
        let b = principal("AROAEXAMPLE:bob");
        assert!(!a.same(&b));
        assert!(a.same(&a.clone()));
    }
}
