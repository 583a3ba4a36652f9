//! Deployment intents: which entry of which release says what should run where, and which
//! of them is the newest for an environment (by `date_created`, ties by `release_id`).

use serde::{Deserialize, Serialize};

use super::{EnvKey, Release, Status, Timestamp, record::Deployment, time::Raw};

/// Points at one deployment entry: the release, its position in `deployments`, and its
/// `date_created`, which guards every write by index against a reordered list. The
/// writer's own `date_created` value is kept as stored, for those conditions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentRef {
    pub date_created: Timestamp,
    pub release_id: String,
    pub index: usize,
    /// `date_created` exactly as the entry stores it (absent in pointers written by an
    /// older controller: then the canonical form, which is what that one wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created_raw: Option<Raw>,
}

/// The same entry, however its `date_created` was spelt.
impl PartialEq for IntentRef {
    fn eq(&self, other: &Self) -> bool {
        self.order_key() == other.order_key()
    }
}

impl Eq for IntentRef {}

impl std::hash::Hash for IntentRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.order_key().hash(state);
    }
}

impl IntentRef {
    pub fn of(release_id: &str, entry: &Deployment) -> Self {
        Self {
            date_created: entry.date_created.at,
            release_id: release_id.to_owned(),
            index: entry.index,
            date_created_raw: Some(entry.date_created.raw.clone()),
        }
    }

    /// `date_created` as the entry stores it.
    pub fn stored_date(&self) -> Raw {
        self.date_created_raw
            .clone()
            .unwrap_or_else(|| Raw::S(self.date_created.to_wire()))
    }

    /// Newer intents sort last. The index only breaks ties inside one release.
    pub fn order_key(&self) -> (Timestamp, &str, usize) {
        (self.date_created, &self.release_id, self.index)
    }

    pub fn is_newer_than(&self, other: &IntentRef) -> bool {
        self.order_key() > other.order_key()
    }

    pub fn same_entry(&self, other: &IntentRef) -> bool {
        self.release_id == other.release_id && self.date_created == other.date_created
    }
}

/// The status message of an intent that lost to `by`.
pub fn superseded_message(by: &IntentRef) -> String {
    format!(
        "superseded by release {} (deployment requested at {})",
        by.release_id, by.date_created
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub key: EnvKey,
    pub at: IntentRef,
    pub status: Option<Status>,
}

/// Every intent a release holds, in list order.
pub fn intents_of(release: &Release) -> impl Iterator<Item = Intent> + '_ {
    release.deployments.iter().map(|entry| Intent {
        key: EnvKey::new(&release.project_id, &entry.environment.id),
        at: IntentRef::of(&release.release_id, entry),
        status: entry.status,
    })
}

/// Intents in `new` that `old` did not have. A change that only touched status fields
/// (relctl's own writes, coming back on the stream) yields nothing.
pub fn new_intents(old: Option<&Release>, new: &Release) -> Vec<Intent> {
    intents_of(new)
        .filter(|intent| {
            !old.is_some_and(|old| {
                old.deployments.iter().any(|o| {
                    o.date_created.at == intent.at.date_created
                        && o.environment.id == intent.key.environment
                })
            })
        })
        .collect()
}

/// The newest intent for `key` among `releases`.
pub fn newest_for<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    key: &EnvKey,
) -> Option<Intent> {
    releases
        .into_iter()
        .flat_map(intents_of)
        .filter(|intent| &intent.key == key)
        .max_by(|a, b| a.at.order_key().cmp(&b.at.order_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        record::{Deployment, EnvironmentRef},
        time::Stamp,
    };

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn entry(env: &str, date: &str) -> Deployment {
        Deployment {
            index: 0,
            date_created: Stamp::new(at(date)),
            description: None,
            environment: EnvironmentRef {
                id: env.into(),
                name: None,
            },
            requested_by: None,
            status: None,
            status_message: None,
            status_updated_at: None,
            approved_by: None,
            approved_at: None,
            force: None,
            rollback_of: None,
            break_glass: None,
            cancel: None,
        }
    }

    fn release(id: &str, deployments: Vec<Deployment>) -> Release {
        Release {
            release_id: id.into(),
            project_id: "bugfarm".into(),
            project_name: None,
            date_created: None,
            last_date_deployed: None,
            description: None,
            requested_by: None,
            images: Default::default(),
            release_manifest: None,
            deployments: deployments
                .into_iter()
                .enumerate()
                .map(|(index, entry)| Deployment { index, ..entry })
                .collect(),
            malformed: None,
            rejected: Vec::new(),
        }
    }

    #[test]
    fn the_newest_intent_is_chosen_by_date_created() {
        let a = release("a", vec![entry("stage", "2024-01-02T00:00:00")]);
        let b = release("b", vec![entry("stage", "2024-01-01T00:00:00")]);
        let newest = newest_for([&a, &b], &EnvKey::new("bugfarm", "stage")).unwrap();
        assert_eq!(newest.at.release_id, "a");
    }

    #[test]
    fn ties_on_date_created_are_broken_by_release_id() {
        let a = release("a", vec![entry("stage", "2024-01-01T00:00:00")]);
        let b = release("b", vec![entry("stage", "2024-01-01T00:00:00")]);
        let newest = newest_for([&b, &a], &EnvKey::new("bugfarm", "stage")).unwrap();
        assert_eq!(newest.at.release_id, "b");
    }

    #[test]
    fn intents_of_other_environments_are_ignored() {
        let a = release("a", vec![entry("prod", "2024-01-02T00:00:00")]);
        assert_eq!(newest_for([&a], &EnvKey::new("bugfarm", "stage")), None);
    }

    #[test]
    fn an_appended_entry_is_a_new_intent_and_a_status_write_is_not() {
        let old = release("a", vec![entry("stage", "2024-01-01T00:00:00")]);
        let mut appended = old.clone();
        appended.deployments.push(Deployment {
            index: 1,
            ..entry("prod", "2024-01-02T00:00:00")
        });
        let found = new_intents(Some(&old), &appended);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, EnvKey::new("bugfarm", "prod"));
        assert_eq!(found[0].at.index, 1);

        let mut status_only = appended.clone();
        status_only.deployments[1].status = Some(Status::Succeeded);
        assert!(new_intents(Some(&appended), &status_only).is_empty());
    }

    #[test]
    fn every_entry_of_an_inserted_release_is_new() {
        let inserted = release(
            "a",
            vec![
                entry("stage", "2024-01-01T00:00:00"),
                entry("prod", "2024-01-02T00:00:00"),
            ],
        );
        assert_eq!(new_intents(None, &inserted).len(), 2);
    }
}
