//! Past deployments to an environment, read from the releases themselves (newest
//! deployed first on `deployment_gsi`), and what the controller did on its own there
//! (self-heals, from the environment's state): for `history` and `rollback`.

use serde::Serialize;

use super::Failure;
use crate::{
    config::Config,
    model::{EnvKey, Release, Status},
    store::{ReleaseStore, state::HistoryKind},
};

/// One line of `history --output json`.
#[derive(Debug, Clone, Serialize)]
pub struct Past {
    /// `deployment`, `rollback` (relctl's own, after a failure: `on_failure =
    /// "rollback"`), `self_heal` (drifted pins put back by the controller), or an act on
    /// the environment itself: `pause`, `resume`, `unlock` (who, as IAM proved them).
    pub kind: &'static str,
    pub release_id: String,
    pub environment: String,
    pub date_created: String,
    pub requested_by: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub status_updated_at: Option<String>,
    /// Let through a pause or a freeze: by whom and why, as the controller recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// The release was rolled back in this environment since (why, as its state says):
    /// deployed there again only with `--force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

/// Every deployment to `key`, newest first, at most `limit`.
pub async fn deployments(
    config: &Config,
    store: &ReleaseStore,
    key: &EnvKey,
    limit: usize,
) -> Result<Vec<(Past, Release)>, Failure> {
    let (project, _) = config.environment(key)?;
    let table = config.releases_table(project);
    let mut found: Vec<(Past, Release)> = Vec::new();
    for release in store
        .recently_deployed(table, &project.id, |_| true)
        .await?
    {
        let Ok(release) = release else { continue };
        for entry in release
            .deployments
            .iter()
            .filter(|d| d.environment.id == key.environment)
        {
            let past = Past {
                kind: "deployment",
                release_id: release.release_id.clone(),
                environment: key.environment.clone(),
                date_created: entry.date_created.at.to_wire(),
                requested_by: entry
                    .requested_by
                    .as_ref()
                    .and_then(|p| p.name.clone().or(p.id.clone())),
                description: entry.description.clone(),
                status: entry.status.map_or("pending", Status::as_str).to_owned(),
                status_message: entry.status_message.clone(),
                status_updated_at: entry.status_updated_at.map(|t| t.to_wire()),
                break_glass: None,
                rolled_back: None,
            };
            found.push((past, release.clone()));
        }
    }
    found.sort_by(|a, b| b.0.date_created.cmp(&a.0.date_created));
    found.truncate(limit);
    Ok(found)
}

/// Marks the deployments that are relctl's own automatic rollbacks, as the
/// environment's state (not the entry, which anyone can write) records them.
pub fn mark_rollbacks(past: &mut [Past], state: &crate::model::state::EnvState) {
    let ours: Vec<(String, String)> = state
        .history
        .iter()
        .filter(|e| e.kind == HistoryKind::Rollback)
        .map(|e| (e.release_id.clone(), e.date_created.to_wire()))
        .collect();
    for p in past.iter_mut() {
        if ours.contains(&(p.release_id.clone(), p.date_created.clone())) {
            p.kind = "rollback";
        }
        // A break-glass, as the controller recorded it (the entry's own says nothing).
        p.break_glass = state
            .history
            .iter()
            .find(|e| e.release_id == p.release_id && e.date_created.to_wire() == p.date_created)
            .and_then(|e| e.break_glass.clone());
        p.rolled_back = state.rolled_back(&p.release_id).map(|m| m.reason.clone());
    }
}

/// What the controller did on its own (self-heals), from the environment's state.
pub fn self_heals(state: &crate::model::state::EnvState, key: &EnvKey) -> Vec<Past> {
    state
        .history
        .iter()
        .filter(|entry| entry.kind == HistoryKind::SelfHeal)
        .cloned()
        .map(|entry| Past {
            kind: entry.kind.as_str(),
            release_id: entry.release_id,
            environment: key.environment.clone(),
            date_created: entry.at.to_wire(),
            requested_by: Some("relctl (self_heal)".into()),
            description: None,
            status: entry.status.as_str().to_owned(),
            status_message: Some(entry.message),
            status_updated_at: Some(entry.at.to_wire()),
            break_glass: None,
            rolled_back: None,
        })
        .collect()
}

/// The acts on the environment itself (pauses, resumes, unlocks), each its writer's
/// newest, named by the ARN their item's key proves.
pub fn controls(found: &[crate::store::attestations::Attestation], key: &EnvKey) -> Vec<Past> {
    use crate::store::attestations::Kind;
    found
        .iter()
        .filter(|a| a.dated())
        .filter_map(|a| {
            let (kind, message) = match a.kind {
                Kind::Pause => ("pause", a.reason.clone().unwrap_or_default()),
                Kind::Resume => ("resume", format!("ended {} pause(s)", a.ends.len())),
                Kind::Unlock => ("unlock", a.reason.clone().unwrap_or_default()),
                _ => return None,
            };
            Some(Past {
                kind,
                release_id: "-".into(),
                environment: key.environment.clone(),
                date_created: a.at.clone(),
                requested_by: Some(a.by.arn.clone()),
                description: None,
                status: kind.to_owned(),
                status_message: Some(crate::model::text::message(&message)),
                status_updated_at: Some(a.at.clone()),
                break_glass: None,
                rolled_back: None,
            })
        })
        .collect()
}
