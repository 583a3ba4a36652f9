//! One way to read any AWS SDK error: a one-line account fit for a log field or a
//! `status_message` ("ThrottlingException: Rate exceeded", "timed out", …) without the
//! raw response the SDK's own Display drags along, the original kept as the error's
//! source, and a class that says what a retry can do.

use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What kind of failure an AWS call had, for the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service asked us to slow down: retry, later than usual.
    Throttled,
    /// No answer in time, or the endpoint was unreachable: retry.
    Timeout,
    /// What was asked for does not exist.
    NotFound,
    /// A condition did not hold (someone else wrote first): look again.
    Conflict,
    /// Refused in a way no retry changes (access denied, a malformed request).
    Permanent,
    /// Anything else (5xx, a broken response): retry.
    Transient,
}

/// A failed AWS call: its one-line account, its class, and the SDK's error as source.
#[derive(Debug, thiserror::Error)]
#[error("{summary}")]
pub struct AwsError {
    pub summary: String,
    pub class: ErrorClass,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl AwsError {
    pub fn from_sdk<E, R>(error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Self {
            summary: error_message(&error),
            class: classify(&error),
            source: Box::new(error),
        }
    }

    /// An error that did not come from the SDK (a response missing what it must hold).
    pub fn other(summary: impl Into<String>, class: ErrorClass) -> Self {
        let summary = summary.into();
        Self {
            source: summary.clone().into(),
            summary,
            class,
        }
    }
}

/// Service error codes no retry can change.
const PERMANENT: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ValidationException",
    "InvalidParameterException",
    "InvalidParameterValueException",
    "ParameterPatternMismatchException",
    "ClientException",
];

const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
];

const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ParameterNotFound",
    "NotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "PipelineNotFoundException",
    "ServiceNotFoundException",
];

const CONFLICT: &[&str] = &[
    "ConditionalCheckFailedException",
    "TransactionCanceledException",
    "TransactionConflictException",
    "ResourceConflictException",
    "ConflictException",
];

/// What a retry can do about `error`.
pub fn classify<E, R>(error: &SdkError<E, R>) -> ErrorClass
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ErrorClass::Timeout,
        SdkError::ServiceError(service) => class_of_code(service.err().code().unwrap_or_default()),
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// The class of a service error code.
pub fn class_of_code(code: &str) -> ErrorClass {
    if THROTTLED.contains(&code) {
        ErrorClass::Throttled
    } else if NOT_FOUND.contains(&code) {
        ErrorClass::NotFound
    } else if CONFLICT.contains(&code) {
        ErrorClass::Conflict
    } else if PERMANENT.contains(&code) {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    }
}

/// A one-line account of a failed AWS call.
pub fn error_message<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(failure) => format!(
            "could not reach the AWS endpoint: {}",
            failure
                .as_connector_error()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "dispatch failure".into())
        ),
        other => aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classed_by_what_a_retry_can_do() {
        assert_eq!(class_of_code("ThrottlingException"), ErrorClass::Throttled);
        assert_eq!(
            class_of_code("ProvisionedThroughputExceededException"),
            ErrorClass::Throttled
        );
        assert_eq!(
            class_of_code("AccessDeniedException"),
            ErrorClass::Permanent
        );
        assert_eq!(
            class_of_code("ResourceNotFoundException"),
            ErrorClass::NotFound
        );
        assert_eq!(
            class_of_code("ConditionalCheckFailedException"),
            ErrorClass::Conflict
        );
        assert_eq!(class_of_code("InternalServerError"), ErrorClass::Transient);
    }
}
