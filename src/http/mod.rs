//! The controller's HTTP face: `/metrics` (OpenMetrics text, which Prometheus scrapes),
//! `/healthz` (the process is alive), `/readyz` (200 once the state table can be used,
//! with this replica's role and any releases table it cannot use; 503 before that and
//! from the start of shutdown), and a read-only status page at `/`.
//!
//! It takes narrow inputs and imports nothing of the controller: a readiness handle
//! ([`Health`]), the metrics registry with a hook that brings its gauges up to date, and
//! a read-only source of the environments' state ([`StatusSource`]).

mod page;

use std::sync::Arc;

use async_trait::async_trait;
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

use crate::{
    health::Health,
    metrics::Metrics,
    model::{EnvKey, Timestamp, state::EnvState},
};

/// Every configured environment with its state, in configuration order.
#[async_trait]
pub trait StatusSource: Send + Sync {
    async fn environments(&self) -> Result<Vec<(EnvKey, EnvState)>, String>;
}

#[derive(Clone)]
pub struct Site {
    pub health: Arc<Health>,
    pub registry: Arc<Registry>,
    /// Called before `/metrics` is encoded, to bring gauges up to date.
    pub refresh: Arc<dyn Fn() + Send + Sync>,
    pub status: Arc<dyn StatusSource>,
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
    (site.refresh)();
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
    let health = &site.health;
    let ready = health.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let role = if health.is_leader() {
        "leader"
    } else {
        "standby"
    };
    // Tables relctl cannot use now: their projects wait, the others go on.
    let tables = health.tables.all();
    (
        status,
        Json(json!({ "ready": ready, "role": role, "unusable_tables": tables })),
    )
        .into_response()
}

async fn status_page(State(site): State<Site>) -> Response {
    let now = Timestamp::from_utc(chrono::Utc::now());
    match site.status.environments().await {
        Ok(states) => Html(page::render(&states, now)).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the state table: {error}\n"),
        )
            .into_response(),
    }
}
