//! IAM's unique ids of the principals the configuration lists (`approvers`,
//! `break_glass`), looked up with `iam:GetUser` / `iam:GetRole` in the controller's
//! account and kept for a while: what lets an attestation's proven `aws:userid` be
//! matched against a listed ARN. A lookup that fails is retried soon; until it
//! succeeds, that principal is not admitted (the others on the list are), and the
//! waiting action says why.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::model::principals::{IamArn, Listed};

/// How long a resolved id is kept: a role deleted and created again under the same
/// name gets a new id, which counts from then on.
const KEPT: Duration = Duration::from_secs(600);
/// How soon a failed lookup is tried again.
const RETRY: Duration = Duration::from_secs(15);

type Cached = (Instant, Result<Listed, String>);

pub struct Resolver {
    iam: aws_sdk_iam::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Resolver {
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        Self {
            iam,
            cache: Mutex::default(),
        }
    }

    /// The principals of `arns` that could be resolved, and why each other could not
    /// (errors a person can act on).
    pub async fn listed(&self, arns: &[String]) -> (Vec<Listed>, Vec<String>) {
        let mut listed = Vec::with_capacity(arns.len());
        let mut errors = Vec::new();
        for arn in arns {
            match self.one(arn).await {
                Ok(found) => listed.push(found),
                Err(why) => errors.push(why),
            }
        }
        (listed, errors)
    }

    async fn one(&self, arn: &str) -> Result<Listed, String> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, found)) = cache.get(arn)
        {
            let fresh = if found.is_ok() { KEPT } else { RETRY };
            if at.elapsed() < fresh {
                return found.clone();
            }
        }
        let found = self.look_up(arn).await;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(arn.to_owned(), (Instant::now(), found.clone()));
        }
        found
    }

    async fn look_up(&self, raw: &str) -> Result<Listed, String> {
        let arn = IamArn::parse(raw)?;
        let failed = |call: &str, e: String| {
            format!(
                "cannot tell who {raw} is (iam:{call}): {e}; until it can be looked up, it does not count"
            )
        };
        let (found_arn, id) = if arn.role {
            let role = self
                .iam
                .get_role()
                .role_name(&arn.name)
                .send()
                .await
                .map_err(|e| failed("GetRole", super::error_message(&e)))?
                .role
                .ok_or_else(|| failed("GetRole", "no role returned".into()))?;
            (role.arn, role.role_id)
        } else {
            let user = self
                .iam
                .get_user()
                .user_name(&arn.name)
                .send()
                .await
                .map_err(|e| failed("GetUser", super::error_message(&e)))?
                .user
                .ok_or_else(|| failed("GetUser", "no user returned".into()))?;
            (user.arn, user.user_id)
        };
        // The name was looked up in this account: another account's principal of the
        // same name is not the one listed.
        if found_arn != raw {
            return Err(format!(
                "cannot tell who {raw} is: IAM in the controller's account knows that name as {found_arn}; list principals of the controller's own account"
            ));
        }
        Ok(Listed {
            arn: raw.to_owned(),
            id,
            role: arn.role,
        })
    }
}
