//! What the commands share: AWS clients built from the configuration (its per-service
//! endpoints honoured, as the controller does), and the look-ups several commands make
//! (a project, a release in whichever table holds it, the caller, the lease holder).

use std::sync::Arc;

use aws_config::SdkConfig;

use super::Failure;
use crate::{
    adapters::Clients,
    config::{Config, Project},
    metrics::Metrics,
    model::{Person, Release, approval::Principal},
    store::{
        ReleaseStore, StateStore,
        attestations::Attestations,
        lease::{Holder, Leases},
    },
};

/// The clients one command uses.
pub struct Aws {
    pub sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    /// Counts this command's calls like the controller's (never served).
    pub metrics: Arc<Metrics>,
}

impl Aws {
    pub fn new(config: &Config, sdk: SdkConfig) -> Self {
        let metrics = Arc::new(Metrics::default());
        let clients = Clients::new(&sdk, &config.aws.endpoints, &metrics);
        Self {
            dynamodb: clients.dynamodb(),
            ssm: clients.ssm(),
            sts: clients.sts(),
            sdk: sdk.clone(),
            metrics,
        }
    }

    pub fn releases(&self) -> ReleaseStore {
        ReleaseStore::new(self.dynamodb.clone())
    }

    pub fn state(&self, config: &Config) -> StateStore {
        StateStore::new(self.dynamodb.clone(), &config.tables.state)
    }

    /// The caller, as STS sees them (the older tool recorded the same).
    pub async fn caller(&self) -> Person {
        match self.sts.get_caller_identity().send().await {
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

    /// The caller as IAM identifies it (`aws:userid` and ARN): what an attestation is
    /// keyed by, and what the approvers' and deployers' policies allow them to write.
    pub async fn principal(&self) -> Result<Principal, Failure> {
        let identity = self.sts.get_caller_identity().send().await.map_err(|e| {
            Failure::refused(format!(
                "failed to learn who you are (sts:GetCallerIdentity): {}",
                crate::aws::error_message(&e)
            ))
        })?;
        match (identity.user_id, identity.arn) {
            (Some(id), Some(arn)) => Ok(Principal { id, arn }),
            _ => Err(Failure::refused(
                "sts:GetCallerIdentity named no user id and ARN",
            )),
        }
    }

    /// ECS, with the configuration's endpoints (a Terraform runner's tasks).
    pub fn ecs(&self, config: &Config) -> aws_sdk_ecs::Client {
        Clients::new(&self.sdk, &config.aws.endpoints, &self.metrics).ecs()
    }

    pub fn attestations(&self, config: &Config) -> Attestations {
        Attestations::new(self.dynamodb.clone(), &config.tables.approvals)
    }

    /// Who holds the leader lease, if it could be read.
    pub async fn lease(&self, config: &Config) -> Result<Option<Holder>, Failure> {
        Ok(Leases::new(self.dynamodb.clone(), &config.tables.state)
            .holder()
            .await?)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub use crate::model::shown::ago;

/// A warning for people when no controller holds the lease, or None when one does.
pub fn no_controller(holder: Option<&Holder>) -> Option<String> {
    let now = now_ms();
    match holder {
        Some(holder) if holder.is_held(now) => None,
        Some(holder) => Some(format!(
            "no controller holds the lease (last held by {}, {}): nothing will be applied until one runs",
            holder.owner,
            holder
                .renewed_at
                .map_or_else(|| "at an unknown time".to_owned(), |at| format!("renewed {}", ago(now - at)))
        )),
        None => Some(
            "no controller holds the lease (none has ever run against this state table): nothing will be applied until one runs".into(),
        ),
    }
}

pub fn project_of<'a>(config: &'a Config, id: &str) -> Result<&'a Project, Failure> {
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

/// The release with exactly this id (an id relctl read from a record, never a prefix).
pub async fn exact(
    config: &Config,
    store: &ReleaseStore,
    release_id: &str,
) -> Result<Option<(String, Release)>, Failure> {
    Ok(store.find_in(&config.releases_tables(), release_id).await?)
}

/// How many of each project's newest releases a short id is looked for among.
const PREFIX_WINDOW: usize = 5000;
/// The shortest prefix taken for a release id (as git takes 4 for a commit).
const PREFIX_MIN: usize = 4;

/// The release and the table holding it, searched across every configured table: by
/// its whole id, or by a prefix of it that only one release's id starts with (as
/// `status`, `history` and `release list` show them, cut to 8 characters).
pub async fn find(
    config: &Config,
    store: &ReleaseStore,
    release_id: &str,
) -> Result<(String, Release), Failure> {
    if let Some(found) = exact(config, store, release_id).await? {
        return Ok(found);
    }
    let not_found = || {
        Failure::refused(format!(
            "release {release_id} was not found (as a whole id, or as the start of one among each project's {PREFIX_WINDOW} newest); `relctl release list --project P` lists releases"
        ))
    };
    if release_id.chars().count() < PREFIX_MIN {
        return Err(not_found());
    }
    let mut found: Vec<(String, String)> = Vec::new();
    for project in &config.projects {
        let table = config.releases_table(project);
        for id in store
            .ids_starting(table, &project.id, release_id, PREFIX_WINDOW)
            .await?
        {
            if !found.iter().any(|(t, i)| t == table && *i == id) {
                found.push((table.to_owned(), id));
            }
        }
    }
    match found.as_slice() {
        [] => Err(not_found()),
        [(table, id)] => match store.get(table, id).await? {
            Some(release) => Ok((table.clone(), release)),
            None => Err(not_found()),
        },
        many => Err(Failure::refused(format!(
            "{release_id} is the start of {} release ids ({}{}); give more of it",
            many.len(),
            many.iter()
                .take(5)
                .map(|(_, id)| id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if many.len() > 5 { ", …" } else { "" }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(ago(2_400), "2s ago");
        assert_eq!(ago(125_000), "2 min ago");
        assert_eq!(ago(3 * 3_600_000), "3 h ago");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }

    #[test]
    fn a_lease_held_now_needs_no_warning_and_an_expired_one_names_its_last_holder() {
        let held = Holder {
            owner: "a".into(),
            expires_at: now_ms() + 10_000,
            renewed_at: Some(now_ms()),
        };
        assert_eq!(no_controller(Some(&held)), None);
        let expired = Holder {
            expires_at: now_ms() - 1,
            ..held
        };
        assert!(
            no_controller(Some(&expired))
                .unwrap()
                .contains("last held by a")
        );
        assert!(no_controller(None).is_some());
    }
}
