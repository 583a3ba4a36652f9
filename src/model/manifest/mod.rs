//! The project manifest, `.wellcome_project` (RFC 013, plus what weco-deploy accepted:
//! `name`, `role_arn`, `aws_region_name`, `account_id`, `environments`,
//! `image_repositories`), in either form — RFC 013's JSON or weco-deploy 5.x's YAML
//! ([`read`]). Checked as a JSON value so that every problem is reported, not just the
//! first, each with where it is (a JSON pointer, which [`read::Read`] turns into a line).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::validate_id;

pub mod read;

/// One problem, and where it is: a JSON pointer into the manifest (`/storage/environments/1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

fn pointer(parts: &[&str]) -> String {
    parts.iter().map(|p| format!("/{}", segment(p))).collect()
}

/// One JSON pointer segment (RFC 6901: `~` and `/` escaped).
pub(crate) fn segment(part: &str) -> String {
    part.replace('~', "~0").replace('/', "~1")
}

/// A `name` that is a non-empty string.
fn named(name: Option<&Value>) -> bool {
    name.and_then(Value::as_str)
        .is_some_and(|n| !n.trim().is_empty())
}

/// Problems as they are found, each with where it is.
#[derive(Default)]
struct Found(Vec<Problem>);

impl Found {
    fn push(&mut self, at: &[&str], message: impl Into<String>) {
        self.0.push(Problem {
            at: pointer(at),
            message: message.into(),
        });
    }
}

/// Every problem with `manifest`; `configured` maps the project ids relctl is configured
/// for to their environment ids, to report environments relctl does not know (none:
/// nothing is configured yet, as for `relctl init`).
pub fn check(manifest: &Value, configured: Option<&BTreeMap<String, Vec<String>>>) -> Vec<Problem> {
    let mut found = Found::default();
    let Some(projects) = manifest.as_object() else {
        found.push(
            &[],
            "the manifest must be a mapping of project ids: { \"<project_id>\": { ... } }",
        );
        return found.0;
    };
    if projects.is_empty() {
        found.push(&[], "the manifest names no project");
    }
    for (id, project) in projects {
        let at = format!("project {id:?}");
        let here = [id.as_str()];
        if let Err(e) = validate_id("project", id) {
            found.push(&here, format!("{at}: {e}"));
        }
        let Some(project) = project.as_object() else {
            found.push(&here, format!("{at}: must be an object"));
            continue;
        };
        if !named(project.get("name")) {
            found.push(&here, format!("{at}: missing \"name\""));
        }
        if let Some(arn) = project.get("role_arn")
            && !arn.as_str().is_some_and(|a| a.starts_with("arn:"))
        {
            found.push(
                &[id, "role_arn"],
                format!("{at}: \"role_arn\" must be an ARN string"),
            );
        }
        if let Some(region) = project.get("aws_region_name")
            && !region
                .as_str()
                .is_some_and(crate::config::environment::is_region)
        {
            found.push(
                &[id, "aws_region_name"],
                format!("{at}: \"aws_region_name\" must be an AWS Region, such as \"eu-west-1\""),
            );
        }
        if let Some(account) = project.get("account_id")
            && !account
                .as_str()
                .is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        {
            found.push(
                &[id, "account_id"],
                format!("{at}: \"account_id\" must be a 12-digit AWS account id"),
            );
        }
        check_environments(&mut found, &at, id, project.get("environments"), configured);
        check_repositories(&mut found, &at, id, project.get("image_repositories"));
    }
    found.0
}

