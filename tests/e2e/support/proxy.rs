//! A fault-injection proxy on a free 127.0.0.1 port between relctl and moto: every
//! request is forwarded, except that chosen operations (by their `X-Amz-Target`) are
//! answered with AccessDeniedException, ThrottlingException,
//! ProvisionedThroughputExceededException or a 500,
//! or delayed, on every n-th call. Every exchange is kept, signer's access key and
//! bodies included, for tests that check what went over the wire (the IAM tour).
//! Loopback only; the test owns it and drops it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, Response, StatusCode},
};
use http_body_util::BodyExt;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// What IAM answers a call the caller's policy does not allow.
    AccessDenied,
    Throttle,
    ThroughputExceeded,
    ServerError,
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Operation name (`UpdateItem`, `PutParameter`, `GetRecords`, …).
    pub operation: &'static str,
    pub fault: Fault,
    /// Inject on every `every`-th call of that operation.
    pub every: u32,
    /// Only into calls whose body holds every one of these (empty: any call).
    pub body_has: &'static [&'static str],
}

#[derive(Default)]
struct Counts {
    calls: HashMap<String, u32>,
    injected: HashMap<String, u32>,
    exchanges: Vec<Exchange>,
}

/// One request forwarded, and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// From the SigV4 `Credential=` of the Authorization header.
    pub access_key: String,
    /// The signing service of the credential scope (`dynamodb`, `ssm`, `lambda`, …).
    pub service: String,
    /// `X-Amz-Target`, for the JSON protocols.
    pub target: String,
    pub method: String,
    pub path: String,
    pub body: Bytes,
    pub status: u16,
    pub response: Bytes,
}

pub struct Proxy {
    pub endpoint: String,
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str, rules: Vec<Rule>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        let (upstream, rules) = (upstream.to_owned(), Arc::new(rules));
        let app = {
            let counts = counts.clone();
            Router::new().fallback(move |request: Request<Body>| {
                let (client, upstream, rules, counts) = (
                    client.clone(),
                    upstream.clone(),
                    rules.clone(),
                    counts.clone(),
                );
                async move { forward(client, &upstream, &rules, &counts, request).await }
            })
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            counts,
            task,
        }
    }

    /// Every exchange so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exchanges
            .clone()
    }

    /// How many times a fault was injected into `operation`.
    pub fn injected(&self, operation: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .injected
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Body::from(format!(
            r#"{{"__type":"{kind}","message":"{message}"}}"#
        )))
        .unwrap_or_default()
}

async fn forward(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
    upstream: &str,
    rules: &[Rule],
    counts: &Mutex<Counts>,
    request: Request<Body>,
) -> Response<Body> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let (mut parts, body) = request.into_parts();
    let body: Bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let scope = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(',').next())
        .unwrap_or_default()
        .split('/')
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let mut exchange = Exchange {
        access_key: scope.first().cloned().unwrap_or_default(),
        service: scope.get(3).cloned().unwrap_or_default(),
        target: parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        body: body.clone(),
        status: 0,
        response: Bytes::new(),
    };
    let fault = {
        let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.calls.entry(operation.clone()).or_default();
        *n += 1;
        let n = *n;
        let fault = rules
            .iter()
            .find(|r| {
                r.operation == operation
                    && n.is_multiple_of(r.every)
                    && r.body_has
                        .iter()
                        .all(|needle| body.windows(needle.len()).any(|w| w == needle.as_bytes()))
            })
            .map(|r| r.fault);
        if fault.is_some() {
            *counts.injected.entry(operation.clone()).or_default() += 1;
        }
        fault
    };
    let record = |status: u16| {
        let mut exchange = exchange.clone();
        exchange.status = status;
        counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exchanges
            .push(exchange);
    };
    match fault {
        Some(Fault::AccessDenied) => {
            record(400);
            return error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                "injected by the test proxy: not authorized",
            );
        }
        Some(Fault::Throttle) => {
            record(400);
            return error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            );
        }
        Some(Fault::ThroughputExceeded) => {
            record(400);
            return error(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            );
        }
        Some(Fault::ServerError) => {
            record(500);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "injected by the test proxy",
            );
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = format!("{upstream}{path}").parse().unwrap_or_default();
    parts.headers.remove("host");
    match client
        .request(Request::from_parts(parts, Body::from(body)))
        .await
    {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            exchange.status = parts.status.as_u16();
            exchange.response = body.clone();
            counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .exchanges
                .push(exchange);
            Response::from_parts(parts, Body::from(body))
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "ProxyError", &e.to_string()),
    }
}
