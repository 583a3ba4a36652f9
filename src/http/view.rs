//! What the board, its pages and the JSON API show, worked out once from the
//! configuration's layout and the environments' state: each environment's card (what
//! runs, what is wanted, the status as people read it, how far behind the environment
//! before it), a release's place in every environment, an environment's history.
//! The HTML and the API are two renderings of these values; both are readable by
//! anyone who reaches the page, so every text from a record or an error is held
//! here without AWS account ids (as `…`).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::{
    config::Config,
    model::{EnvKey, Release, Timestamp, state::EnvState},
};

/// `text` without AWS account ids.
fn plain(text: &str) -> String {
    crate::model::shown::without_account_ids(text).into_owned()
}

/// The projects and their environments, each project's in promotion order: an
/// environment comes after those it `requires` or is `auto_promote_from`, and
/// otherwise keeps its place in the configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Layout {
    pub projects: Vec<ProjectLayout>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectLayout {
    pub id: String,
    pub name: String,
    pub environments: Vec<EnvLayout>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvLayout {
    pub id: String,
    pub name: String,
    pub protected: bool,
    /// The environment before it in promotion order, if it follows one.
    pub after: Option<String>,
}

impl Layout {
    pub fn of(config: &Config) -> Self {
        let projects = config
            .projects
            .iter()
            .map(|project| {
                let mut placed: Vec<EnvLayout> = Vec::new();
                let mut left: Vec<&crate::config::environment::Environment> =
                    project.environments.iter().collect();
                while !left.is_empty() {
                    // The first, in configuration order, whose predecessors are placed
                    // (or, in a loop the loader would refuse, simply the first).
                    let next = left
                        .iter()
                        .position(|env| {
                            before(env).iter().all(|b| {
                                placed.iter().any(|p| &p.id == b)
                                    || !project.environments.iter().any(|e| &e.id == b)
                            })
                        })
                        .unwrap_or(0);
                    let env = left.remove(next);
                    let after = before(env)
                        .into_iter()
                        .rfind(|b| placed.iter().any(|p| &p.id == b));
                    placed.push(EnvLayout {
                        id: env.id.clone(),
                        name: env.name.clone(),
                        protected: env.protected,
                        after,
                    });
                }
                ProjectLayout {
                    id: project.id.clone(),
                    name: project.name.clone(),
                    environments: placed,
                }
            })
            .collect();
        Self { projects }
    }

    pub fn environment(&self, project: &str, env: &str) -> Option<(&ProjectLayout, &EnvLayout)> {
        let p = self.projects.iter().find(|p| p.id == project)?;
        Some((p, p.environments.iter().find(|e| e.id == env)?))
    }
}

fn before(env: &crate::config::environment::Environment) -> Vec<String> {
    let mut before = env.requires.clone();
    if let Some(from) = &env.auto_promote_from
        && !before.contains(from)
    {
        before.push(from.clone());
    }
    before
}

/// One environment as the board shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub project: String,
    pub environment: String,
    pub name: String,
    pub running: Option<Running>,
    pub desired_release: Option<String>,
    /// converged, applying, baking, waiting, failed, drift, paused, none …
    pub badge: String,
    pub phase: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub message: Option<String>,
    pub last_error: Option<String>,
    /// Why the last resync of this environment failed.
    pub resync_error: Option<String>,
    pub drift: Vec<String>,
    pub drift_by_plan: Option<String>,
    pub rolled_back: Vec<String>,
    /// Services whose running image differs from the environment before it.
    pub behind: Option<Behind>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub release_id: String,
    pub description: Option<String>,
    pub since: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Behind {
    pub environment: String,
    pub services: Vec<String>,
}

/// The badge of an environment: what a person needs to know first.
fn badge(state: &EnvState) -> String {
    use crate::model::Status;
    if !state.drift.is_empty() || state.plan_drift.as_ref().is_some_and(|p| p.found.is_some()) {
        return "drift".into();
    }
    match (state.activity.status(), state.activity.phase()) {
        (None, _) => "none".into(),
        (Some(Status::Succeeded), _) => "converged".into(),
        (Some(Status::Failed), _) => "failed".into(),
        (Some(_), Some(phase)) => phase.into(),
        (Some(status), None) => status.as_str().into(),
    }
}

/// The cards of every configured environment, in the layout's order.
pub fn cards(
    layout: &Layout,
    states: &[(EnvKey, EnvState)],
    releases: &HashMap<String, Release>,
) -> Vec<Card> {
    let state_of = |project: &str, env: &str| {
        states
            .iter()
            .find(|(k, _)| k.project == project && k.environment == env)
            .map(|(_, s)| s)
    };
    let mut cards = Vec::new();
    for project in &layout.projects {
        for env in &project.environments {
            let empty = EnvState::default();
            let state = state_of(&project.id, &env.id).unwrap_or(&empty);
            let behind = env.after.as_ref().and_then(|prev| {
                let ahead = state_of(&project.id, prev)?.observed.as_ref()?;
                let mine = state.observed.as_ref().map(|o| &o.images);
                let services: Vec<String> = ahead
                    .images
                    .iter()
                    .filter(|(service, image)| mine.and_then(|m| m.get(*service)) != Some(image))
                    .map(|(service, _)| service.clone())
                    .collect();
                (!services.is_empty()).then(|| Behind {
                    environment: prev.clone(),
                    services,
                })
            });
            cards.push(Card {
                project: project.id.clone(),
                environment: env.id.clone(),
                name: env.name.clone(),
                running: state.observed.as_ref().map(|o| Running {
                    release_id: o.release_id.clone(),
                    description: releases
                        .get(&o.release_id)
                        .and_then(|r| r.description.as_deref().map(plain)),
                    since: o.since.to_wire(),
                }),
                desired_release: state.desired.as_ref().map(|d| d.release_id.clone()),
                badge: badge(state),
                phase: state.activity.phase().map(str::to_owned),
                status: state.activity.status().map(|s| s.as_str().to_owned()),
                since: state.activity.since().map(|s| s.to_wire()),
                message: state.activity.message().map(plain),
                last_error: state.activity.error_beside_message().map(plain),
                resync_error: state.resync_error.as_deref().map(plain),
                drift: state.drift.clone(),
                drift_by_plan: state
                    .plan_drift
                    .as_ref()
                    .and_then(|p| p.found.as_deref().map(plain)),
                rolled_back: state
                    .rolled_back
                    .iter()
                    .map(|r| r.release_id.clone())
                    .collect(),
                behind,
            });
        }
    }
    cards
}

/// A release as its page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    pub release_id: String,
    pub project_id: String,
    pub description: Option<String>,
    pub date_created: Option<String>,
    pub images: BTreeMap<String, Option<String>>,
    pub deployments: Vec<DeploymentView>,
    /// Environments where it runs now.
    pub running_in: Vec<String>,
    /// Per environment of its project: the services whose running image differs from
    /// this release's (all of them where nothing runs yet).
    pub differs: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    pub environment: String,
    pub date_created: String,
    pub requested_by: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
}

