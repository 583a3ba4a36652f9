//! `relctl release list`: a project's releases, newest first, with where each runs now.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    cli::{
        Failure, Output,
        lookup::{Aws, project_of},
    },
    config::Config,
    model::{EnvKey, Release, Status},
    store::ReleaseStore,
};

/// One line of `release list --output json`.
#[derive(Debug, Serialize)]
struct Listed {
    release_id: String,
    project_id: String,
    date_created: Option<String>,
    description: Option<String>,
    images: BTreeMap<String, Option<String>>,
    /// environment → status of its newest deployment of this release.
    deployed_to: BTreeMap<String, String>,
    /// Environments where this release runs now (the controller's last success there).
    running_in: Vec<String>,
}

fn deployed_to(release: &Release) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for entry in &release.deployments {
        found.insert(
            entry.environment.id.clone(),
            entry.status.map_or("pending", Status::as_str).to_owned(),
        );
    }
    found
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    project: &str,
    limit: usize,
    output: Output,
) -> Result<(), Failure> {
    let project = project_of(config, project)?;
    let table = config.releases_table(project);
    let keys: Vec<EnvKey> = project
        .environments
        .iter()
        .map(|e| EnvKey::new(&project.id, &e.id))
        .collect();
    let running: Vec<(String, String)> = aws
        .state(config)
        .get_many(&keys)
        .await?
        .into_iter()
        .zip(&keys)
        .filter_map(|(state, key)| Some((state.observed?.release_id, key.environment.clone())))
        .collect();
    let mut listed = Vec::new();
    for release in store.list_project(table, &project.id, limit).await? {
        match release {
            Ok(r) => listed.push(Listed {
                running_in: running
                    .iter()
                    .filter(|(id, _)| *id == r.release_id)
                    .map(|(_, env)| env.clone())
                    .collect(),
                deployed_to: deployed_to(&r),
                release_id: r.release_id,
                project_id: r.project_id,
                date_created: r.date_created.map(|d| d.to_wire()),
                description: r.description,
                images: r.images,
            }),
            Err(error) => note!("warning: skipped an item of table {table}: {error}"),
        }
    }
    if output.json(&listed)? {
        return Ok(());
    }
    use crate::cli::table;
    let now = crate::cli::lookup::now_ms();
    let ids = table::short_ids(listed.iter().map(|r| r.release_id.as_str()));
    let mut shown = table::table(&["RELEASE", "AGE", "RUNNING IN", "DESCRIPTION"]);
    for r in &listed {
        shown.add_row(vec![
            table::text(&ids[&r.release_id], crate::model::shown::ID),
            table::text(
                &r.date_created
                    .as_deref()
                    .map_or_else(|| "-".into(), |at| table::age(at, now)),
                64,
            ),
            table::text(
                &if r.running_in.is_empty() {
                    "-".into()
                } else {
                    r.running_in.join(", ")
                },
                200,
            ),
            table::text(
                &crate::model::shown::summary(
                    r.description.as_deref().unwrap_or_default(),
                    crate::model::shown::MESSAGE,
                ),
                crate::model::shown::MESSAGE + 8,
            ),
        ]);
    }
    table::print(&shown);
    Ok(())
}
