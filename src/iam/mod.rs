//! Least-privilege IAM policies, from the configuration and what the code calls: the
//! controller's own role, the role it assumes for an environment in another account
//! (`role_arn`), and the deployer and approver roles people use the CLI with.
//!
//! Each statement names one kind of resource and only the actions relctl performs on
//! it, so a statement can be checked action by action against the calls a test saw
//! (`tests/e2e/iam.rs`). Transactions appear as the actions IAM authorises per item
//! (`PutItem`, `UpdateItem`, `ConditionCheckItem`): `TransactWriteItems` is no IAM
//! action.

mod grants;

use std::collections::BTreeSet;

use serde_json::{Value, json};

pub use grants::{approver, controller, deployer, environment};

/// Where the resources live: ARNs are `arn:{partition}:{service}:{region}:{account}:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Scope {
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// The same partition and region in another account (an environment's `role_arn`).
    pub fn in_account(&self, account: &str) -> Self {
        Self {
            account: account.to_owned(),
            ..self.clone()
        }
    }
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: String,
    pub actions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    /// An IAM `Condition` block, as IAM writes it.
    pub condition: Option<Value>,
}

impl Statement {
    pub fn new<A, R>(sid: &str, actions: A, resources: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        Self {
            sid: sid.to_owned(),
            actions: actions.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
            condition: None,
        }
    }

    pub fn when(mut self, condition: Value) -> Self {
        self.condition = Some(condition);
        self
    }
}

/// A policy document: statements with the same actions, resources and condition are
/// one statement; statement ids are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Adds `statement`, merged into one with the same actions and condition, and
    /// nothing when it has no resources.
    pub fn add(&mut self, statement: Statement) {
        if statement.resources.is_empty() || statement.actions.is_empty() {
            return;
        }
        if let Some(same) = self.statements.iter_mut().find(|s| {
            s.sid == statement.sid
                && s.actions == statement.actions
                && s.condition == statement.condition
        }) {
            same.resources.extend(statement.resources);
            return;
        }
        let taken = self
            .statements
            .iter()
            .filter(|s| s.sid.starts_with(&statement.sid))
            .count();
        let mut statement = statement;
        if taken > 0 {
            statement.sid = format!("{}{}", statement.sid, taken + 1);
        }
        self.statements.push(statement);
    }

    /// The JSON document IAM takes.
    pub fn document(&self) -> Value {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let mut statement = json!({
                    "Sid": s.sid,
                    "Effect": "Allow",
                    "Action": s.actions.iter().collect::<Vec<_>>(),
                    "Resource": s.resources.iter().collect::<Vec<_>>(),
                });
                if let Some(condition) = &s.condition {
                    statement["Condition"] = condition.clone();
                }
                statement
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

/// The account id in an IAM role ARN (`arn:aws:iam::123456789012:role/name`).
pub fn account_of(role_arn: &str) -> Option<&str> {
    let mut parts = role_arn.split(':');
    let (arn, _, iam, _, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn == "arn"
        && iam == "iam"
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit()))
    .then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_with_the_same_actions_merge_and_empty_ones_are_dropped() {
        let mut policy = Policy::default();
        policy.add(Statement::new("Params", ["ssm:PutParameter"], ["a"]));
        policy.add(Statement::new("Params", ["ssm:PutParameter"], ["b"]));
        policy.add(Statement::new("Params", ["ssm:GetParameter"], ["c"]));
        policy.add(Statement::new(
            "Nothing",
            ["ssm:GetParameter"],
            Vec::<String>::new(),
        ));
        let document = policy.document();
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Resource"], json!(["a", "b"]));
        assert_eq!(statements[1]["Sid"], "Params2", "sids stay unique");
    }

    #[test]
    fn the_account_of_a_role_arn() {
        assert_eq!(
            account_of("arn:aws:iam::210987654321:role/relctl-deploy"),
            Some("210987654321")
        );
        assert_eq!(account_of("arn:aws:iam::x:role/r"), None);
        assert_eq!(account_of("relctl-deploy"), None);
    }

    fn scope() -> Scope {
        Scope {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }

    #[test]
    fn a_terraform_source_grants_reading_exactly_its_objects() {
        let config = crate::config::Config::from_toml(
            r#"
[[projects]]
id = "tre"
name = "TRE"
[[projects.environments]]
id = "prod"
name = "Production"
actuator = { kind = "terraform", source = { s3 = "s3://team-envs/envs/{environment}.zip" } }
"#,
        )
        .unwrap();
        let scope = scope();
        let document = grants::controller(&config, &scope).document();
        let statement = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "TerraformSources")
            .expect("a TerraformSources statement");
        assert_eq!(
            statement["Resource"],
            json!(["arn:aws:s3:::team-envs/envs/prod.zip"])
        );
        assert_eq!(
            statement["Action"],
            json!(["s3:GetObject", "s3:GetObjectVersion"])
        );
    }

    #[test]
    fn hook_functions_are_granted_invoke_as_named_with_their_versions() {
        let config = crate::config::Config::from_toml(
            r#"
[[projects]]
id = "shop"
name = "Shop"
[[projects.environments]]
id = "prod"
name = "Production"
region = "us-east-1"
[[projects.environments.hooks.before]]
function = "prepare"
[[projects.environments.hooks.after]]
function = "smoke:live"
[[projects.environments.hooks.after]]
function = "123456789012:function:partial"
[[projects.environments.hooks.on_rollback]]
function = "arn:aws:lambda:us-east-1:123456789012:function:page"
"#,
        )
        .unwrap();
        let scope = scope();
        let document = grants::controller(&config, &scope).document();
        let statement = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "InvokeHooks")
            .expect("an InvokeHooks statement");
        assert_eq!(statement["Action"], json!(["lambda:InvokeFunction"]));
        let arn = "arn:aws:lambda:us-east-1:123456789012:function";
        assert_eq!(
            statement["Resource"],
            json!([
                format!("{arn}:page"),
                format!("{arn}:partial"),
                format!("{arn}:prepare"),
                format!("{arn}:prepare:*"),
                format!("{arn}:smoke:live"),
            ])
        );
    }
}
