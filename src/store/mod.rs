//! DynamoDB adapters: the releases table (RFC 013 names, read as the older tools wrote
//! it), the controller's own state table, and table set-up.

pub mod attestations;
pub mod decode;
pub mod lease;
pub mod releases;
pub mod runs;
pub mod setup;
pub mod state;
pub mod verified;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub use releases::ReleaseStore;

use crate::aws::{AwsError, ErrorClass};

/// A cause kept as it is, whatever its type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use state::StateStore;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to {op} on table {table}: {source}")]
    Aws {
        op: &'static str,
        table: String,
        #[source]
        source: AwsError,
    },
    #[error("failed to encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("failed to decode {what}: {source}")]
    Decode {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("table {table} cannot be used by relctl: {}; nothing was changed on it", problems.join("; "))]
    Unusable {
        table: String,
        problems: Vec<String>,
    },
    #[error(
        "failed to write as leader: the lease this replica held (owner {owner}, counter {counter}) has passed to another replica"
    )]
    Fenced { owner: String, counter: u64 },
    #[error(
        "release {release_id} in table {table} is too large to take the status of {entries} refused entries (DynamoDB's 400 KB item limit): write a new, smaller release"
    )]
    TooLarge {
        table: String,
        release_id: String,
        entries: usize,
    },
}

impl StoreError {
    pub(crate) fn aws<E, R>(
        op: &'static str,
        table: &str,
        error: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Self::Aws {
            op,
            table: table.to_owned(),
            source: crate::aws::AwsError::from_sdk(error),
        }
    }
}

impl StoreError {
    /// What a retry can do about this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws { source, .. } => source.class,
            Self::Fenced { .. } => ErrorClass::Conflict,
            Self::Encode { .. }
            | Self::Decode { .. }
            | Self::Unusable { .. }
            | Self::TooLarge { .. } => ErrorClass::Permanent,
        }
    }
}

/// True when a DynamoDB call failed only because its condition did not hold.
pub(crate) fn is_condition_failed<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}
