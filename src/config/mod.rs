//! Operator configuration: built-in defaults, then a TOML file (`--config` or
//! `RELCTL_CONFIG`), then `RELCTL_*` environment variables (`__` for nesting), layered
//! with figment into typed structs and validated once at start-up.
//!
//! Which projects and environments exist is decided here, never by a record.

use std::{net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use crate::model::{EnvKey, Refusal};

pub mod environment;
pub mod hooks;
pub mod load;
pub mod promotion;
pub mod runner;
mod validate;

pub use environment::{ActuatorConfig, Environment, JsonValue, PinConfig};

/// Every problem found in the configuration, each naming its key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration ({}):\n{}", count(.0.len()), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl ConfigError {
    pub fn problems(&self) -> &[String] {
        match self {
            Self::Invalid(problems) => problems,
        }
    }
}

/// "1 problem", "3 problems".
pub fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub aws: Aws,
    pub tables: Tables,
    pub controller: Controller,
    pub lease: Lease,
    pub http: Http,
    pub log: Log,
    /// Where every environment's deployment outcomes are told.
    #[serde(default)]
    pub notify: promotion::Notify,
    #[serde(default)]
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aws {
    /// Falls back to the standard chain (AWS_REGION, profile) when unset.
    pub region: Option<String>,
    /// Deadline for one AWS API call, retries included.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Per-service endpoint overrides (`codepipeline`, `ecs`, `lambda`, `ecr`, `ssm`):
    /// VPC endpoints, or emulators. AWS_ENDPOINT_URL covers every service at once.
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Overrides of the client-side rate limits, requests per second (0 turns one off):
    /// `"service.Operation"` sets that operation's quota (shared with the operations
    /// AWS counts with it), `service` one bucket for the whole service. The defaults
    /// mirror AWS's per-operation quotas (`aws::limit::quotas::DEFAULTS`).
    #[serde(default)]
    pub rate_limits: std::collections::BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tables {
    pub releases: String,
    pub state: String,
    /// Approvals and requests, keyed by the writer's AWS identity (see the README's
    /// security model).
    #[serde(default = "default_approvals_table")]
    pub approvals: String,
}

fn default_approvals_table() -> String {
    "relctl-approvals".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// How often each stream shard is polled; never below 250ms (DynamoDB Streams
    /// allows about 5 reads a second per shard, shared by every reader).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Full resync period, jittered by up to a tenth either way.
    #[serde(with = "humantime_serde")]
    pub resync_interval: Duration,
    /// Environments resynced per second: a resync must not eat the account's API quota.
    pub resync_rate: f64,
    pub concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Retry delays for a failing environment: exponential from min to max, jittered.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Entries kept in each environment's history in the state table.
    pub history_limit: usize,
    /// Failed attempts at one intent before it is marked `failed` for good.
    pub max_attempts: u32,
    /// How far ahead of the controller's clock an entry's `date_created` may be; one
    /// further ahead is refused (it would supersede every real deployment until then).
    #[serde(with = "humantime_serde", default = "five_minutes")]
    pub max_clock_skew: Duration,
    /// The `relctl` binary that command (Terraform) runs are started with
    /// (`relctl runner`); default: the controller's own.
    #[serde(default)]
    pub runner: Option<std::path::PathBuf>,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(with = "humantime_serde")]
    pub renew_every: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// The status page, `/metrics`, `/healthz` and `/readyz`.
    pub listen: SocketAddr,
    /// Also serve `/metrics`, `/healthz` and `/readyz` (not the page) here: for
    /// Prometheus and the ECS health check, while `listen` stays on loopback or behind
    /// an authenticating proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<SocketAddr>,
    /// Open connections per listener; one more is closed at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long any one connection may stay open, however busy.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
    /// Also print one CloudWatch Embedded Metric Format line per reconcile on stdout,
    /// for teams without Prometheus (CloudWatch Logs turns them into metrics).
    #[serde(default)]
    pub emf: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// Per-project releases table (the older tooling's `wellcome-releases-{project}`).
    #[serde(default)]
    pub releases_table: Option<String>,
    /// Turns `ref.<sha>` images into URIs: `{service}`, `{tag}`, `{project}`.
    #[serde(default)]
    pub image_uri_template: Option<String>,
    #[serde(default)]
    pub environments: Vec<Environment>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            notify: Default::default(),
            aws: Aws {
                region: None,
                call_timeout: Duration::from_secs(30),
                endpoints: Default::default(),
                rate_limits: Default::default(),
            },
            tables: Tables {
                releases: "relctl-releases".into(),
                state: "relctl-state".into(),
                approvals: default_approvals_table(),
            },
            controller: Controller {
                poll_interval: Duration::from_millis(250),
                resync_interval: Duration::from_secs(300),
                resync_rate: 10.0,
                concurrency: 8,
                drain_timeout: Duration::from_secs(25),
                backoff_min: Duration::from_secs(1),
                backoff_max: Duration::from_secs(300),
                history_limit: 20,
                max_attempts: 10,
                max_clock_skew: five_minutes(),
                runner: None,
            },
            lease: Lease {
                duration: Duration::from_secs(15),
                renew_every: Duration::from_secs(5),
            },
            http: Http {
                listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
                ops_listen: None,
                max_connections: 256,
                header_timeout: Duration::from_secs(5),
                connection_timeout: Duration::from_secs(60),
            },
            log: Log {
                format: LogFormat::Text,
                emf: false,
            },
            projects: Vec::new(),
        }
    }
}

