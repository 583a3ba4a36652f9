//! `relctl release create|update|list|show`, and the look-ups other commands share.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde::Serialize;

use super::{
    Failure, Output,
    lookup::{Aws, find, project_of},
};
use crate::{
    config::Config,
    model::{EnvKey, Release, Status},
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
    aws: &Aws,
    command: ReleaseCommand,
    output: Output,
) -> Result<(), Failure> {
    let store = aws.releases();
    match command {
        ReleaseCommand::Create(args) => super::create::create(config, aws, &store, args).await,
        ReleaseCommand::Update(args) => super::create::update(config, aws, &store, args).await,
        ReleaseCommand::List { project, limit } => {
            list(config, aws, &store, &project, limit, output).await
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

async fn list(
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
            Err(error) => eprintln!("warning: skipped an item of table {table}: {error}"),
        }
    }
    if output.json(&listed)? {
        return Ok(());
    }
    println!(
        "{:<38} {:<28} {:<20} DESCRIPTION",
        "RELEASE", "CREATED", "RUNNING IN"
    );
    for r in listed {
        println!(
            "{:<38} {:<28} {:<20} {}",
            r.release_id,
            r.date_created.unwrap_or_default(),
            if r.running_in.is_empty() {
                "-".into()
            } else {
                r.running_in.join(", ")
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
