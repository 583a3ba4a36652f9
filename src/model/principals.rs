//! Principals named in the configuration by IAM ARN (`approvers`, `break_glass`) and how
//! an attestation's writer is matched against them. The approvals table proves a
//! writer's `aws:userid` (its key), never its ARN (an attribute the writer chose), so a
//! listed ARN counts only once IAM has said which unique id it has: a user's `AIDA…`
//! (matched exactly), a role's `AROA…` (matched by each of its sessions,
//! `AROA…:session`).

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

/// A user or role ARN: `arn:{partition}:iam::{account}:{user|role}/{path/}{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamArn {
    pub raw: String,
    pub partition: String,
    pub account: String,
    pub role: bool,
    /// The last segment of the path: what GetUser / GetRole take.
    pub name: String,
}

impl IamArn {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{raw:?} is not an IAM user or role ARN ({why}); write it as arn:aws:iam::123456789012:role/name or arn:aws:iam::123456789012:user/name"
            )
        };
        let mut parts = raw.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("not arn:…:iam::account:…"));
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account is not 12 digits"));
        }
        let (role, path) = if let Some(path) = resource.strip_prefix("role/") {
            (true, path)
        } else if let Some(path) = resource.strip_prefix("user/") {
            (false, path)
        } else {
            return Err(bad("neither user/ nor role/"));
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid) || path.contains('*') {
            return Err(bad("the name is not an IAM name"));
        }
        Ok(Self {
            raw: raw.to_owned(),
            partition: partition.to_owned(),
            account: account.to_owned(),
            role,
            name: name.to_owned(),
        })
    }

    /// Whether a caller whose ARN is `caller` (as `sts:GetCallerIdentity` says) is this
    /// principal: the user itself, or a session of the role. For the CLI, which refuses
    /// at once what the controller would; the controller matches unique ids.
    pub fn names(&self, caller: &str) -> bool {
        if caller == self.raw {
            return true;
        }
        let session = format!(
            "arn:{}:sts::{}:assumed-role/{}/",
            self.partition, self.account, self.name
        );
        self.role && caller.starts_with(&session)
    }
}

/// A listed principal as IAM resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub arn: String,
    /// The user's or role's unique id.
    pub id: String,
    pub role: bool,
}

impl Listed {
    /// Whether the writer `who` (its proven `aws:userid`) is this principal.
    pub fn admits(&self, who: &Principal) -> bool {
        if self.role {
            who.id
                .strip_prefix(self.id.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
        } else {
            who.id == self.id
        }
    }
}

/// Whether `who` is one of `listed`.
pub fn admitted(listed: &[Listed], who: &Principal) -> bool {
    listed.iter().any(|l| l.admits(who))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_role_arns_parse_and_anything_else_is_refused_saying_how() {
        let role = IamArn::parse("arn:aws:iam::123456789012:role/teams/release-managers")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(role.role);
        assert_eq!(role.name, "release-managers");
        assert!(
            !IamArn::parse("arn:aws:iam::123456789012:user/alice")
                .unwrap()
                .role
        );
        for bad in [
            "release-managers",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:group/x",
            "arn:aws:sts::123456789012:assumed-role/x/s",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/*",
        ] {
            let why = IamArn::parse(bad).unwrap_err();
            assert!(why.contains("arn:aws:iam::123456789012:role/name"), "{why}");
        }
    }

    #[test]
    fn a_role_names_its_sessions_and_a_user_itself() {
        let role = IamArn::parse("arn:aws:iam::123456789012:role/teams/rm").unwrap();
        assert!(role.names("arn:aws:sts::123456789012:assumed-role/rm/alice"));
        assert!(!role.names("arn:aws:sts::123456789012:assumed-role/rm2/alice"));
        assert!(!role.names("arn:aws:sts::999999999999:assumed-role/rm/alice"));
        let user = IamArn::parse("arn:aws:iam::123456789012:user/alice").unwrap();
        assert!(user.names("arn:aws:iam::123456789012:user/alice"));
        assert!(!user.names("arn:aws:iam::123456789012:user/alice2"));
    }

    #[test]
    fn unique_ids_match_a_user_exactly_and_a_role_by_its_sessions() {
        let who = |id: &str| Principal {
            id: id.into(),
            arn: "whatever the writer claimed".into(),
        };
        let role = Listed {
            arn: "r".into(),
            id: "AROAROLE".into(),
            role: true,
        };
        assert!(role.admits(&who("AROAROLE:alice")));
        assert!(!role.admits(&who("AROAROLE2:alice")));
        assert!(!role.admits(&who("AROAROLE")));
        let user = Listed {
            arn: "u".into(),
            id: "AIDAUSER".into(),
            role: false,
        };
        assert!(user.admits(&who("AIDAUSER")));
        assert!(!user.admits(&who("AIDAUSER:x")));
    }
}