impl Config {
    /// Defaults → `path` (if given) → the TOML in `RELCTL_CONFIG_TOML` (for containers,
    /// where a file is awkward) → `RELCTL_*` environment, then [`Config::validate`].
    /// Every problem is reported at once, each naming its key path (and, for TOML,
    /// `file:line`); see [`load`].
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        load::load(path)
    }

    /// Parses a TOML document over the defaults; for tests and examples.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        load::from_toml(text)
    }

    /// Every problem found, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        self.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    pub fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// The environment for `key`, or the refusal that says which ones exist.
    pub fn environment(&self, key: &EnvKey) -> Result<(&Project, &Environment), Refusal> {
        let project = self
            .project(&key.project)
            .ok_or_else(|| Refusal::UnknownProject {
                project: key.project.clone(),
                known: list(self.projects.iter().map(|p| p.id.as_str())),
            })?;
        let env = project
            .environments
            .iter()
            .find(|e| e.id == key.environment)
            .ok_or_else(|| Refusal::UnknownEnvironment {
                project: key.project.clone(),
                environment: key.environment.clone(),
                known: list(project.environments.iter().map(|e| e.id.as_str())),
            })?;
        Ok((project, env))
    }

    /// Every configured (project, environment).
    pub fn keys(&self) -> impl Iterator<Item = EnvKey> + '_ {
        self.projects.iter().flat_map(|p| {
            p.environments
                .iter()
                .map(move |e| EnvKey::new(&p.id, &e.id))
        })
    }

    /// The releases table holding `project`'s records.
    pub fn releases_table<'a>(&'a self, project: &'a Project) -> &'a str {
        project
            .releases_table
            .as_deref()
            .unwrap_or(&self.tables.releases)
    }

    /// Every distinct releases table the configured projects use (the default table
    /// alone when there are no projects yet).
    pub fn releases_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = self
            .projects
            .iter()
            .map(|p| self.releases_table(p).to_owned())
            .collect();
        if tables.is_empty() {
            tables.push(self.tables.releases.clone());
        }
        tables.sort();
        tables.dedup();
        tables
    }
}

