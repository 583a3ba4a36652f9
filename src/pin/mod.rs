//! Where desired images are recorded for an environment. The reconciler speaks to a
//! [`Pin`] in domain terms (services and image URIs); each kind is one adapter file.

pub mod ecr_tag;
pub mod ssm_json_document;
pub mod ssm_parameters;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{
    aws::{AwsError, ErrorClass},
    model::{Change, EnvKey, Images},
};

pub use ssm_parameters::SsmParameters;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("failed to read pinned images at {location}: {source}")]
    Read {
        location: String,
        #[source]
        source: AwsError,
    },
    #[error("failed to pin {service} at {location}: {source}")]
    Write {
        service: String,
        location: String,
        #[source]
        source: AwsError,
    },
    /// The release cannot be pinned this way at all; retrying will not help.
    #[error("{0}")]
    Refused(String),
}

impl PinError {
    /// What a retry can do about this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => source.class,
            Self::Refused(_) => ErrorClass::Permanent,
        }
    }
}

/// One environment's pins for one release.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub key: &'a EnvKey,
    pub release_id: &'a str,
}

#[async_trait]
pub trait Pin: Send + Sync {
    /// The pin kind, as configured (`ssm_parameters`, …), for metrics.
    fn kind(&self) -> &'static str;
    /// The changes that would make the pins hold `desired`: empty when they already do.
    /// `from`/`to` are in the pin's own terms (a URI, a tag, a digest).
    async fn diff(&self, target: &Target<'_>, desired: &Images) -> Result<Vec<Change>, PinError>;
    /// Writes `changes` (from [`Pin::diff`]); writing one already in place is harmless.
    async fn write(
        &self,
        target: &Target<'_>,
        desired: &Images,
        changes: &[Change],
    ) -> Result<Written, PinError>;
    /// What the pins name, per service, as of the last [`Pin::diff`] of `target` (an
    /// image digest behind a tag, say), for an actuator to check what runs against;
    /// empty where the pin has no identity beyond the image URI.
    fn identities(&self, _target: &Target<'_>) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// What a write shows of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Read back to be sure (the write's answer does not say what the pin now holds).
    Unverified,
    /// Each write's answer names what the pin now holds, and it was the change asked
    /// for: reading it back would only repeat that.
    Verified,
}
