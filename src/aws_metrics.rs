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

/// ok, throttled, error or timeout, from a call's (or attempt's) result.
fn outcome(context: &FinalizerInterceptorContextRef<'_>) -> &'static str {
    match context.output_or_error() {
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
    }
}

fn labels(cfg: &ConfigBag, outcome: &'static str) -> AwsLabels {
    let (service, operation) = cfg
        .load::<Metadata>()
        .map(|m| (m.service().to_owned(), m.name().to_owned()))
        .unwrap_or_default();
    AwsLabels {
        service,
        operation,
        outcome,
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "relctl-count-calls"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let outcome = outcome(context);
        if outcome != "ok" {
            self.0
                .aws_failed_attempts
                .get_or_create(&labels(cfg, outcome))
                .inc();
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let outcome = outcome(context);
        let labels = labels(cfg, outcome);
        tracing::trace!(
            target: "relctl::aws_calls",
            service = %labels.service,
            operation = %labels.operation,
            outcome,
            "AWS call"
        );
        self.0.aws_calls.get_or_create(&labels).inc();
        Ok(())
    }
}
