//! `relctl release show`: one release, with its deployments and their status.

use crate::{
    cli::{Failure, Output, lookup::find},
    config::Config,
    model::{Release, Status},
    store::ReleaseStore,
};

pub async fn run(
    config: &Config,
    store: &ReleaseStore,
    release_id: &str,
    output: Output,
) -> Result<(), Failure> {
    let (_, release) = find(config, store, release_id).await?;
    if !output.json(&release)? {
        print_release(&release);
    }
    Ok(())
}

fn print_release(release: &Release) {
    out!("release   {}", release.release_id);
    out!("project   {}", release.project_id);
    if let Some(created) = release.date_created {
        out!("created   {created}");
    }
    if let Some(description) = release.description.as_deref().filter(|d| !d.is_empty()) {
        out!("about     {description}");
    }
    out!("images");
    for (service, uri) in &release.images {
        out!("  {service:<20} {}", uri.as_deref().unwrap_or("(none)"));
    }
    out!("deployments");
    for entry in &release.deployments {
        out!(
            "  {} {:<12} {:<18} {}",
            entry.date_created,
            entry.environment.id,
            entry.status.map_or("pending", Status::as_str),
            crate::model::shown::summary(
                entry.status_message.as_deref().unwrap_or_default(),
                crate::model::shown::MESSAGE
            )
        );
    }
}
