//! The checks a configuration must pass beyond its types: ranges, ids that are safe in
//! SSM paths, names people can read, references between environments. Each problem
//! names its key path.

use std::{collections::HashSet, time::Duration};

use super::Config;
use crate::model::validate_id;

/// Services `aws.endpoints` accepts.
pub const ENDPOINT_SERVICES: &[&str] = &[
    "codepipeline",
    "ecs",
    "lambda",
    "ecr",
    "ssm",
    "dynamodb",
    "dynamodbstreams",
    "sts",
    "iam",
];

impl Config {
    /// Adds every problem with this configuration to `problems`.
    pub fn check(&self, problems: &mut Vec<String>) {
        self.check_settings(problems);
        let mut seen = HashSet::new();
        for (i, project) in self.projects.iter().enumerate() {
            let at = format!("projects[{i}]");
            if let Err(e) = validate_id("project", &project.id) {
                problems.push(format!("{at}.id: {e}"));
            }
            if !seen.insert(&project.id) {
                problems.push(format!("{at}.id: duplicate project id {:?}", project.id));
            }
            if project.name.trim().is_empty() {
                problems.push(format!("{at}.name: must not be blank"));
            }
            if let Some(template) = &project.image_uri_template
                && !template.contains("{tag}")
            {
                problems.push(format!(
                    "{at}.image_uri_template: must contain {{tag}} (and usually {{service}})"
                ));
            }
            if let Some(table) = &project.releases_table
                && table.trim().is_empty()
            {
                problems.push(format!("{at}.releases_table: must not be blank"));
            }
            let mut envs = HashSet::new();
            for (j, env) in project.environments.iter().enumerate() {
                let at = format!("{at}.environments[{j}]");
                if let Err(e) = validate_id("environment", &env.id) {
                    problems.push(format!("{at}.id: {e}"));
                }
                if !envs.insert(&env.id) {
                    problems.push(format!("{at}.id: duplicate environment id {:?}", env.id));
                }
                if env.name.trim().is_empty() {
                    problems.push(format!("{at}.name: must not be blank"));
                }
                env.validate(&at, problems);
                if let Some(from) = &env.auto_promote_from
                    && (from == &env.id || !project.environments.iter().any(|e| &e.id == from))
                {
                    problems.push(format!(
                        "{at}.auto_promote_from: {from:?} is not another environment of project {:?}",
                        project.id
                    ));
                }
                if !env.soak.is_zero() && env.auto_promote_from.is_none() {
                    problems.push(format!(
                        "{at}.soak: is how long a release runs in `auto_promote_from` before it is promoted here; set `auto_promote_from`"
                    ));
                }
                for (k, hook) in env.notify.webhooks.iter().enumerate() {
                    if let Some(why) = hook.problem() {
                        problems.push(format!("{at}.notify.webhooks[{k}].url: {why}"));
                    }
                }
                for required in &env.requires {
                    if required == &env.id
                        || !project.environments.iter().any(|e| &e.id == required)
                    {
                        problems.push(format!(
                            "{at}.requires: {required:?} is not another environment of project {:?}",
                            project.id
                        ));
                    }
                }
            }
        }
    }

    fn check_settings(&self, problems: &mut Vec<String>) {
        for (k, hook) in self.notify.webhooks.iter().enumerate() {
            if let Some(why) = hook.problem() {
                problems.push(format!("notify.webhooks[{k}].url: {why}"));
            }
        }
        let c = &self.controller;
        if c.poll_interval < Duration::from_millis(250) {
            problems.push("controller.poll_interval: must be at least 250ms".to_owned());
        }
        if c.max_attempts == 0 {
            problems.push("controller.max_attempts: must be at least 1".to_owned());
        }
        if c.concurrency == 0 {
            problems.push("controller.concurrency: must be at least 1".to_owned());
        }
        let h = &self.http;
        if h.max_connections == 0 {
            problems.push("http.max_connections: must be at least 1".to_owned());
        }
        for (key, value) in [
            ("http.header_timeout", h.header_timeout),
            ("http.connection_timeout", h.connection_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{key}: must be more than 0s"));
            }
        }
        if !(c.resync_rate > 0.0 && c.resync_rate.is_finite()) {
            problems.push("controller.resync_rate: must be a positive number".to_owned());
        }
        if c.resync_interval.is_zero() {
            problems.push("controller.resync_interval: must be more than zero".to_owned());
        }
        if c.backoff_min > c.backoff_max || c.backoff_min.is_zero() {
            problems.push(
                "controller.backoff_min: must be more than zero and at most backoff_max".into(),
            );
        }
        if self.lease.renew_every >= self.lease.duration {
            problems.push("lease.renew_every: must be shorter than lease.duration".to_owned());
        }
        for (name, table) in [
            ("tables.releases", &self.tables.releases),
            ("tables.state", &self.tables.state),
            ("tables.approvals", &self.tables.approvals),
        ] {
            if table.trim().is_empty() {
                problems.push(format!("{name}: must not be empty"));
            }
        }
        for service in self.aws.endpoints.keys() {
            if !ENDPOINT_SERVICES.contains(&service.as_str()) {
                problems.push(format!(
                    "aws.endpoints.{service}: unknown service ({})",
                    ENDPOINT_SERVICES.join(", ")
                ));
            }
        }
        for key in self.aws.rate_limits.keys() {
            if let Some(problem) = crate::aws::limit::quotas::check_key(key) {
                problems.push(problem);
            }
        }
    }
}