fn list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [aws]
        region = "eu-west-1"
        [tables]
        releases = "relctl-releases"
        state = "relctl-state"
        [[projects]]
        id = "bugfarm"
        name = "Bug farm"
        releases_table = "wellcome-releases-bugfarm"
        environments = [ { id = "stage", name = "Staging" }, { id = "prod", name = "Production" } ]
    "#;

    #[test]
    fn the_documented_example_loads_with_defaults_filled_in() {
        let config = Config::from_toml(EXAMPLE).unwrap();
        assert_eq!(config.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.controller.poll_interval, Duration::from_millis(250));
        assert_eq!(
            config.projects[0].environments[1].pin,
            PinConfig::SsmParameters { label: false }
        );
        assert_eq!(config.releases_tables(), vec!["wellcome-releases-bugfarm"]);
    }

    #[test]
    fn an_unknown_environment_lists_the_configured_ones() {
        let config = Config::from_toml(EXAMPLE).unwrap();
        let refusal = config
            .environment(&EnvKey::new("bugfarm", "qa"))
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "environment \"qa\" is not configured for project \"bugfarm\"; configured environments: stage, prod"
        );
    }

    #[test]
    fn incident_control_settings_are_checked() {
        let bad = r#"
            [[projects]]
            id = "a"
            name = "x"
            [[projects.environments]]
            id = "prod"
            name = "P"
            region = "Mars"
            approvers = ["release-managers"]
            break_glass = ["arn:aws:iam::123456789012:group/oncall"]
        "#;
        let message = Config::from_toml(bad).unwrap_err().to_string();
        for expected in [
            "projects[0].environments[0].region: \"Mars\" is not an AWS Region",
            "projects[0].environments[0].approvers[0]: \"release-managers\" is not an IAM user or role ARN",
            "projects[0].environments[0].break_glass[0]:",
            "projects[0].environments[0].approvers: name who may approve a deployment to a protected environment; set `protected = true`",
        ] {
            assert!(message.contains(expected), "{expected}\n{message}");
        }
    }

    #[test]
    fn a_hook_is_a_command_or_a_lambda_function_and_says_which_when_wrong() {
        let bad = r#"
            [[projects]]
            id = "a"
            name = "x"
            [[projects.environments]]
            id = "prod"
            name = "P"
            [[projects.environments.hooks.before]]
            name = "nothing"
            [[projects.environments.hooks.after]]
            command = ["./smoke.sh"]
            function = "smoke"
            [[projects.environments.hooks.after]]
            function = "smoke; rm"
            [[projects.environments.hooks.on_rollback]]
            function = "page"
            dir = "/srv"
        "#;
        let message = Config::from_toml(bad).unwrap_err().to_string();
        for expected in [
            "projects[0].environments[0].hooks.before[0]: give the program to run",
            "projects[0].environments[0].hooks.after[0]: a hook is a command or a Lambda function, not both",
            "projects[0].environments[0].hooks.after[1].function: \"smoke; rm\" is not a Lambda function name or ARN",
            "projects[0].environments[0].hooks.on_rollback[0]: dir and env are a command's",
        ] {
            assert!(message.contains(expected), "{expected}\n{message}");
        }
    }

    #[test]
    fn waves_name_services_the_actuator_has_and_need_pinned_images() {
        let bad = r#"
            [[projects]]
            id = "a"
            name = "x"
            [[projects.environments]]
            id = "stage"
            name = "S"
            order = [["migrate"], ["api", "migrate"]]
            actuator = { kind = "ecs", cluster = "c", services = { api = ["api"] } }
            [[projects.environments]]
            id = "prod"
            name = "P"
            order = [["api"]]
            pin = { kind = "ecr_tag" }
            actuator = { kind = "ecs", cluster = "c", discover = "tags" }
            [[projects.environments]]
            id = "dev"
            name = "D"
            order = [["api"]]
            verify = { alarms = ["x"], observe_alarms = ["x"] }
        "#;
        let message = Config::from_toml(bad).unwrap_err().to_string();
        for expected in [
            "environments[0].order: \"migrate\" is not a service the actuator names",
            "environments[0].order: service \"migrate\" is in more than one wave",
            "environments[1].order: waves need pinned images",
            "environments[2].order: waves of services are for the ecs and lambda actuators",
            "environments[2].verify.observe_alarms: \"x\" is in `alarms` too",
        ] {
            assert!(message.contains(expected), "{expected}\n{message}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let bad = r#"
            [controller]
            poll_interval = "100ms"
            [[projects]]
            id = "a/b"
            name = "x"
            environments = [ { id = "stage", name = "S" }, { id = "stage", name = "T" } ]
        "#;
        let message = Config::from_toml(bad).unwrap_err().to_string();
        assert!(message.contains("controller.poll_interval"), "{message}");
        assert!(message.contains("projects[0].id"), "{message}");
        assert!(
            message.contains("projects[0].environments[1].id: duplicate"),
            "{message}"
        );
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let message = Config::from_toml("[controller]\npoll_intervall = \"1s\"")
            .unwrap_err()
            .to_string();
        assert!(message.contains("poll_intervall"), "{message}");
    }

    #[test]
    fn rate_limits_are_overridden_by_operation_or_service_and_checked() {
        let config =
            Config::from_toml("[aws.rate_limits]\nssm = 5\n\"ecr.PutImage\" = 3\n").unwrap();
        assert_eq!(config.aws.rate_limits["ssm"], 5);
        assert_eq!(config.aws.rate_limits["ecr.PutImage"], 3);
        for (key, expected) in [
            ("sqs", "aws.rate_limits.sqs: unknown service \"sqs\""),
            ("\"ecr.put image\"", "is not an operation name"),
        ] {
            let message = Config::from_toml(&format!("[aws.rate_limits]\n{key} = 5\n"))
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn a_bad_duration_is_an_error() {
        assert!(Config::from_toml("[controller]\nresync_interval = \"soon\"").is_err());
    }
}
