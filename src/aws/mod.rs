//! The shared AWS SDK configuration: the standard credential chain, `AWS_ENDPOINT_URL`
//! honoured as-is (the SDK reads it), the configured region, and a deadline on every call.

use aws_config::{
    BehaviorVersion, ConfigLoader, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig,
};

use crate::config::Config;

pub mod limit;

/// A loader with relctl's region, timeouts and retries; callers may add to it (the tests
/// point it at their emulator) before `load()`.
pub fn loader(config: &Config) -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(config.aws.call_timeout)
                .build(),
        )
        // Standard mode: exponential backoff with jitter on throttling and 5xx.
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .http_client(limit::Limited::client(&config.aws.rate_limits));
    if let Some(region) = &config.aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader
}

pub async fn load(config: &Config) -> SdkConfig {
    loader(config).load().await
}

/// A one-line account of a failed AWS call, fit for a log field or a `status_message`
/// ("ThrottlingException: Rate exceeded", "timed out", …), without the raw response the
/// SDK's own Display would drag along.
pub fn error_message<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
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
