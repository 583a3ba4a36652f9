//! The approvals table: who approved, and who requested, a deployment — recorded where
//! the item's key proves its writer. Its hash key `principal` is the kind and the
//! writer's AWS `aws:userid` (`approve#AIDA…`, `request#AROA…:alice`), and the IAM
//! policies allow `PutItem` only where `dynamodb:LeadingKeys` equals
//! `approve#${aws:userid}` (approvers) or `request#${aws:userid}` (deployers): nobody
//! writes under another's identity, and a deployer cannot write an approval. The range
//! key `subject` names the deployment (`{project}#{environment}#{release_id}#{date}`);
//! each item also carries the digest of the images it was about. The controller reads a
//! deployment's attestations by subject on `subject_gsi`.

use aws_sdk_dynamodb::{Client, types::AttributeValue};

use super::{StoreError, s};
pub use crate::model::approval::Principal;
use crate::model::{EnvKey, IntentRef, Timestamp};

pub const SUBJECT_GSI: &str = "subject_gsi";

/// What a principal attests of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// "I approve this deployment of these images."
    Approve,
    /// "I requested this deployment" (written by `relctl deploy`).
    Request,
    /// "I break the glass: deploy this during the freeze or pause" (`deploy --break-glass`).
    BreakGlass,
    /// "I cancel this deployment" (`relctl cancel`).
    Cancel,
    /// Of an environment (subject [`env_subject`]): "I pause it" (`relctl pause`).
    Pause,
    /// Of an environment: "I end these pauses" (`relctl resume`).
    Resume,
    /// Of an environment: "I release this Terraform state lock" (`relctl unlock`).
    Unlock,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Self::Approve,
        Self::Request,
        Self::BreakGlass,
        Self::Cancel,
        Self::Pause,
        Self::Resume,
        Self::Unlock,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Self::Approve => "approve#",
            Self::Request => "request#",
            Self::BreakGlass => "break_glass#",
            Self::Cancel => "cancel#",
            Self::Pause => "pause#",
            Self::Resume => "resume#",
            Self::Unlock => "unlock#",
        }
    }
}

/// What an attestation says beside its kind and digest.
#[derive(Debug, Clone, Default)]
pub struct Said<'a> {
    pub reason: Option<&'a str>,
    /// A resume: the pauses it ends ([`Attestation::token`]).
    pub ends: &'a [String],
}

/// One attestation as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub kind: Kind,
    pub by: Principal,
    /// The digest of the images it was about.
    pub images: String,
    /// Why (a pause, a cancel, a break-glass).
    pub reason: Option<String>,
    /// When, as its writer's clock said (shown, never ordered by).
    pub at: String,
    /// A resume: the pauses it ends.
    pub ends: Vec<String>,
}

impl Attestation {
    /// Names this attestation as its writer made it: a resume ends pauses by these, so
    /// a pause written again (by anyone) after a resume is not ended by it.
    pub fn token(&self) -> String {
        format!("{}@{}", self.by.id, self.at)
    }

    /// Its `at` is a timestamp (and so short): an item whose `at` is anything else is
    /// not a pause anyone can end by token, and is not counted.
    pub fn dated(&self) -> bool {
        self.at.len() <= 40 && Timestamp::parse(&self.at).is_ok()
    }
}

/// The subject an environment's own controls (pause, resume) are recorded under.
pub fn env_subject(key: &EnvKey) -> String {
    format!("{}#{}", key.project, key.environment)
}

/// A pause in force: who paused the environment, why, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    pub by: Principal,
    pub reason: String,
    pub at: String,
}

