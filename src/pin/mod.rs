//! Where desired images are recorded for an environment. The reconciler speaks to a
//! [`Pin`] in domain terms; each kind of pin is one adapter file.

pub mod ssm_parameters;

use async_trait::async_trait;

use crate::model::{Change, EnvKey, Images};

pub use ssm_parameters::SsmParameters;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("failed to read pinned images at {location}: {message}")]
    Read { location: String, message: String },
    #[error("failed to pin {service} at {location}: {message}")]
    Write {
        service: String,
        location: String,
        message: String,
    },
}

/// One environment's pins for one release.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub key: &'a EnvKey,
    pub release_id: &'a str,
}

#[async_trait]
pub trait Pin: Send + Sync {
    /// What is pinned now, for every service the environment has a pin for.
    async fn read(&self, target: &Target<'_>) -> Result<Images, PinError>;
    /// Writes each change; a change already in place is harmless to write again.
    async fn write(&self, target: &Target<'_>, changes: &[Change]) -> Result<(), PinError>;
}
