//! The releases-table item, in both dialects writers use: RFC 013's examples
//! (`environment {id, name}`, `requested_by {id, name}`) and what weco-deploy 5.x wrote
//! (`environment` and `requested_by` as plain strings, a `details` map per entry,
//! bare `ref.<sha>` images). Attribute names are a wire format and are kept exactly;
//! relctl only *adds* fields to deployment entries (`status`, `status_message`,
//! `status_updated_at`) and never rewrites the ones the older tool owns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Timestamp,
    time::{Raw, Stamp},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub release_id: String,
    pub project_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// RFC 013's prose calls it `created_at`; its examples and weco-deploy write `date_created`.
    #[serde(default, alias = "created_at", skip_serializing_if = "Option::is_none")]
    pub date_created: Option<Timestamp>,
    /// Absent on releases that were never deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_date_deployed: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "person"
    )]
    pub requested_by: Option<Person>,
    /// service id → image URI, `ref.<sha>` tag, or NULL (weco-deploy wrote NULL for
    /// services with no image under the label).
    #[serde(default)]
    pub images: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_manifest: Option<serde_json::Value>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Set when the item did not decode as a whole but its id, project and deployment
    /// entries did: its intents are then refused with this reason instead of vanishing.
    #[serde(skip)]
    pub malformed: Option<String>,
    /// Entries that could not be read (kept out of `deployments`): refused alone, the
    /// rest of the release goes on.
    #[serde(skip)]
    pub rejected: Vec<Rejected>,
}

/// A deployment entry that cannot be used, and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the stored `deployments` list.
    pub index: usize,
    /// Its `date_created` exactly as stored, when there is one to address it by.
    pub date_created: Option<Raw>,
    pub environment: Option<String>,
    /// Which field, and why.
    pub why: String,
    /// The status it already carries, if any.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Person {
    /// weco-deploy's form: the caller's ARN as a string; its name is the ARN's last part.
    pub fn from_arn(arn: &str) -> Self {
        Self {
            name: arn.rsplit(['/', ':']).next().map(str::to_owned),
            id: Some(arn.to_owned()),
        }
    }

    /// Name, else id.
    pub fn shown(&self) -> Option<&str> {
        self.name.as_deref().or(self.id.as_deref())
    }
}

/// `{id, name}` (RFC 013) or a plain string (weco-deploy's ARN).
fn person<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Person>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Map(Person),
    }
    Ok(match Option::<Wire>::deserialize(deserializer)? {
        None => None,
        Some(Wire::Text(arn)) => Some(Person::from_arn(&arn)),
        Some(Wire::Map(person)) => Some(person),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for EnvironmentRef {
    /// `{id, name}` (RFC 013) or the id as a plain string (weco-deploy).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Map {
            id: String,
            #[serde(default)]
            name: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Map(Map),
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Text(id) => Self { id, name: None },
            Wire::Map(m) => Self {
                id: m.id,
                name: m.name,
            },
        })
    }
}

/// One entry of a release's `deployments` list: a statement of intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Its position in the stored `deployments` list (what a write by index addresses);
    /// entries that could not be read keep theirs, so positions never shift.
    #[serde(skip)]
    pub index: usize,
    /// As stored (any accepted form), ordered by instant.
    pub date_created: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub environment: EnvironmentRef,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "person"
    )]
    pub requested_by: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_updated_at: Option<Timestamp>,
    /// Who approved the deployment, for `protected` environments (`relctl approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    /// The requester deploys a release that was rolled back in this environment
    /// (`relctl deploy --force`): what a rollback made stick is overridden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// This deployment rolls back that release (`relctl rollback`): once it succeeds,
    /// that release is marked rolled back here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// Why the requester breaks the glass (`relctl deploy --break-glass --reason …`):
    /// a hint that the approvals table holds their break-glass attestation, which is
    /// what lets the deployment through a freeze or a pause (the entry proves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// Someone asked to cancel the deployment (`relctl cancel`), saying why: a hint
    /// that wakes the controller, which acts only on their cancel attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
}

