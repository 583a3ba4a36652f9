//! Where a Terraform actuator's runs happen: `runner = { kind = "local" }` (the default:
//! `relctl runner` as a child process of the controller) or `runner = { kind =
//! "ecs_task", … }`, one ECS task per run with its own task role, so the controller
//! holds none of the permissions Terraform needs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunnerConfig {
    #[default]
    Local,
    EcsTask(Box<EcsTaskRunner>),
}

/// One ECS task per run, started from `task_definition` (the runner image: relctl plus
/// a pinned Terraform) with the command and the run's environment as overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsTaskRunner {
    pub cluster: String,
    /// Family, `family:revision` or ARN.
    pub task_definition: String,
    /// The container in it that runs `relctl runner`.
    #[serde(default = "default_container")]
    pub container: String,
    /// Its command (after the image's entrypoint, which is relctl).
    #[serde(default = "default_command")]
    pub command: Vec<String>,
    /// awsvpc networking (Fargate): where the task runs.
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    /// `FARGATE` (default) or `EC2`; empty leaves it to the cluster's capacity providers.
    #[serde(default = "default_launch_type")]
    pub launch_type: String,
    /// The container's awslogs group and stream prefix: the output's tail is read from
    /// `{log_stream_prefix}/{container}/{task id}`.
    pub log_group: String,
    #[serde(default = "default_container")]
    pub log_stream_prefix: String,
    /// The roles the task definition names (task role, execution role): RunTask passes
    /// them, so the controller is granted `iam:PassRole` on exactly these, to ECS only.
    #[serde(default)]
    pub pass_roles: Vec<String>,
    /// The task's writable directory (a volume: the root filesystem is read-only),
    /// where each run's workspace is made.
    #[serde(default = "default_scratch")]
    pub scratch: std::path::PathBuf,
    /// Where a protected environment's plans are kept between plan and apply
    /// (`s3://bucket/prefix`; tasks share no disk). The runner's role reads and writes
    /// it; the controller never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<String>,
    /// How often a running task is looked at.
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_container() -> String {
    "runner".into()
}

fn default_command() -> Vec<String> {
    vec!["runner".into()]
}

fn default_scratch() -> std::path::PathBuf {
    "/scratch".into()
}

fn default_launch_type() -> String {
    "FARGATE".into()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl EcsTaskRunner {
    /// What is wrong with it, for `relctl validate` and the controller's start.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("cluster", &self.cluster),
            ("task_definition", &self.task_definition),
            ("container", &self.container),
            ("log_group", &self.log_group),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{name}: must not be empty"));
            }
        }
        if self.command.is_empty() {
            problems
                .push("command: must name what the container runs (default [\"runner\"])".into());
        }
        if !["", "FARGATE", "EC2", "EXTERNAL"].contains(&self.launch_type.as_str()) {
            problems.push(format!(
                "launch_type: {:?} is not FARGATE, EC2 or EXTERNAL",
                self.launch_type
            ));
        }
        if let Some(plans) = &self.plans
            && !plans
                .strip_prefix("s3://")
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        {
            problems.push(format!("plans: {plans:?} is not an s3://bucket/prefix"));
        }
        if self.pass_roles.is_empty() {
            problems.push("pass_roles: name the runner task definition's task and execution roles (RunTask passes them; the controller is granted iam:PassRole on exactly these)".into());
        }
        if self.launch_type == "FARGATE" && self.subnets.is_empty() {
            problems.push("subnets: a Fargate task needs at least one".into());
        }
        problems
    }
}
