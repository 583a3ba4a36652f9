//! A wire-level stub for AWS JSON-protocol services moto does not implement well enough
//! (CodePipeline executions, ECS deployments that move). It listens on a free
//! 127.0.0.1 port and answers `X-Amz-Target: Service.Operation` POSTs with whatever
//! the test's handler returns, so the real SDK client and relctl's adapter are used.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// (HTTP status, AWS error type, message).
pub type Fault = (u16, &'static str, String);
pub type Handler = Arc<dyn Fn(&str, Value) -> Result<Value, Fault> + Send + Sync>;

pub struct Stub {
    pub endpoint: String,
    /// Every operation called, in order.
    pub calls: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound address"));
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = {
            let calls = calls.clone();
            Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
                let (handler, calls) = (handler.clone(), calls.clone());
                async move { answer(&handler, &calls, &headers, &body) }
            })
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            calls,
            task,
        }
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| *c == operation)
            .count()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    handler: &Handler,
    calls: &Mutex<Vec<String>>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
    calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(operation.clone());
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (status, body) = match handler(&operation, request) {
        Ok(value) => (StatusCode::OK, value),
        Err((status, kind, message)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({ "__type": kind, "message": message }),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}
