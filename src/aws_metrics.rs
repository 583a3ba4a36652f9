//! Counts every AWS call by service, operation and outcome (ok, throttled, error,
//! timeout): an SDK interceptor added to each client relctl builds.

use std::sync::Arc;

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{Intercept, context::FinalizerInterceptorContextRef},
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::ConfigBag;

use crate::metrics::{AwsLabels, Metrics};

#[derive(Debug, Clone)]
pub struct CountCalls(pub Arc<Metrics>);

/// Error codes AWS uses for throttling, across services.
fn is_throttling(code: &str) -> bool {
    [
        "Throttl",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "TooManyRequests",
        "SlowDown",
    ]
    .iter()
    .any(|t| code.contains(t))
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "relctl-count-calls"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_default();
        let outcome = match context.output_or_error() {
            Some(Ok(_)) | None => "ok",
            Some(Err(error)) if error.is_timeout_error() => "timeout",
            Some(Err(_)) => {
                let response = context.response();
                let code = response
                    .and_then(|r| r.headers().get("x-amzn-errortype"))
                    .unwrap_or_default();
                let status = response.map(|r| r.status().as_u16()).unwrap_or_default();
                if is_throttling(code) || status == 429 {
                    "throttled"
                } else {
                    "error"
                }
            }
        };
        self.0
            .aws_calls
            .get_or_create(&AwsLabels {
                service,
                operation,
                outcome,
            })
            .inc();
        Ok(())
    }
}
