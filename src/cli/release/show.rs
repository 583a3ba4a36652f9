//! `relctl release show`: one release, with its deployments and their status, and the
//! environments where it was rolled back (as their state records it).

use crate::{
    cli::{
        Failure, Output,
        lookup::{Aws, find},
    },
    config::Config,
    model::{EnvKey, Release, Status, state::RolledBack},
    store::ReleaseStore,
};

pub async fn run(
    config: &Config,
    aws: &Aws,
    store: &ReleaseStore,
    release_id: &str,
    output: Output,
) -> Result<(), Failure> {
    let (_, release) = find(config, store, release_id).await?;
    if output.json(&release)? {
        return Ok(());
    }
    // Where it was rolled back: each environment's own state says so.
    let mut rolled_back = Vec::new();
    if let Some(project) = config.project(&release.project_id) {
        let state = aws.state(config);
        for env in &project.environments {
            let key = EnvKey::new(&project.id, &env.id);
            if let Some(mark) = state.get(&key).await?.rolled_back(&release.release_id) {
                rolled_back.push((env.id.clone(), mark.clone()));
            }
        }
    }
    print_release(&release, &rolled_back);
    Ok(())
}

fn print_release(release: &Release, rolled_back: &[(String, RolledBack)]) {
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
    for (env, mark) in rolled_back {
        out!(
            "rolled back in {env} ({}, at {}): deployed there again only with --force",
            crate::model::shown::summary(&mark.reason, crate::model::shown::MESSAGE),
            mark.at.to_wire()
        );
    }
}
