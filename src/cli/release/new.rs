//! What `release create` and `release update` share: `SERVICE=URI` pairs, a label's
//! images in SSM, and writing the new release item in the RFC 013 shape.

use std::collections::BTreeMap;

use crate::{
    cli::{Failure, lookup::Aws},
    config::{Config, Project},
    model::{Release, Timestamp, resolve_images, validate_id},
    pin::ssm_parameters::read_label,
    store::ReleaseStore,
};

pub fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(s, u)| (s.to_owned(), u.to_owned()))
                .ok_or_else(|| Failure {
                    message: format!("--service {pair:?} is not SERVICE=URI"),
                    code: 2,
                })
        })
        .collect()
}

pub async fn label_images(
    aws: &Aws,
    project: &str,
    label: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    validate_id("label", label)?;
    let found = read_label(&aws.ssm, project, label).await?;
    if found.is_empty() {
        return Err(Failure::refused(format!(
            "no images under /{project}/images/{label}/; publish some or pass --service SERVICE=URI"
        )));
    }
    Ok(found)
}

#[allow(clippy::too_many_arguments)]
pub async fn write(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    project: &Project,
    images: BTreeMap<String, Option<String>>,
    description: &str,
    source: &str,
    force: bool,
) -> Result<(), Failure> {
    let now = Timestamp::from_utc(chrono::Utc::now());
    let manifest =
        serde_json::json!({ "project_id": project.id, "source": source, "images": images });
    let release = Release {
        release_id: uuid::Uuid::new_v4().to_string(),
        project_id: project.id.clone(),
        project_name: Some(project.name.clone()),
        date_created: Some(now),
        last_date_deployed: None,
        description: Some(description.to_owned()),
        requested_by: Some(aws.caller().await),
        images,
        release_manifest: Some(serde_json::Value::String(manifest.to_string())),
        deployments: Vec::new(),
        malformed: None,
        rejected: Vec::new(),
    };
    resolve_images(&release, project.image_uri_template.as_deref())?;
    let table = config.releases_table(project);
    if !force
        && let Some(Ok(newest)) = store
            .list_project(table, &project.id, 1)
            .await?
            .into_iter()
            .next()
        && newest.images == release.images
    {
        note!(
            "nothing to do: release {} already has exactly these images; its id follows (--force creates another)",
            newest.release_id
        );
        out!("{}", newest.release_id);
        return Ok(());
    }
    store.create(table, &release).await?;
    note!(
        "created release {} of {} ({source})",
        release.release_id,
        project.id
    );
    for (service, uri) in &release.images {
        note!("  {service}: {}", uri.as_deref().unwrap_or("(none)"));
    }
    out!("{}", release.release_id);
    Ok(())
}
