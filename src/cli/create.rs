//! `relctl release create` and `relctl release update`: write a new release item in the
//! RFC 013 shape, from a label's images in SSM and/or explicit `SERVICE=URI` pairs.

use std::collections::BTreeMap;

use clap::Args;

use super::{
    Failure,
    lookup::{Aws, find, project_of},
};
use crate::{
    config::{Config, Project},
    model::{Release, Timestamp, resolve_images, validate_id},
    pin::ssm_parameters::read_label,
    store::ReleaseStore,
};

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub project: String,
    /// Read images from /{project}/images/{label}/* (default `latest` unless --service is given).
    #[arg(long)]
    pub from_label: Option<String>,
    /// SERVICE=URI, repeatable; overrides the label's image for that service.
    #[arg(long = "service", value_name = "SERVICE=URI")]
    pub services: Vec<String>,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Create even if the images equal the project's newest release.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The release to start from.
    pub release_id: String,
    /// SERVICE=URI, repeatable.
    #[arg(long = "service", value_name = "SERVICE=URI")]
    pub services: Vec<String>,
    /// Take these services' images from a label (with --services).
    #[arg(long)]
    pub from_label: Option<String>,
    /// Comma-separated services to take from --from-label.
    #[arg(long = "services", value_delimiter = ',')]
    pub label_services: Vec<String>,
    /// Allow --service to add a service the release does not have.
    #[arg(long)]
    pub add: bool,
    #[arg(long, default_value = "")]
    pub description: String,
}

fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, Failure> {
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

async fn label_images(
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

pub async fn create(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    args: CreateArgs,
) -> Result<(), Failure> {
    let project = project_of(config, &args.project)?;
    let mut images: BTreeMap<String, Option<String>> = BTreeMap::new();
    let label = args
        .from_label
        .clone()
        .or_else(|| args.services.is_empty().then(|| "latest".to_owned()));
    if let Some(label) = &label {
        let found = label_images(aws, &project.id, label).await?;
        images.extend(found.into_iter().map(|(s, uri)| (s, Some(uri))));
    }
    for (service, uri) in parse_pairs(&args.services)? {
        images.insert(service, Some(uri));
    }
    let source = label.map_or_else(|| "explicit images".to_owned(), |l| format!("label {l}"));
    write(
        config,
        aws,
        store,
        project,
        images,
        &args.description,
        &source,
        args.force,
    )
    .await
}

pub async fn update(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    args: UpdateArgs,
) -> Result<(), Failure> {
    let (_, base) = find(config, store, &args.release_id).await?;
    let project = project_of(config, &base.project_id)?;
    let mut images = base.images.clone();
    if let Some(label) = &args.from_label {
        if args.label_services.is_empty() {
            return Err(Failure {
                message: "--from-label needs --services a,b naming the services to take".into(),
                code: 2,
            });
        }
        let found = label_images(aws, &project.id, label).await?;
        for service in &args.label_services {
            if !args.add && !base.images.contains_key(service) {
                return Err(Failure::refused(format!(
                    "release {} has no service {service:?}; pass --add to add it",
                    base.release_id
                )));
            }
            let uri = found.get(service).ok_or_else(|| {
                Failure::refused(format!(
                    "label {label} has no image for service {service:?}"
                ))
            })?;
            images.insert(service.clone(), Some(uri.clone()));
        }
    }
    for (service, uri) in parse_pairs(&args.services)? {
        if !args.add && !base.images.contains_key(&service) {
            let known: Vec<&str> = base.images.keys().map(String::as_str).collect();
            return Err(Failure::refused(format!(
                "release {} has no service {service:?} (it has: {}); pass --add to add it",
                base.release_id,
                known.join(", ")
            )));
        }
        images.insert(service, Some(uri));
    }
    if images == base.images {
        return Err(Failure::refused(
            "nothing to change: name --service S=URI or --from-label L --services a,b",
        ));
    }
    let source = format!("update of {}", base.release_id);
    write(
        config,
        aws,
        store,
        project,
        images,
        &args.description,
        &source,
        true,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write(
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
        eprintln!(
            "nothing to do: release {} already has exactly these images; its id follows (--force creates another)",
            newest.release_id
        );
        println!("{}", newest.release_id);
        return Ok(());
    }
    store.create(table, &release).await?;
    eprintln!(
        "created release {} of {} ({source})",
        release.release_id, project.id
    );
    for (service, uri) in &release.images {
        eprintln!("  {service}: {}", uri.as_deref().unwrap_or("(none)"));
    }
    println!("{}", release.release_id);
    Ok(())
}
