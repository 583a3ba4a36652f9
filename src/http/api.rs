//! The read-only JSON API behind the board (`/api/v1/`), for teams to script against:
//!
//! - `GET /api/v1/environments`: every environment's card, in promotion order.
//! - `GET /api/v1/environments/{project}/{environment}`: its card, history (newest
//!   first, rollbacks marked) and delivery figures (last 30 days).
//! - `GET /api/v1/releases/{id}`: a release's images, deployments, where it runs, and
//!   per environment the services whose running image differs from it.
//!
//! A name that is not configured, or a release that does not exist, is a 404 with
//! `{"error": …}`; a state table that cannot be read, a 503.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::Site;

pub fn routes() -> Router<Site> {
    Router::new()
        .route("/api/v1/environments", get(environments))
        .route(
            "/api/v1/environments/{project}/{environment}",
            get(environment),
        )
        .route("/api/v1/releases/{id}", get(release))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": crate::model::shown::without_account_ids(message) })),
    )
        .into_response()
}

async fn environments(State(site): State<Site>) -> Response {
    match super::board_of(&site).await {
        Ok((cards, _)) => Json(json!({ "environments": cards })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn environment(
    State(site): State<Site>,
    Path((project, env)): Path<(String, String)>,
) -> Response {
    match super::environment_of(&site, &project, &env).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such environment is configured"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn release(State(site): State<Site>, Path(id): Path<String>) -> Response {
    match super::release_of(&site, &id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such release"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
