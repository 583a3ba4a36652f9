//! The controller's HTTP face: `/metrics` (Prometheus text), `/healthz` (the process
//! is alive), `/readyz` (configuration loaded, tables reachable, streams open; 503
//! otherwise), and a read-only status page at `/`. Nothing secret is served.

mod page;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{controller::Health, metrics::Metrics, reconciler::Context};

#[derive(Clone)]
pub struct Site {
    pub ctx: Arc<Context>,
    pub registry: Arc<Registry>,
    pub health: Arc<Health>,
}

pub async fn serve(listener: tokio::net::TcpListener, site: Site, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(site);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        warn!(%error, "HTTP server stopped");
    }
}

async fn metrics(State(site): State<Site>) -> Response {
    let ctx = &site.ctx;
    ctx.metrics.queue_depth.set(ctx.queue.len() as i64);
    ctx.metrics.in_flight.set(ctx.queue.in_flight() as i64);
    let drifted = ctx.drifted.lock().map(|d| d.len()).unwrap_or_default();
    ctx.metrics.drifted.set(drifted as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Metrics::encode(&site.registry),
    )
        .into_response()
}

async fn ready(State(site): State<Site>) -> Response {
    let ready = site.health.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "role": "leader" }))).into_response()
}

async fn status_page(State(site): State<Site>) -> Response {
    match site.ctx.state.list().await {
        Ok(states) => Html(page::render(&site.ctx.config, &states, site.ctx.now())).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the state table: {error}\n"),
        )
            .into_response(),
    }
}
