//! The controller's HTTP face: `/metrics` (OpenMetrics text, which Prometheus scrapes),
//! `/healthz` (the process is alive), `/readyz` (200 once the state table can be used,
//! with this replica's role and any releases table it cannot use; 503 before that and
//! from the start of shutdown), and a read-only status page at `/`.
//!
//! It takes narrow inputs and imports nothing of the controller: a readiness handle
//! ([`Health`]), the metrics registry with a hook that brings its gauges up to date, and
//! a read-only source of the environments' state ([`StatusSource`]).

mod page;
pub mod serve;

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

/// Serves the site on `listener` (the page, `/metrics` and health) and, when given,
/// `/metrics` and health alone on `ops` (for Prometheus and the ECS health check, with
/// the page kept on loopback or behind an authenticating proxy).
pub async fn serve(
    listener: tokio::net::TcpListener,
    ops: Option<tokio::net::TcpListener>,
    site: Site,
    limits: serve::Limits,
    shutdown: CancellationToken,
) {
    let operations = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready));
    let app = operations
        .clone()
        .route("/", get(status_page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(site.clone());
    let operations = operations
        .layer(axum::middleware::map_response(security_headers))
        .with_state(site);
    let page = serve::serve(listener, app, limits, shutdown.clone());
    match ops {
        Some(ops) => {
            tokio::join!(page, serve::serve(ops, operations, limits, shutdown));
        }
        None => page.await,
    }
}

/// What every answer says to a browser: run no script, load nothing from elsewhere,
/// never be framed, never be sniffed into another type, never be cached (the page shows
/// the state now).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
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
            format!(
                "cannot read the state table: {}\n",
                crate::model::shown::escape(&crate::model::shown::without_account_ids(&error))
            ),
        )
            .into_response(),
    }
}
