//! The controller's HTTP face: `/metrics` (OpenMetrics text, which Prometheus scrapes),
//! `/healthz` (the process is alive), `/readyz` (200 once the state table can be used,
//! with this replica's role and any releases table it cannot use; 503 before that and
//! from the start of shutdown), and a read-only status page at `/`.

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

use crate::{controller::Shared, metrics::Metrics};

#[derive(Clone)]
pub struct Site {
    pub shared: Arc<Shared>,
    pub registry: Arc<Registry>,
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
    let metrics = &site.shared.metrics;
    match site.shared.current() {
        Some(ctx) => {
            metrics.queue_depth.set(ctx.queue.len() as i64);
            metrics.in_flight.set(ctx.queue.in_flight() as i64);
            let drifted = ctx.drifted.lock().map(|d| d.len()).unwrap_or_default();
            metrics.drifted.set(drifted as i64);
        }
        None => {
            metrics.queue_depth.set(0);
            metrics.in_flight.set(0);
        }
    }
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
    let health = &site.shared.health;
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
    let now = crate::model::Timestamp::from_utc(chrono::Utc::now());
    match site.shared.state.list().await {
        Ok(states) => Html(page::render(&site.shared.config, &states, now)).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the state table: {error}\n"),
        )
            .into_response(),
    }
}
