//! Client-side rate limits per AWS operation: every request waits for the token bucket
//! of the quota it draws on before it is sent, so relctl stays under the account's API
//! quotas (SSM's reads, for one, are shared by everything in the account and Region)
//! however many environments reconcile at once. The defaults mirror AWS's per-operation
//! quotas ([`quotas::DEFAULTS`]); `[aws.rate_limits]` overrides them by operation
//! (`"ssm.PutParameter" = 3`) or by service (`ecs = 20`: one bucket for all of it).
//! A wrapper around the SDK's default HTTPS connector.

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

pub mod quotas;

/// The service and operation a request is for, from its JSON target, path or body.
pub fn operation_of(request: &HttpRequest) -> (&'static str, &str) {
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
        let operation = target
            .rsplit_once('.')
            .map(|(_, op)| op)
            .unwrap_or_default();
        return (service, operation);
    }
    let uri = request.uri();
    if let Some((_, rest)) = uri.split_once("/2015-03-31/functions/") {
        let path = rest.split('?').next().unwrap_or_default();
        let operation = match (request.method(), path.split_once('/').map(|(_, p)| p)) {
            ("GET", None) => "GetFunction",
            ("GET", Some("configuration")) => "GetFunctionConfiguration",
            ("PUT", Some("code")) => "UpdateFunctionCode",
            ("PUT", Some("configuration")) => "UpdateFunctionConfiguration",
            _ => "",
        };
        return ("lambda", operation);
    }
    if uri.contains("sts.") {
        let body = request.body().bytes().unwrap_or_default();
        let action = std::str::from_utf8(body)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or_default();
        return ("sts", action);
    }
    ("other", "")
}

/// The service a request is for.
pub fn service_of(request: &HttpRequest) -> &'static str {
    operation_of(request).0
}

/// One quota's token bucket, shared by the operations that draw on it.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "rate and burst are for the tests")
)]
struct Bucket {
    limiter: Arc<DefaultDirectRateLimiter>,
    rate: u32,
    burst: u32,
}

fn bucket(rate: u32, burst: u32) -> Option<Bucket> {
    let sustained = NonZeroU32::new(rate)?;
    let size = NonZeroU32::new(burst).unwrap_or(sustained);
    Some(Bucket {
        limiter: Arc::new(RateLimiter::direct(
            Quota::per_second(sustained).allow_burst(size),
        )),
        rate,
        burst: size.get(),
    })
}

#[derive(Debug, Default)]
struct Limits {
    /// (service, operation) → its quota's bucket; None: that operation is not limited.
    operations: HashMap<(String, String), Option<Bucket>>,
    /// service → the bucket of every operation without its own; None: not limited.
    services: HashMap<String, Option<Bucket>>,
}

impl Limits {
    /// The default quotas with `overrides` (`service` or `service.Operation` →
    /// requests per second, 0 = no limit) applied.
    fn new(overrides: &BTreeMap<String, u32>) -> Self {
        let mut limits = Self::default();
        let whole_service = |service: &str| overrides.contains_key(service);
        for quota in quotas::DEFAULTS {
            if whole_service(quota.service) {
                continue;
            }
            // One override of any operation of a shared quota sets the shared bucket.
            let rate = quota
                .operations
                .iter()
                .find_map(|op| overrides.get(&format!("{}.{op}", quota.service)).copied());
            let shared = match rate {
                Some(rate) => bucket(rate, rate),
                None => bucket(quota.rate, quota.burst),
            };
            if quota.operations.is_empty() {
                limits
                    .services
                    .insert(quota.service.to_owned(), shared.clone());
            }
            for op in quota.operations {
                limits
                    .operations
                    .insert((quota.service.to_owned(), (*op).to_owned()), shared.clone());
            }
        }
        for (key, rate) in overrides {
            match key.split_once('.') {
                None => {
                    limits.services.insert(key.clone(), bucket(*rate, *rate));
                }
                Some((service, op)) => {
                    let known = (service.to_owned(), op.to_owned());
                    if !whole_service(service) && !limits.operations.contains_key(&known) {
                        limits.operations.insert(known, bucket(*rate, *rate));
                    }
                }
            }
        }
        limits
    }

