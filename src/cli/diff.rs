//! `relctl diff RELEASE --env E`: what deploying the release would change, pin by pin,
//! old → new, asked of the environment's own pin. Writes nothing.

use clap::Args;
use serde::Serialize;

use super::{
    Failure, Output,
    lookup::{self, Aws},
};
use crate::{
    adapters::{self, Clients},
    config::Config,
    model::{EnvKey, resolve_images},
    pin::Target,
};

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub release_id: String,
    #[arg(long = "env")]
    pub environment: String,
}

#[derive(Debug, Serialize)]
struct Diff {
    release_id: String,
    project_id: String,
    environment: String,
    changes: Vec<Changed>,
    unchanged: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Changed {
    service: String,
    from: Option<String>,
    to: String,
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    args: DiffArgs,
    output: Output,
) -> Result<(), Failure> {
    let store = aws.releases();
    let (_, release) = lookup::find(config, &store, &args.release_id).await?;
    let key = EnvKey::new(&release.project_id, &args.environment);
    let (project, environment) = config.environment(&key)?;
    let images = resolve_images(&release, project.image_uri_template.as_deref())?;
    let account = adapters::account(
        &aws.sdk,
        &adapters::Place::of(environment),
        &config.aws.rate_limits,
    )
    .await;
    let clients = Clients::new(&account, &config.aws.endpoints, &aws.metrics);
    let pin = adapters::for_environment(environment, &clients, None).pin;
    let target = Target {
        key: &key,
        release_id: &release.release_id,
    };
    let changes = pin.diff(&target, &images).await?;
    let diff = Diff {
        release_id: release.release_id.clone(),
        project_id: release.project_id.clone(),
        environment: key.environment.clone(),
        unchanged: images
            .keys()
            .filter(|s| !changes.iter().any(|c| &c.service == *s))
            .cloned()
            .collect(),
        changes: changes
            .into_iter()
            .map(|c| Changed {
                service: c.service,
                from: c.from,
                to: c.to,
            })
            .collect(),
    };
    if output.json(&diff)? {
        return Ok(());
    }
    if diff.changes.is_empty() {
        out!(
            "no change: {} already holds release {}",
            key,
            diff.release_id
        );
    }
    for c in &diff.changes {
        out!(
            "~ {:<20} {} → {}",
            c.service,
            c.from.as_deref().unwrap_or("(none)"),
            c.to
        );
    }
    for s in &diff.unchanged {
        out!("= {s}");
    }
    Ok(())
}
