//! `relctl release create`: a new release from a label's images in SSM and/or explicit
//! `SERVICE=URI` pairs.

use std::collections::BTreeMap;

use clap::Args;

use super::new::{label_images, parse_pairs, write};
use crate::{
    cli::{
        Failure,
        lookup::{Aws, project_of},
    },
    config::Config,
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

pub async fn run(
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