    fn bucket(&self, service: &str, operation: &str) -> Option<Bucket> {
        let key = (service.to_owned(), operation.to_owned());
        match self.operations.get(&key) {
            Some(bucket) => bucket.clone(),
            None => self.services.get(service).cloned().flatten(),
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
        let (inner, limits) = (self.inner.clone(), &self.limits);
        let (service, operation) = operation_of(&request);
        let bucket = limits.bucket(service, operation);
        HttpConnectorFuture::new(async move {
            if let Some(bucket) = bucket {
                bucket.limiter.until_ready().await;
            }
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

    fn limits(overrides: &[(&str, u32)]) -> Limits {
        Limits::new(
            &overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        )
    }

    /// (rate, burst) of the bucket `service.operation` waits on.
    fn quota(limits: &Limits, service: &str, operation: &str) -> Option<(u32, u32)> {
        limits.bucket(service, operation).map(|b| (b.rate, b.burst))
    }

    fn shared(limits: &Limits, a: (&str, &str), b: (&str, &str)) -> bool {
        match (limits.bucket(a.0, a.1), limits.bucket(b.0, b.1)) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a.limiter, &b.limiter),
            _ => false,
        }
    }

    #[test]
    fn each_operation_draws_on_its_own_quota() {
        let limits = limits(&[]);
        assert_eq!(quota(&limits, "ecr", "PutImage"), Some((10, 10)));
        assert_eq!(quota(&limits, "ecr", "BatchGetImage"), Some((2000, 2000)));
        assert!(!shared(
            &limits,
            ("ecr", "PutImage"),
            ("ecr", "BatchGetImage")
        ));
        assert_eq!(quota(&limits, "ecs", "UpdateService"), Some((5, 50)));
        assert_eq!(
            quota(&limits, "ecr", "DescribeImages"),
            None,
            "an operation without a published quota is not limited"
        );
        assert_eq!(quota(&limits, "dynamodb", "GetItem"), None);
    }

    #[test]
    fn operations_that_share_a_quota_share_a_bucket() {
        let limits = limits(&[]);
        assert!(shared(
            &limits,
            ("ssm", "GetParametersByPath"),
            ("ssm", "GetParameters")
        ));
        assert!(!shared(
            &limits,
            ("ssm", "GetParameters"),
            ("ssm", "PutParameter")
        ));
        assert!(shared(
            &limits,
            ("lambda", "UpdateFunctionCode"),
            ("lambda", "GetFunctionConfiguration")
        ));
        assert!(!shared(
            &limits,
            ("lambda", "UpdateFunctionCode"),
            ("lambda", "GetFunction")
        ));
    }

    #[test]
    fn overrides_set_one_operation_or_a_whole_service() {
        let limits = limits(&[("ssm.GetParameters", 2), ("ecs", 3), ("ecr.PutImage", 0)]);
        assert_eq!(quota(&limits, "ssm", "GetParametersByPath"), Some((2, 2)));
        assert!(shared(
            &limits,
            ("ecs", "UpdateService"),
            ("ecs", "DescribeServices")
        ));
        assert_eq!(quota(&limits, "ecs", "UpdateService"), Some((3, 3)));
        assert_eq!(
            quota(&limits, "ecr", "PutImage"),
            None,
            "0 turns a limit off"
        );
    }

    #[test]
    fn a_bucket_lets_its_burst_through_at_once_and_then_waits() {
        let limits = limits(&[]);
        let put = limits.bucket("ecr", "PutImage").unwrap();
        // A full bucket: its burst passes without waiting, however slow the machine.
        assert!((0..10).all(|_| put.limiter.check().is_ok()));
    }
}
