//! `relctl release create|update|list|show`, and the look-ups other commands share.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use clap::Subcommand;
use serde::Serialize;

use super::{Failure, Output};
use crate::{
    config::{Config, Project},
    model::{Person, Release, Status},
    store::ReleaseStore,
};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Write a new release from a label's images in SSM and/or explicit --service pairs.
    Create(super::create::CreateArgs),
    /// A new release from an existing one with some services' images swapped.
    Update(super::create::UpdateArgs),
    /// The releases of a project, newest first, with where each is deployed.
    List {
        #[arg(long)]
        project: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One release, with its deployments and their status.
    Show { release_id: String },
}

pub async fn run(
    config: &Config,
    sdk: &SdkConfig,
    command: ReleaseCommand,
    output: Output,
) -> Result<(), Failure> {
    let store = ReleaseStore::new(aws_sdk_dynamodb::Client::new(sdk));
    match command {
        ReleaseCommand::Create(args) => super::create::create(config, sdk, &store, args).await,
        ReleaseCommand::Update(args) => super::create::update(config, sdk, &store, args).await,
        ReleaseCommand::List { project, limit } => {
            list(config, &store, &project, limit, output).await
        }
        ReleaseCommand::Show { release_id } => {
            let (_, release) = find(config, &store, &release_id).await?;
            if !output.json(&release)? {
                print_release(&release);
            }
            Ok(())
        }
    }
}

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

async fn list(
    config: &Config,
    store: &ReleaseStore,
    project: &str,
    limit: usize,
    output: Output,
) -> Result<(), Failure> {
    let project = project_of(config, project)?;
    let table = config.releases_table(project);
    let mut listed = Vec::new();
    for release in store.list_project(table, &project.id, limit).await? {
        match release {
            Ok(r) => listed.push(Listed {
                deployed_to: deployed_to(&r),
                release_id: r.release_id,
                project_id: r.project_id,
                date_created: r.date_created.map(|d| d.to_wire()),
                description: r.description,
                images: r.images,
            }),
            Err(error) => eprintln!("warning: skipped an item: {error}"),
        }
    }
    if output.json(&listed)? {
        return Ok(());
    }
    println!(
        "{:<38} {:<28} {:<30} DESCRIPTION",
        "RELEASE", "CREATED", "DEPLOYED"
    );
    for r in listed {
        let deployed: Vec<String> = r
            .deployed_to
            .iter()
            .map(|(e, s)| format!("{e}:{s}"))
            .collect();
        println!(
            "{:<38} {:<28} {:<30} {}",
            r.release_id,
            r.date_created.unwrap_or_default(),
            if deployed.is_empty() {
                "-".into()
            } else {
                deployed.join(" ")
            },
            r.description.unwrap_or_default()
        );
    }
    Ok(())
}

fn print_release(release: &Release) {
    println!("release   {}", release.release_id);
    println!("project   {}", release.project_id);
    if let Some(created) = release.date_created {
        println!("created   {created}");
    }
    if let Some(description) = release.description.as_deref().filter(|d| !d.is_empty()) {
        println!("about     {description}");
    }
    println!("images");
    for (service, uri) in &release.images {
        println!("  {service:<20} {}", uri.as_deref().unwrap_or("(none)"));
    }
    println!("deployments");
    for entry in &release.deployments {
        println!(
            "  {} {:<12} {:<18} {}",
            entry.date_created,
            entry.environment.id,
            entry.status.map_or("pending", Status::as_str),
            entry.status_message.as_deref().unwrap_or_default()
        );
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
