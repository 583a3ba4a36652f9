//! `relctl release update`: a new release from an existing one with some services'
//! images swapped (weco-deploy's `update`); a service it does not have needs `--add`.

use clap::Args;

use super::new::{label_images, parse_pairs, write};
use crate::{
    cli::{
        Failure,
        lookup::{Aws, find, project_of},
    },
    config::Config,
    store::ReleaseStore,
};

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

pub async fn run(
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
