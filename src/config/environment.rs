//! Per-environment configuration: where the desired images are pinned, what applies
//! them, and in which account.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub pin: PinConfig,
    #[serde(default)]
    pub actuator: ActuatorConfig,
    /// Role to assume for this environment's account (cross-account set-ups).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The AWS Region of this environment's pins and actuator (default `[aws] region`).
    #[serde(default)]
    pub region: Option<String>,
    /// Environments a release must have succeeded in first (promotion gate).
    #[serde(default)]
    pub requires: Vec<String>,
    /// On resync, pin the deployed release again where the pins drifted from it.
    #[serde(default)]
    pub self_heal: bool,
    /// A deployment waits (`blocked`) until someone records an approval on it.
    #[serde(default)]
    pub protected: bool,
    /// With `protected`: the approver must not be the requester.
    #[serde(default)]
    pub four_eyes: bool,
    /// With `protected`: only these IAM users and roles (any session of a role) may
    /// approve. Empty: anyone the approvers' policy lets record an approval.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// IAM users and roles that may deploy during a freeze or a pause
    /// (`relctl deploy --break-glass --reason …`).
    #[serde(default)]
    pub break_glass: Vec<String>,
    /// Windows in which nothing is applied here: deployments wait `frozen` until the end.
    #[serde(default)]
    pub freeze: Vec<FreezeWindow>,
    /// After the apply is verified: CloudWatch alarms watched for a bake time.
    #[serde(default)]
    pub verify: super::promotion::Verify,
    /// A deployment that failed after its apply started: `stay`, or `rollback` to the
    /// release that last succeeded here.
    #[serde(default)]
    pub on_failure: super::promotion::OnFailure,
    /// An automatic rollback on a `protected` environment goes ahead without an
    /// approval.
    #[serde(default)]
    pub rollback_skips_approval: bool,
    /// A release that succeeded in this environment and ran there for `soak` with its
    /// alarms quiet is deployed here by relctl.
    #[serde(default)]
    pub auto_promote_from: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub soak: Duration,
    /// The longest a deployment may take here, from going in progress to its end,
    /// across every attempt (waiting for a person to approve a plan aside): past it,
    /// it fails with "deadline passed" (its run stopped).
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// For the ECS and Lambda actuators: waves of the release's services, each applied
    /// and verified before the next (`[["migrate"], ["api", "web"]]`); services not
    /// named go in a last wave.
    #[serde(default)]
    pub order: Vec<Vec<String>>,
    /// Commands run before and after a deployment, and before a rollback.
    #[serde(default)]
    pub hooks: super::hooks::Hooks,
    /// Where this environment's deployment outcomes are told (beside `[notify]`).
    #[serde(default)]
    pub notify: super::promotion::Notify,
}

/// `{ from = "2024-12-20T18:00:00Z", until = "2025-01-02T08:00:00Z", reason = "…" }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub from: chrono::DateTime<chrono::Utc>,
    pub until: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Environment {
    /// The freeze window `now` falls in, if any.
    pub fn frozen_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&FreezeWindow> {
        self.freeze.iter().find(|w| w.from <= now && now < w.until)
    }
}

/// Where the desired images are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PinConfig {
    /// RFC 013: `/{project}/images/{environment}/{service}`, one parameter per service.
    /// With `label`, each written version gets the SSM parameter label `release-{id}`.
    SsmParameters {
        #[serde(default)]
        label: bool,
    },
    /// One JSON document in one parameter (Terraform tfvars kept in SSM), patched at
    /// `key_path` (with `{service}`), every other key kept as it was.
    SsmJsonDocument {
        /// Parameter name; `{project}` and `{environment}` are filled in.
        parameter: String,
        /// Dotted path to each service's value, e.g. `image_versions.{service}`.
        key_path: String,
        #[serde(default)]
        value: JsonValue,
        /// Key bumped (numbers +1, otherwise set to the release id) when anything changes.
        #[serde(default)]
        version_key: Option<String>,
        /// Refuse a release whose tag is a lower version than the one pinned.
        #[serde(default)]
        refuse_downgrade: bool,
    },
    /// Moves a floating ECR tag (default `env.{environment}`) to the release image's
    /// manifest, as weco-deploy did.
    EcrTag {
        #[serde(default = "default_ecr_tag")]
        tag: String,
    },
}