pub fn release(layout: &Layout, release: &Release, states: &[(EnvKey, EnvState)]) -> ReleaseView {
    let envs = layout
        .projects
        .iter()
        .find(|p| p.id == release.project_id)
        .map(|p| {
            p.environments
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let observed = |env: &str| {
        states
            .iter()
            .find(|(k, _)| k.project == release.project_id && k.environment == env)
            .and_then(|(_, s)| s.observed.as_ref())
    };
    let mut differs = BTreeMap::new();
    let mut running_in = Vec::new();
    for env in &envs {
        let running = observed(env);
        if running.is_some_and(|o| o.release_id == release.release_id) {
            running_in.push(env.clone());
        }
        let services: Vec<String> = release
            .images
            .iter()
            .filter(|(service, image)| {
                let there = running.and_then(|o| o.images.get(*service));
                there.is_none() || there != image.as_ref()
            })
            .map(|(service, _)| service.clone())
            .collect();
        differs.insert(env.clone(), services);
    }
    ReleaseView {
        release_id: release.release_id.clone(),
        project_id: release.project_id.clone(),
        description: release.description.as_deref().map(plain),
        date_created: release.date_created.map(|d| d.to_wire()),
        images: release
            .images
            .iter()
            .map(|(s, i)| (s.clone(), i.as_deref().map(plain)))
            .collect(),
        deployments: release
            .deployments
            .iter()
            .rev()
            .map(|d| DeploymentView {
                environment: d.environment.id.clone(),
                date_created: d.date_created.at.to_wire(),
                requested_by: d
                    .requested_by
                    .as_ref()
                    .and_then(|p| p.name.as_deref().or(p.id.as_deref()).map(plain)),
                status: d
                    .status
                    .map_or("pending", crate::model::Status::as_str)
                    .to_owned(),
                status_message: d.status_message.as_deref().map(plain),
            })
            .collect(),
        running_in,
        differs,
    }
}

/// An environment as its page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvView {
    pub card: Card,
    pub history: Vec<HistoryView>,
    pub delivery: crate::model::dora::Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub kind: String,
    pub release_id: String,
    pub requested_by: Option<String>,
    pub at: String,
    pub status: String,
    pub message: String,
    /// The release was rolled back here since.
    pub rolled_back: bool,
}

pub fn environment(card: Card, state: &EnvState, now: Timestamp) -> EnvView {
    EnvView {
        history: state
            .history
            .iter()
            .map(|h| HistoryView {
                kind: h.kind.as_str().to_owned(),
                release_id: h.release_id.clone(),
                requested_by: h.requested_by.as_deref().map(plain),
                at: h.at.to_wire(),
                status: h.status.as_str().to_owned(),
                message: plain(&h.message),
                rolled_back: state.rolled_back(&h.release_id).is_some(),
            })
            .collect(),
        delivery: crate::model::dora::figures(
            &state.deliveries,
            now,
            std::time::Duration::from_secs(30 * 86_400),
        ),
        card,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::Observed;

    #[test]
    fn environments_are_laid_out_in_promotion_order_and_a_lagging_one_says_how_far() {
        let config = Config::from_toml(
            r#"
[[projects]]
id = "shop"
name = "Shop"
[[projects.environments]]
id = "prod"
name = "Production"
requires = ["stage"]
[[projects.environments]]
id = "stage"
name = "Staging"
auto_promote_from = "dev"
[[projects.environments]]
id = "dev"
name = "Development"
[[projects.environments]]
id = "sandbox"
name = "Sandbox"
"#,
        )
        .unwrap();
        let layout = Layout::of(&config);
        let order: Vec<&str> = layout.projects[0]
            .environments
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(order, ["dev", "stage", "prod", "sandbox"]);
        assert_eq!(
            layout.projects[0].environments[2].after.as_deref(),
            Some("stage")
        );
        let at = Timestamp::parse("2026-12-01T10:00:00").unwrap();
        let running = |id: &str, images: &[(&str, &str)]| EnvState {
            observed: Some(Observed {
                release_id: id.into(),
                date_created: at,
                images: images
                    .iter()
                    .map(|(s, i)| ((*s).into(), (*i).into()))
                    .collect(),
                since: at,
            }),
            ..Default::default()
        };
        let states = vec![
            (
                EnvKey::new("shop", "stage"),
                running("r2", &[("api", "a:2"), ("web", "w:2")]),
            ),
            (
                EnvKey::new("shop", "prod"),
                running("r1", &[("api", "a:1"), ("web", "w:2")]),
            ),
        ];
        let cards = cards(&layout, &states, &HashMap::new());
        let prod = cards.iter().find(|c| c.environment == "prod").unwrap();
        let behind = prod.behind.as_ref().expect("prod lags stage");
        assert_eq!(
            (behind.environment.as_str(), behind.services.clone()),
            ("stage", vec!["api".to_owned()])
        );
        let stage = cards.iter().find(|c| c.environment == "stage").unwrap();
        assert!(stage.behind.is_none(), "dev runs nothing: nothing to lag");
    }
}
