//! The shared AWS SDK configuration: the standard credential chain, `AWS_ENDPOINT_URL`
//! honoured as-is (the SDK reads it), the configured region, and a deadline on every call.

use aws_config::{
    BehaviorVersion, ConfigLoader, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig,
};

use crate::config::Config;

pub mod error;
pub mod limit;
pub mod principals;

pub use error::{AwsError, ErrorClass, classify, error_message};

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
