//! The project manifest, `.wellcome_project` (RFC 013, plus what weco-deploy accepted:
//! `name`, `role_arn`, `aws_region_name`, `environments`, `image_repositories`).
//! Checked as JSON so that every problem is reported, not just the first.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::validate_id;

/// A `name` that is a non-empty string.
fn named(name: Option<&Value>) -> bool {
    name.and_then(Value::as_str)
        .is_some_and(|n| !n.trim().is_empty())
}

/// Every problem with `manifest`; `configured` maps the project ids relctl is configured
/// for to their environment ids, to report environments relctl does not know.
pub fn check(manifest: &Value, configured: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(projects) = manifest.as_object() else {
        return vec!["the manifest must be a JSON object: { \"<project_id>\": { ... } }".into()];
    };
    if projects.is_empty() {
        problems.push("the manifest names no project".into());
    }
    for (id, project) in projects {
        let at = format!("project {id:?}");
        if let Err(e) = validate_id("project", id) {
            problems.push(format!("{at}: {e}"));
        }
        let Some(project) = project.as_object() else {
            problems.push(format!("{at}: must be an object"));
            continue;
        };
        if !named(project.get("name")) {
            problems.push(format!("{at}: missing \"name\""));
        }
        if let Some(arn) = project.get("role_arn")
            && !arn.as_str().is_some_and(|a| a.starts_with("arn:"))
        {
            problems.push(format!("{at}: \"role_arn\" must be an ARN string"));
        }
        if let Some(region) = project.get("aws_region_name")
            && !region.is_string()
        {
            problems.push(format!("{at}: \"aws_region_name\" must be a string"));
        }
        check_environments(
            &at,
            id,
            project.get("environments"),
            configured,
            &mut problems,
        );
        check_repositories(&at, project.get("image_repositories"), &mut problems);
    }
    problems
}

fn check_environments(
    at: &str,
    project: &str,
    environments: Option<&Value>,
    configured: &BTreeMap<String, Vec<String>>,
    problems: &mut Vec<String>,
) {
    let Some(environments) = environments.and_then(Value::as_array) else {
        problems.push(format!(
            "{at}: missing \"environments\" (a list of {{\"id\", \"name\"}})"
        ));
        return;
    };
    let known = configured.get(project);
    if known.is_none() {
        problems.push(format!(
            "{at}: not configured in relctl ([[projects]] id = {project:?})"
        ));
    }
    let mut seen = HashSet::new();
    for (i, env) in environments.iter().enumerate() {
        let Some(id) = env.get("id").and_then(Value::as_str) else {
            problems.push(format!("{at}: environments[{i}] has no \"id\""));
            continue;
        };
        if let Err(e) = validate_id("environment", id) {
            problems.push(format!("{at}: environments[{i}]: {e}"));
        }
        if !seen.insert(id) {
            problems.push(format!("{at}: duplicate environment id {id:?}"));
        }
        if !named(env.get("name")) {
            problems.push(format!("{at}: environment {id:?} is missing \"name\""));
        }
        if let Some(known) = known
            && !known.iter().any(|k| k == id)
        {
            problems.push(format!(
                "{at}: environment {id:?} is unknown to relctl's configuration (configured: {})",
                known.join(", ")
            ));
        }
    }
}

fn check_repositories(at: &str, repositories: Option<&Value>, problems: &mut Vec<String>) {
    let Some(repositories) = repositories else {
        return;
    };
    let Some(repositories) = repositories.as_array() else {
        problems.push(format!("{at}: \"image_repositories\" must be a list"));
        return;
    };
    let (mut repos, mut services) = (HashSet::new(), HashSet::new());
    for (i, repository) in repositories.iter().enumerate() {
        let Some(id) = repository.get("id").and_then(Value::as_str) else {
            problems.push(format!("{at}: image_repositories[{i}] has no \"id\""));
            continue;
        };
        if !repos.insert(id) {
            problems.push(format!("{at}: duplicate image repository id {id:?}"));
        }
        for service in repository
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match service.get("id").and_then(Value::as_str) {
                None => problems.push(format!(
                    "{at}: a service of repository {id:?} has no \"id\""
                )),
                Some(service) => {
                    if let Err(e) = validate_id("service", service) {
                        problems.push(format!("{at}: {e}"));
                    }
                    if !services.insert(service) {
                        problems.push(format!("{at}: duplicate service id {service:?}"));
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
        assert_eq!(check(&manifest, &configured()), Vec::<String>::new());
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
        let problems = check(&manifest, &configured());
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
