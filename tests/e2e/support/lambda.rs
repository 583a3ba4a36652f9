//! A wire-level stub of Lambda's `Invoke` (REST-JSON: `POST
//! /2015-03-31/functions/{name}/invocations`), which moto runs only with Docker. It
//! listens on a free 127.0.0.1 port, records each invocation (function, payload), and
//! answers as the test's handler says: a payload, and a function error or none — so the
//! real SDK client and relctl's hook runner are used.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::Value;

/// What a function answers: its payload, and `Some("Unhandled")` where it raised.
pub type Answer = (Value, Option<&'static str>);
pub type Handler = Arc<dyn Fn(&str, &Value) -> Answer + Send + Sync>;

pub struct LambdaStub {
    pub endpoint: String,
    /// Every invocation: the function named, and the payload it was given.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LambdaStub {
    pub async fn start(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound address"));
        let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let app = {
            let calls = calls.clone();
            Router::new().route(
                "/2015-03-31/functions/{name}/invocations",
                post(move |Path(name): Path<String>, body: Bytes| {
                    let (handler, calls) = (handler.clone(), calls.clone());
                    async move { invoke(&handler, &calls, &name, &body) }
                }),
            )
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

    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for LambdaStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn invoke(
    handler: &Handler,
    calls: &Mutex<Vec<(String, Value)>>,
    name: &str,
    body: &[u8],
) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "payload is not JSON").into_response();
    };
    calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name.to_owned(), payload.clone()));
    let (answer, error) = handler(name, &payload);
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-amz-executed-version", "$LATEST".parse().expect("header"));
    if let Some(error) = error {
        response
            .headers_mut()
            .insert("x-amz-function-error", error.parse().expect("header"));
    }
    response
}
