//! `relctl iam-policy [--role controller|deployer|approver] [--environment P/E]`:
//! prints the least-privilege IAM policy for this configuration (see [`crate::iam`]),
//! for the Terraform module's `*_policy_json` variables or any other way of making roles.

use clap::{Args, ValueEnum};

use super::{Failure, lookup::Aws};
use crate::{
    config::Config,
    iam::{self, Scope},
    model::EnvKey,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The controller's own role (the ECS task role).
    Controller,
    /// People and pipelines that create releases and request deployments.
    Deployer,
    /// People who approve deployments to protected environments.
    Approver,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    #[arg(long, value_enum, default_value = "controller")]
    pub role: Role,
    /// The policy for the role an environment names in `role_arn` (PROJECT/ENV), in
    /// that role's account, instead of a --role.
    #[arg(long, value_name = "PROJECT/ENV", conflicts_with = "role")]
    pub environment: Option<String>,
    /// The account the tables are in; the caller's (STS) when not given.
    #[arg(long)]
    pub account: Option<String>,
    /// The region; the configured or standard one when not given.
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, default_value = "aws")]
    pub partition: String,
}

impl IamPolicyArgs {
    /// Whether the account or region must come from AWS (STS, the standard chain).
    pub fn needs_aws(&self, config: &Config) -> bool {
        self.account.is_none() || (self.region.is_none() && config.aws.region.is_none())
    }
}

/// With the account and region given: no AWS call at all.
pub fn offline(config: &Config, args: &IamPolicyArgs) -> Result<(), Failure> {
    let (Some(account), Some(region)) = (
        args.account.clone(),
        args.region.clone().or_else(|| config.aws.region.clone()),
    ) else {
        return Err(Failure::refused(
            "--account and a region are needed offline",
        ));
    };
    print(config, args, account, region)
}

pub async fn run(config: &Config, aws: &Aws, args: IamPolicyArgs) -> Result<(), Failure> {
    let region = args
        .region
        .clone()
        .or_else(|| aws.sdk.region().map(|r| r.to_string()))
        .ok_or_else(|| Failure::refused("no region: pass --region or set aws.region"))?;
    let account = match args.account.clone() {
        Some(account) => account,
        None => aws
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                Failure::refused(format!(
                    "cannot learn the account from STS ({}); pass --account",
                    crate::aws::AwsError::from_sdk(e)
                ))
            })?
            .account
            .unwrap_or_default(),
    };
    print(config, &args, account, region)
}

fn print(
    config: &Config,
    args: &IamPolicyArgs,
    account: String,
    region: String,
) -> Result<(), Failure> {
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::refused(format!(
            "--account {account:?} is not a 12-digit AWS account id"
        )));
    }
    let scope = Scope {
        partition: args.partition.clone(),
        region,
        account,
    };
    let policy = match &args.environment {
        Some(target) => {
            let Some((project, env)) = target.split_once('/') else {
                return Err(Failure::refused(format!(
                    "--environment {target:?}: expected PROJECT/ENV"
                )));
            };
            let key = EnvKey::new(project, env);
            config
                .environment(&key)
                .map_err(|e| Failure::refused(e.to_string()))?;
            iam::environment(config, &key.project, &key.environment, &scope).ok_or_else(|| {
                Failure::refused(format!(
                    "{target} has no role_arn: the controller's own policy (--role controller) covers it"
                ))
            })?
        }
        None => match args.role {
            Role::Controller => iam::controller(config, &scope),
            Role::Deployer => iam::deployer(config, &scope),
            Role::Approver => iam::approver(config, &scope),
        },
    };
    println!("{}", serde_json::to_string_pretty(&policy.document())?);
    Ok(())
}