impl Default for PinConfig {
    fn default() -> Self {
        Self::SsmParameters { label: false }
    }
}

fn default_ecr_tag() -> String {
    "env.{environment}".into()
}

/// What a JSON document pin writes for each service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonValue {
    #[default]
    Uri,
    Tag,
}

/// What applies the pinned images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActuatorConfig {
    /// Pin only: something else (a scheduled Terraform run, a human) applies.
    #[default]
    None,
    /// Runs commands (by default `terraform init` then `terraform apply`) in `dir`, or in
    /// a fresh workspace with the module fetched from `source`.
    Terraform {
        /// The module on the controller's own disk (single-host set-ups, the demo).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<PathBuf>,
        /// The module as a zip archive in S3, fetched for each run at the revision the
        /// run then records (see `crate::runner::source`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<crate::runner::source::SourceConfig>,
        /// Where runs with a `source` unpack it, each in a directory of its own.
        #[serde(default = "default_scratch")]
        scratch: PathBuf,
        /// Where the runs happen: here (`local`), or one ECS task each (`ecs_task`).
        #[serde(default)]
        runner: super::runner::RunnerConfig,
        #[serde(default = "default_terraform_commands")]
        commands: Vec<Vec<String>>,
        /// Extra environment for the commands (beside RELCTL_PROJECT, …).
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default = "thirty_minutes", with = "humantime_serde")]
        timeout: Duration,
        /// After apply, `terraform plan -detailed-exitcode` must find nothing to change.
        #[serde(default)]
        verify_plan: bool,
        /// How often the deployed release is planned again (`terraform plan
        /// -detailed-exitcode`, in a runner, without the state lock) to find drift:
        /// changes made outside relctl. None: never.
        #[serde(
            default,
            with = "humantime_serde",
            skip_serializing_if = "Option::is_none"
        )]
        drift_check: Option<Duration>,
        /// How long an interrupted command gets to stop cleanly (Terraform releases its
        /// state lock) before SIGTERM and SIGKILL.
        #[serde(default = "thirty_seconds", with = "humantime_serde")]
        interrupt_grace: Duration,
    },
    /// Starts a CodePipeline execution and follows it.
    Codepipeline {
        pipeline: String,
        /// V2 pipeline variables; `{release_id}`, `{project}`, `{environment}` are filled in.
        #[serde(default)]
        variables: BTreeMap<String, String>,
        #[serde(default = "fifteen_seconds", with = "humantime_serde")]
        poll_interval: Duration,
        #[serde(default = "two_hours", with = "humantime_serde")]
        timeout: Duration,
    },
    /// Forces new deployments of the ECS services whose image changed.
    Ecs {
        cluster: String,
        /// release service id → ECS service names.
        #[serde(default)]
        services: BTreeMap<String, Vec<String>>,
        /// `tags`: find services by their `deployment:service` and `deployment:env` tags.
        #[serde(default)]
        discover: Option<Discover>,
        #[serde(default = "fifteen_seconds", with = "humantime_serde")]
        poll_interval: Duration,
        #[serde(default = "thirty_minutes", with = "humantime_serde")]
        timeout: Duration,
    },
    /// Updates Lambda functions' code to the image.
    Lambda {
        /// release service id → function name.
        functions: BTreeMap<String, String>,
        #[serde(default = "five_seconds", with = "humantime_serde")]
        poll_interval: Duration,
        #[serde(default = "ten_minutes", with = "humantime_serde")]
        timeout: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discover {
    Tags,
}

fn default_scratch() -> PathBuf {
    std::env::temp_dir().join("relctl-runs")
}

fn default_terraform_commands() -> Vec<Vec<String>> {
    [
        vec!["terraform", "init", "-input=false"],
        vec!["terraform", "apply", "-auto-approve", "-input=false"],
    ]
    .into_iter()
    .map(|c| c.into_iter().map(String::from).collect())
    .collect()
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn thirty_minutes() -> Duration {
    Duration::from_secs(1800)
}
fn two_hours() -> Duration {
    Duration::from_secs(7200)
}

impl ActuatorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Terraform { .. } => "terraform",
            Self::Codepipeline { .. } => "codepipeline",
            Self::Ecs { .. } => "ecs",
            Self::Lambda { .. } => "lambda",
        }
    }
}

