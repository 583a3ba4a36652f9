//! Client-side rate limits per AWS service: every request waits for its service's
//! token bucket before it is sent, so relctl stays under the account's API quotas
//! (SSM's reads, for one, are shared by everything in the account and region) however
//! many environments reconcile at once. A wrapper around the SDK's default HTTPS
//! connector; configured by `[aws.rate_limits]` in requests per second.

use std::{
    collections::{BTreeMap, HashMap},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    },
    orchestrator::HttpRequest,
    runtime_components::RuntimeComponents,
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The service a request is for, from its JSON target, path or host.
pub fn service_of(request: &HttpRequest) -> &'static str {
    let target = request.headers().get("x-amz-target").unwrap_or_default();
    let prefixes = [
        ("DynamoDBStreams_", "dynamodbstreams"),
        ("DynamoDB_", "dynamodb"),
        ("AmazonSSM.", "ssm"),
        ("CodePipeline_", "codepipeline"),
        ("AmazonEC2ContainerServiceV", "ecs"),
        ("AmazonEC2ContainerRegistry_", "ecr"),
    ];
    if let Some((_, service)) = prefixes.iter().find(|(p, _)| target.starts_with(p)) {
        return service;
    }
    let uri = request.uri();
    if uri.contains("/2015-03-31/functions") {
        "lambda"
    } else if uri.contains("sts.") {
        "sts"
    } else {
        "other"
    }
}

#[derive(Debug)]
struct Limits {
    buckets: HashMap<String, DefaultDirectRateLimiter>,
}

impl Limits {
    fn new(per_second: &BTreeMap<String, u32>) -> Self {
        let buckets = per_second
            .iter()
            .filter_map(|(service, rate)| {
                let rate = NonZeroU32::new(*rate)?;
                Some((
                    service.clone(),
                    RateLimiter::direct(Quota::per_second(rate)),
                ))
            })
            .collect();
        Self { buckets }
    }

    async fn wait(&self, service: &str) {
        if let Some(bucket) = self.buckets.get(service) {
            bucket.until_ready().await;
        }
    }
}

/// Connect and read timeouts: what distinguishes one connector from another.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The SDK's default HTTPS client, each request first waiting on its service's bucket.
#[derive(Debug, Clone)]
pub struct Limited {
    limits: Arc<Limits>,
    /// One connector (connection pool) per distinct timeout settings, as the SDK's own.
    connectors: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

impl Limited {
    pub fn client(per_second: &BTreeMap<String, u32>) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            limits: Arc::new(Limits::new(per_second)),
            connectors: Arc::default(),
        })
    }
}

impl HttpClient for Limited {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let inner = connectors
            .entry(key)
            .or_insert_with(|| {
                aws_smithy_http_client::default_connector(settings, components.sleep_impl())
                    .unwrap_or_else(|| SharedHttpConnector::new(NoConnector))
            })
            .clone();
        SharedHttpConnector::new(LimitedConnector {
            inner,
            limits: self.limits.clone(),
        })
    }
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    limits: Arc<Limits>,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, limits) = (self.inner.clone(), self.limits.clone());
        HttpConnectorFuture::new(async move {
            limits.wait(service_of(&request)).await;
            inner.call(request).await
        })
    }
}

/// Stands in if the SDK was built without a default connector (it is not).
#[derive(Debug)]
struct NoConnector;

impl HttpConnector for NoConnector {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Err(
            aws_smithy_runtime_api::client::result::ConnectorError::other(
                "no HTTPS connector was compiled in".into(),
                None,
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_own_bucket() {
        let limits = Limits::new(&BTreeMap::from([
            ("ssm".to_owned(), 2),
            ("off".to_owned(), 0),
        ]));
        let ssm = &limits.buckets["ssm"];
        assert!(
            ssm.check().is_ok() && ssm.check().is_ok(),
            "a burst of the rate passes"
        );
        assert!(
            ssm.check().is_err(),
            "the third call in the same instant waits"
        );
        assert!(
            !limits.buckets.contains_key("dynamodb"),
            "unlisted services are not limited"
        );
        assert!(!limits.buckets.contains_key("off"), "0 turns a limit off");
    }
}
