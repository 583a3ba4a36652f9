//! `relctl release create|list|show`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use clap::{Args, Subcommand};

use super::Failure;
use crate::{
    config::{Config, Project},
    model::{Person, Release, Timestamp, resolve_images, validate_id},
    pin::ssm_parameters::read_label,
    store::ReleaseStore,
};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Write a new release from a label's images in SSM and/or explicit --service pairs.
    Create(CreateArgs),
    /// The releases of a project, newest first.
    List {
        #[arg(long)]
        project: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One release, with its deployments and their status.
    Show { release_id: String },
}

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

pub async fn run(config: &Config, sdk: &SdkConfig, command: ReleaseCommand) -> Result<(), Failure> {
    let store = ReleaseStore::new(aws_sdk_dynamodb::Client::new(sdk));
    match command {
        ReleaseCommand::Create(args) => create(config, sdk, &store, args).await,
        ReleaseCommand::List { project, limit } => {
            let project = project_of(config, &project)?;
            let table = config.releases_table(project);
            for release in store.list_project(table, &project.id, limit).await? {
                match release {
                    Ok(r) => println!(
                        "{}  {}  {}",
                        r.release_id,
                        r.date_created.map(|d| d.to_wire()).unwrap_or_default(),
                        r.description.unwrap_or_default()
                    ),
                    Err(error) => eprintln!("warning: {error}"),
                }
            }
            Ok(())
        }
        ReleaseCommand::Show { release_id } => {
            let (_, release) = find(config, &store, &release_id).await?;
            println!("{}", serde_json::to_string_pretty(&release)?);
            Ok(())
        }
    }
}

pub(super) fn project_of<'a>(config: &'a Config, id: &str) -> Result<&'a Project, Failure> {
    config.project(id).ok_or_else(|| {
        let known: Vec<&str> = config.projects.iter().map(|p| p.id.as_str()).collect();
        Failure::refused(format!(
            "project {id:?} is not configured; configured projects: {}",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The release and the table holding it, searched across every configured table.
pub(super) async fn find(
    config: &Config,
    store: &ReleaseStore,
    release_id: &str,
) -> Result<(String, Release), Failure> {
    for table in config.releases_tables() {
        if let Some(release) = store.get(&table, release_id).await? {
            return Ok((table, release));
        }
    }
    Err(Failure::refused(format!(
        "release {release_id} was not found; `relctl release list --project P` lists releases"
    )))
}

/// The caller, as STS sees them (the older tool recorded the same).
pub(super) async fn caller(sdk: &SdkConfig) -> Person {
    match aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => Person {
            name: identity
                .arn
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .map(str::to_owned),
            id: identity.arn,
        },
        Err(_) => Person {
            id: Some("unknown".into()),
            name: Some("unknown".into()),
        },
    }
}

async fn create(
    config: &Config,
    sdk: &SdkConfig,
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
        validate_id("label", label)?;
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let found = read_label(&ssm, &project.id, label).await?;
        if found.is_empty() {
            return Err(Failure::refused(format!(
                "no images under /{}/images/{label}/; publish some or pass --service SERVICE=URI",
                project.id
            )));
        }
        images.extend(found.into_iter().map(|(s, uri)| (s, Some(uri))));
    }
    for pair in &args.services {
        let (service, uri) = pair.split_once('=').ok_or_else(|| Failure {
            message: format!("--service {pair:?} is not SERVICE=URI"),
            code: 2,
        })?;
        images.insert(service.to_owned(), Some(uri.to_owned()));
    }
    let now = Timestamp::from_utc(chrono::Utc::now());
    let manifest =
        serde_json::json!({ "project_id": project.id, "label": label, "images": images });
    let release = Release {
        release_id: uuid::Uuid::new_v4().to_string(),
        project_id: project.id.clone(),
        project_name: Some(project.name.clone()),
        date_created: Some(now),
        last_date_deployed: None,
        description: Some(args.description.clone()),
        requested_by: Some(caller(sdk).await),
        images,
        release_manifest: Some(serde_json::Value::String(manifest.to_string())),
        deployments: Vec::new(),
        malformed: None,
    };
    resolve_images(&release, project.image_uri_template.as_deref())?;
    let table = config.releases_table(project);
    if !args.force
        && let Some(Ok(newest)) = store
            .list_project(table, &project.id, 1)
            .await?
            .into_iter()
            .next()
        && newest.images == release.images
    {
        eprintln!(
            "release {} already has exactly these images; not creating a duplicate (use --force)",
            newest.release_id
        );
        println!("{}", newest.release_id);
        return Ok(());
    }
    store.create(table, &release).await?;
    eprintln!("created release {} of {}", release.release_id, project.id);
    for (service, uri) in &release.images {
        eprintln!("  {service}: {}", uri.as_deref().unwrap_or("(none)"));
    }
    println!("{}", release.release_id);
    Ok(())
}