fn check_environments(
    found: &mut Found,
    at: &str,
    project: &str,
    environments: Option<&Value>,
    configured: Option<&BTreeMap<String, Vec<String>>>,
) {
    let Some(environments) = environments.and_then(Value::as_array) else {
        found.push(
            &[project],
            format!("{at}: missing \"environments\" (a list of {{\"id\", \"name\"}})"),
        );
        return;
    };
    let known = configured.map(|c| c.get(project));
    if known == Some(None) {
        found.push(
            &[project],
            format!("{at}: not configured in relctl ([[projects]] id = {project:?})"),
        );
    }
    let mut seen = HashSet::new();
    for (i, env) in environments.iter().enumerate() {
        let index = i.to_string();
        let here = [project, "environments", index.as_str()];
        let Some(id) = env.get("id").and_then(Value::as_str) else {
            found.push(&here, format!("{at}: environments[{i}] has no \"id\""));
            continue;
        };
        if let Err(e) = validate_id("environment", id) {
            found.push(&here, format!("{at}: environments[{i}]: {e}"));
        }
        if !seen.insert(id) {
            found.push(&here, format!("{at}: duplicate environment id {id:?}"));
        }
        if !named(env.get("name")) {
            found.push(
                &here,
                format!("{at}: environment {id:?} is missing \"name\""),
            );
        }
        if let Some(Some(known)) = known
            && !known.iter().any(|k| k == id)
        {
            found.push(
                &here,
                format!(
                    "{at}: environment {id:?} is unknown to relctl's configuration (configured: {})",
                    known.join(", ")
                ),
            );
        }
    }
}

fn check_repositories(found: &mut Found, at: &str, project: &str, repositories: Option<&Value>) {
    let Some(repositories) = repositories else {
        return;
    };
    let Some(repositories) = repositories.as_array() else {
        found.push(
            &[project, "image_repositories"],
            format!("{at}: \"image_repositories\" must be a list"),
        );
        return;
    };
    let (mut repos, mut services) = (HashSet::new(), HashSet::new());
    for (i, repository) in repositories.iter().enumerate() {
        let index = i.to_string();
        let here = [project, "image_repositories", index.as_str()];
        let Some(id) = repository.get("id").and_then(Value::as_str) else {
            found.push(
                &here,
                format!("{at}: image_repositories[{i}] has no \"id\""),
            );
            continue;
        };
        if let Err(e) = validate_id("service", id) {
            found.push(&here, format!("{at}: image repository: {e}"));
        }
        if !repos.insert(id) {
            found.push(&here, format!("{at}: duplicate image repository id {id:?}"));
        }
        for (k, service) in repository
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let k = k.to_string();
            let here = [
                project,
                "image_repositories",
                index.as_str(),
                "services",
                k.as_str(),
            ];
            match service.get("id").and_then(Value::as_str) {
                None => found.push(
                    &here,
                    format!("{at}: a service of repository {id:?} has no \"id\""),
                ),
                Some(service) => {
                    if let Err(e) = validate_id("service", service) {
                        found.push(&here, format!("{at}: {e}"));
                    }
                    if !services.insert(service) {
                        found.push(&here, format!("{at}: duplicate service id {service:?}"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn configured() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([("storage".into(), vec!["stage".into(), "prod".into()])])
    }

    #[test]
    fn the_rfc_013_manifest_is_clean() {
        let manifest = json!({ "storage": { "name": "Storage", "environments": [
            { "id": "stage", "name": "Staging" }, { "id": "prod", "name": "Production" } ] } });
        assert_eq!(check(&manifest, Some(&configured())), Vec::<Problem>::new());
    }

    #[test]
    fn every_problem_is_listed() {
        let manifest = json!({
            "storage": {
                "environments": [ { "id": "stage", "name": "Staging" }, { "id": "stage" }, { "id": "qa", "name": "QA" } ],
                "role_arn": "admin",
                "image_repositories": [ { "id": "app", "services": [ { "id": "api" } ] },
                                        { "id": "app", "services": [ { "id": "api" }, { "id": "a/b" } ] } ]
            },
            "other": { "name": "Other", "environments": [] }
        });
        let problems: Vec<String> = check(&manifest, Some(&configured()))
            .into_iter()
            .map(|p| p.message)
            .collect();
        let expect = [
            "project \"storage\": missing \"name\"",
            "project \"storage\": \"role_arn\" must be an ARN string",
            "project \"storage\": duplicate environment id \"stage\"",
            "project \"storage\": environment \"stage\" is missing \"name\"",
            "project \"storage\": environment \"qa\" is unknown to relctl's configuration (configured: stage, prod)",
            "project \"storage\": duplicate image repository id \"app\"",
            "project \"storage\": duplicate service id \"api\"",
            "project \"storage\": service id \"a/b\" contains '/'",
            "project \"other\": not configured in relctl",
        ];
        for expected in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "missing {expected:?} in {problems:#?}"
            );
        }
    }
}
