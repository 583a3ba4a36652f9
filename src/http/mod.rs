//! The controller's HTTP face: `/metrics` (OpenMetrics text, which Prometheus scrapes),
//! `/healthz` (the process is alive), `/readyz` (200 once the state table can be used,
//! with this replica's role and any releases table it cannot use; 503 before that and
//! from the start of shutdown), and, read-only: the promotion board at `/`, a page per
//! environment (`/environments/{project}/{environment}`) and per release
//! (`/releases/{id}`), and the same data as JSON under `/api/v1/` ([`api`]).
//!
//! It takes narrow inputs and imports nothing of the controller: a readiness handle
//! ([`Health`]), the metrics registry with a hook that brings its gauges up to date, and
//! a read-only source of the environments' state ([`StatusSource`]).

mod api;
mod board;
mod page;
mod pages;
pub mod serve;
pub mod view;

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

/// Every configured environment with its state, in configuration order, and the
/// releases the pages name.
#[async_trait]
pub trait StatusSource: Send + Sync {
    async fn environments(&self) -> Result<Vec<(EnvKey, EnvState)>, String>;

    /// The releases of these `(project, release id)`s that can be read now (a board
    /// cell shows a release's description where it has it, and goes on without).
    async fn releases(
        &self,
        _wanted: &[(String, String)],
    ) -> std::collections::HashMap<String, crate::model::Release> {
        Default::default()
    }

    /// One release, by its whole id.
    async fn release(&self, _id: &str) -> Result<Option<crate::model::Release>, String> {
        Ok(None)
    }
}

#[derive(Clone)]
pub struct Site {
    pub health: Arc<Health>,
    pub registry: Arc<Registry>,
    /// Called before `/metrics` is encoded, to bring gauges up to date.
    pub refresh: Arc<dyn Fn() + Send + Sync>,
    pub status: Arc<dyn StatusSource>,
    /// The projects and their environments in promotion order.
    pub layout: Arc<view::Layout>,
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
        .route(
            "/environments/{project}/{environment}",
            get(environment_page),
        )
        .route("/releases/{id}", get(release_page))
        .merge(api::routes())
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
    match board_of(&site).await {
        Ok((cards, states)) => {
            Html(board::render(&site.layout, &cards, &states, now)).into_response()
        }
        Err(error) => unavailable(&error),
    }
}

/// Every environment's card, and the states they were made from.
async fn board_of(site: &Site) -> Result<(Vec<view::Card>, Vec<(EnvKey, EnvState)>), String> {
    let states = site.status.environments().await?;
    let running: Vec<(String, String)> = states
        .iter()
        .filter_map(|(k, s)| Some((k.project.clone(), s.observed.as_ref()?.release_id.clone())))
        .collect();
    let releases = site.status.releases(&running).await;
    Ok((view::cards(&site.layout, &states, &releases), states))
}

fn unavailable(error: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "cannot read the state table: {}\n",
            crate::model::shown::escape(&crate::model::shown::without_account_ids(error))
        ),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page::frame(
            "not found — relctl",
            None,
            &format!(
                "<p><a href=\"/\">← the board</a></p><h1>Not found</h1><p>{}</p>",
                page::escape(what)
            ),
        )),
    )
        .into_response()
}

/// An environment's view, if it is configured.
async fn environment_of(
    site: &Site,
    project: &str,
    env: &str,
) -> Result<Option<view::EnvView>, String> {
    if site.layout.environment(project, env).is_none() {
        return Ok(None);
    }
    let (cards, states) = board_of(site).await?;
    let card = cards
        .into_iter()
        .find(|c| c.project == project && c.environment == env);
    let state = states
        .iter()
        .find(|(k, _)| k.project == project && k.environment == env)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let now = Timestamp::from_utc(chrono::Utc::now());
    Ok(card.map(|card| view::environment(card, &state, now)))
}

async fn environment_page(
    State(site): State<Site>,
    axum::extract::Path((project, env)): axum::extract::Path<(String, String)>,
) -> Response {
    match environment_of(&site, &project, &env).await {
        Ok(Some(view)) => Html(pages::environment(
            &view,
            Timestamp::from_utc(chrono::Utc::now()),
        ))
        .into_response(),
        Ok(None) => not_found("no such environment is configured"),
        Err(error) => unavailable(&error),
    }
}

/// The longest release id looked up (DynamoDB keys may be longer; ids are not).
const LONGEST_ID: usize = 256;

/// A release's view, if there is such a release.
async fn release_of(site: &Site, id: &str) -> Result<Option<view::ReleaseView>, String> {
    if id.is_empty() || id.len() > LONGEST_ID {
        return Ok(None);
    }
    let Some(release) = site.status.release(id).await? else {
        return Ok(None);
    };
    let states = site.status.environments().await?;
    Ok(Some(view::release(&site.layout, &release, &states)))
}

async fn release_page(
    State(site): State<Site>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match release_of(&site, &id).await {
        Ok(Some(view)) => Html(pages::release(
            &view,
            Timestamp::from_utc(chrono::Utc::now()),
        ))
        .into_response(),
        Ok(None) => not_found("no such release"),
        Err(error) => unavailable(&error),
    }
}