impl Deployment {
    /// An entry relctl writes itself (an automatic rollback, an auto-promotion) for
    /// the environment `id` (`name`), requested by `relctl ({why})`.
    pub fn by_relctl(at: Timestamp, id: &str, name: &str, why: &str, description: String) -> Self {
        Self {
            index: 0,
            date_created: super::Stamp::new(at),
            description: Some(description),
            environment: EnvironmentRef {
                id: id.to_owned(),
                name: Some(name.to_owned()),
            },
            requested_by: Some(Person {
                id: Some("relctl".into()),
                name: Some(format!("relctl ({why})")),
            }),
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

    /// The same intent, whatever relctl has written into its status fields since.
    pub fn same_intent(&self, other: &Deployment) -> bool {
        self.date_created == other.date_created && self.environment.id == other.environment.id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InProgress,
    AwaitingApproval,
    Blocked,
    Frozen,
    /// Waiting: the environment is paused (`relctl pause`).
    Paused,
    Succeeded,
    Failed,
    Superseded,
    /// Stopped by a person (`relctl cancel`).
    Cancelled,
    /// A value this version does not know; treated as not finished.
    #[serde(other)]
    Unknown,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Superseded | Self::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Blocked => "blocked",
            Self::Frozen => "frozen",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is still readable of an item that failed to decode as a [`Release`].
#[derive(Debug, Deserialize)]
pub struct Skeleton {
    pub release_id: String,
    pub project_id: String,
}

impl Skeleton {
    pub fn into_malformed(self, why: String) -> Release {
        Release {
            release_id: self.release_id,
            project_id: self.project_id,
            project_name: None,
            date_created: None,
            last_date_deployed: None,
            description: None,
            requested_by: None,
            images: BTreeMap::new(),
            release_manifest: None,
            deployments: Vec::new(),
            malformed: Some(why),
            rejected: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The release item from RFC 013's "Requesting a deployment" example, verbatim.
    const RFC_EXAMPLE: &str = r#"{
      "date_created": "2019-07-10T10:44:02.272898",
      "deployments": [
        {
          "date_created": "2019-07-10T10:44:12.983539",
          "description": "new pipeline",
          "environment": { "id": "stage", "name": "Staging" },
          "requested_by": { "id": "unknown", "name": "unknown" }
        }
      ],
      "description": "Some description",
      "images": {
        "hatching": "http://example.com/images/hatching/00001",
        "feeding": "http://example.com/images/hatching/00001"
      },
      "last_date_deployed": "2019-07-10T10:44:12.983539",
      "project_id": "example",
      "project_name": "Example project",
      "release_id": "0efcc940-e709-4a51-b264-809a670629b6",
      "requested_by": { "id": "unknown", "name": "unknown" }
    }"#;

    #[test]
    fn the_rfc_013_example_decodes() {
        let release: Release = serde_json::from_str(RFC_EXAMPLE).unwrap();
        assert_eq!(release.project_id, "example");
        assert_eq!(release.deployments.len(), 1);
        assert_eq!(release.deployments[0].environment.id, "stage");
        assert_eq!(release.deployments[0].status, None);
        assert_eq!(
            release.last_date_deployed.map(|t| t.to_wire()).as_deref(),
            Some("2019-07-10T10:44:12.983539")
        );
    }

    #[test]
    fn writing_back_keeps_the_wire_names() {
        let release: Release = serde_json::from_str(RFC_EXAMPLE).unwrap();
        let written = serde_json::to_value(&release).unwrap();
        let original: serde_json::Value = serde_json::from_str(RFC_EXAMPLE).unwrap();
        assert_eq!(written, original);
    }

    #[test]
    fn status_fields_do_not_make_a_new_intent() {
        let release: Release = serde_json::from_str(RFC_EXAMPLE).unwrap();
        let mut updated = release.deployments[0].clone();
        updated.status = Some(Status::Succeeded);
        updated.status_message = Some("pinned 2 images".into());
        assert!(updated.same_intent(&release.deployments[0]));
    }

    #[test]
    fn unknown_status_values_are_kept_as_not_finished() {
        let status: Status = serde_json::from_str("\"rolling_back\"").unwrap();
        assert_eq!(status, Status::Unknown);
        assert!(!status.is_terminal());
    }
}