/// Whether the environment whose controls are `attestations` is paused: a pause no
/// resume ended (the newest such, if several people paused it).
pub fn paused(attestations: &[Attestation]) -> Option<Paused> {
    let ended: std::collections::HashSet<&str> = attestations
        .iter()
        .filter(|a| a.kind == Kind::Resume)
        .flat_map(|a| a.ends.iter().map(String::as_str))
        .collect();
    attestations
        .iter()
        .filter(|a| a.kind == Kind::Pause && a.dated() && !ended.contains(a.token().as_str()))
        .max_by(|a, b| a.at.cmp(&b.at))
        .map(|a| Paused {
            by: a.by.clone(),
            reason: crate::model::text::message(a.reason.as_deref().unwrap_or_default()),
            at: a.at.clone(),
        })
}

/// The subject an attestation about `intent` is recorded under; the date is the
/// canonical form of the entry's instant, however the entry spells it.
pub fn subject(key: &EnvKey, intent: &IntentRef) -> String {
    format!(
        "{}#{}#{}#{}",
        key.project,
        key.environment,
        intent.release_id,
        intent.date_created.to_wire()
    )
}

#[derive(Debug, Clone)]
pub struct Attestations {
    client: Client,
    table: String,
}

impl Attestations {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records that `by` attests `subject` about `images` (a digest). IAM makes
    /// `by.id` the caller's own `aws:userid`; a second one by the same principal
    /// replaces the first.
    pub async fn record(
        &self,
        kind: Kind,
        by: &Principal,
        subject: &str,
        images: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_saying(kind, by, subject, images, now, Said::default())
            .await
    }

    /// [`Self::record`], with a reason (and, for a resume, the pauses it ends).
    pub async fn record_saying(
        &self,
        kind: Kind,
        by: &Principal,
        subject: &str,
        images: &str,
        now: Timestamp,
        said: Said<'_>,
    ) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("principal", s(format!("{}{}", kind.prefix(), by.id)))
            .item("subject", s(subject))
            .item("arn", s(&by.arn))
            .item("images", s(images))
            .item("at", s(now.to_wire()));
        if let Some(reason) = said.reason {
            put = put.item("reason", s(reason));
        }
        if !said.ends.is_empty() {
            put = put.item("ends", AttributeValue::Ss(said.ends.to_vec()));
        }
        put.send()
            .await
            .map_err(|e| StoreError::aws("PutItem", &self.table, e))?;
        Ok(())
    }

    /// Every attestation of `subject`.
    pub async fn of(&self, subject: &str) -> Result<Vec<Attestation>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SUBJECT_GSI)
                .key_condition_expression("#s = :subject")
                .expression_attribute_names("#s", "subject")
                .expression_attribute_values(":subject", s(subject))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", &self.table, e))?;
            for item in page.items.unwrap_or_default() {
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(value)) => Some(value.clone()),
                    _ => None,
                };
                let Some(key) = text("principal") else {
                    continue;
                };
                let Some((kind, id)) = Kind::ALL
                    .iter()
                    .find_map(|k| key.strip_prefix(k.prefix()).map(|id| (*k, id.to_owned())))
                else {
                    continue;
                };
                found.push(Attestation {
                    kind,
                    by: Principal {
                        arn: text("arn").unwrap_or_else(|| id.clone()),
                        id,
                    },
                    images: text("images").unwrap_or_default(),
                    reason: text("reason"),
                    at: text("at").unwrap_or_default(),
                    ends: match item.get("ends") {
                        Some(AttributeValue::Ss(ends)) => ends.clone(),
                        _ => Vec::new(),
                    },
                });
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}

/// What the attestations of one deployment prove, for the images it would apply now:
/// approvals count only when they were about exactly these images.
pub fn approvals(attestations: &[Attestation], images: &str) -> crate::model::approval::Approvals {
    let of = |kind: Kind| {
        attestations
            .iter()
            .filter(move |a| a.kind == kind && a.images == images)
            .map(|a| a.by.clone())
            .collect::<Vec<_>>()
    };
    crate::model::approval::Approvals {
        approvers: of(Kind::Approve),
        requesters: attestations
            .iter()
            .filter(|a| a.kind == Kind::Request)
            .map(|a| a.by.clone())
            .collect(),
        ..Default::default()
    }
}