impl Environment {
    /// Adds every problem with this environment's pin and actuator to `problems`.
    pub(super) fn validate(&self, at: &str, problems: &mut Vec<String>) {
        match &self.pin {
            PinConfig::SsmJsonDocument {
                parameter,
                key_path,
                ..
            } => {
                if !parameter.starts_with('/') && parameter.contains('/') {
                    problems.push(format!(
                        "{at}.pin.parameter: a hierarchical name must start with '/'"
                    ));
                }
                if !key_path.contains("{service}") {
                    problems.push(format!("{at}.pin.key_path: must contain {{service}}"));
                }
                if key_path.split('.').any(str::is_empty) {
                    problems.push(format!("{at}.pin.key_path: has an empty segment"));
                }
            }
            PinConfig::EcrTag { tag } if tag.is_empty() => {
                problems.push(format!("{at}.pin.tag: must not be empty"));
            }
            _ => {}
        }
        if let ActuatorConfig::Terraform { dir, source, .. } = &self.actuator {
            match (dir, source) {
                (Some(_), Some(_)) | (None, None) => problems.push(format!(
                    "{at}.actuator: terraform needs exactly one of `dir` (a directory on this host) or `source` (an s3:// zip archive)"
                )),
                (None, Some(source)) => problems.extend(
                    source
                        .problems()
                        .into_iter()
                        .map(|p| format!("{at}.actuator.source.{p}")),
                ),
                _ => {}
            }
        }
        if let ActuatorConfig::Terraform { commands, .. } = &self.actuator
            && self.protected
            && let Err(why) = crate::actuator::command::commands::apply_is_last(commands)
        {
            problems.push(format!(
                "{at}.actuator.commands: a protected environment approves the plan before it is applied: {why}"
            ));
        }
        if self.verify.poll_interval < Duration::from_secs(1) {
            problems.push(format!("{at}.verify.poll_interval: at least \"1s\""));
        }
        if let ActuatorConfig::Terraform {
            commands,
            drift_check: Some(every),
            ..
        } = &self.actuator
        {
            if let Err(why) = crate::actuator::command::commands::apply_is_last(commands) {
                problems.push(format!(
                    "{at}.actuator.drift_check: the drift check plans what the last command (`terraform apply`) would do: {why}"
                ));
            }
            if *every < Duration::from_secs(5) {
                problems.push(format!(
                    "{at}.actuator.drift_check: at least \"5s\" (each check is a whole `terraform plan`; hours are usual)"
                ));
            }
        }
        if let ActuatorConfig::Terraform {
            runner: super::runner::RunnerConfig::EcsTask(task),
            source,
            ..
        } = &self.actuator
        {
            if source.is_none() {
                problems.push(format!(
                    "{at}.actuator.runner: an ecs_task runner fetches the module itself: give the actuator a `source` (an s3:// zip archive), not a `dir`"
                ));
            }
            if self.protected && task.plans.is_none() {
                problems.push(format!(
                    "{at}.actuator.runner.plans: a protected environment approves the Terraform plan before it is applied; runner tasks share no disk, so name where plans are kept: `plans = \"s3://bucket/prefix\"`"
                ));
            }
            problems.extend(
                task.problems()
                    .into_iter()
                    .map(|p| format!("{at}.actuator.runner.{p}")),
            );
        }
        match &self.actuator {
            ActuatorConfig::Terraform { commands, .. }
                if commands.is_empty() || commands.iter().any(Vec::is_empty) =>
            {
                problems.push(format!(
                    "{at}.actuator.commands: each command needs a program"
                ));
            }
            ActuatorConfig::Ecs {
                services, discover, ..
            } if services.is_empty() && discover.is_none() => {
                problems.push(format!(
                    "{at}.actuator: ecs needs `services` or `discover = \"tags\"`"
                ));
            }
            ActuatorConfig::Lambda { functions, .. } if functions.is_empty() => {
                problems.push(format!("{at}.actuator.functions: must name at least one"));
            }
            _ => {}
        }
        for (i, window) in self.freeze.iter().enumerate() {
            if window.from >= window.until {
                problems.push(format!("{at}.freeze[{i}]: `from` must be before `until`"));
            }
        }
        if let Some(arn) = &self.role_arn
            && !arn.starts_with("arn:")
        {
            problems.push(format!("{at}.role_arn: {arn:?} is not an ARN"));
        }
        if let Some(region) = &self.region
            && !is_region(region)
        {
            problems.push(format!(
                "{at}.region: {region:?} is not an AWS Region (such as \"eu-west-2\" or \"us-east-1\")"
            ));
        }
        for (key, list) in [
            ("approvers", &self.approvers),
            ("break_glass", &self.break_glass),
        ] {
            for (i, arn) in list.iter().enumerate() {
                if let Err(why) = crate::model::principals::IamArn::parse(arn) {
                    problems.push(format!("{at}.{key}[{i}]: {why}"));
                }
            }
        }
        self.hooks.check(at, problems);
        for name in &self.verify.observe_alarms {
            if self.verify.alarms.contains(name) {
                problems.push(format!(
                    "{at}.verify.observe_alarms: {name:?} is in `alarms` too; an alarm is enforced or only observed"
                ));
            }
        }
        if !self.order.is_empty() {
            if !matches!(
                self.actuator,
                ActuatorConfig::Ecs { .. } | ActuatorConfig::Lambda { .. }
            ) {
                problems.push(format!(
                    "{at}.order: waves of services are for the ecs and lambda actuators"
                ));
            }
            if matches!(self.pin, PinConfig::EcrTag { .. }) {
                problems.push(format!(
                    "{at}.order: waves need pinned images (`pin = ssm_parameters` or `ssm_json_document`): a floating ECR tag moves for every service at once, so a later wave's tasks could start the new image early"
                ));
            }
            // Where the actuator names its services, a wave names only those (a typo
            // would quietly move a service to the last wave).
            let named: Option<Vec<&String>> = match &self.actuator {
                ActuatorConfig::Ecs {
                    services,
                    discover: None,
                    ..
                } => Some(services.keys().collect()),
                ActuatorConfig::Lambda { functions, .. } => Some(functions.keys().collect()),
                _ => None,
            };
            if let Some(named) = named {
                for service in self.order.iter().flatten() {
                    if !named.contains(&service) {
                        problems.push(format!(
                            "{at}.order: {service:?} is not a service the actuator names"
                        ));
                    }
                }
            }
            let mut seen = std::collections::HashSet::new();
            for service in self.order.iter().flatten() {
                if !seen.insert(service) {
                    problems.push(format!(
                        "{at}.order: service {service:?} is in more than one wave"
                    ));
                }
            }
        }
        if !self.approvers.is_empty() && !self.protected {
            problems.push(format!(
                "{at}.approvers: name who may approve a deployment to a protected environment; set `protected = true`"
            ));
        }
    }
}

/// An AWS Region's name: lower-case letters, digits and dashes, in at least three
/// parts (`eu-west-2`, `us-gov-west-1`).
pub fn is_region(region: &str) -> bool {
    region.len() <= 32
        && region.split('-').count() >= 3
        && region.split('-').all(|part| !part.is_empty())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
