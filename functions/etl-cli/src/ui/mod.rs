//! `etl ui`: the local, read-only viewer. A small HTTP server on 127.0.0.1 (never another
//! address: it serves the database's contents without authentication) with GET routes only,
//! rendering HTML on the server; the only script is the dashboards' refresh.
//!
//! - `/` the runs grid (pipelines × logical dates), filtered by `?pipeline=&from=&to=`;
//! - `/runs/<execution>` a run's page, `/runs/<execution>/history.json` its history as
//!   `GetExecutionHistory` returns it;
//! - `/dashboards/hr`, `/dashboards/clickstream` the Kibana dashboards' views;
//! - `/artifacts?key=` an object of the bucket, readable; `/artifacts/raw?key=` the object.

pub mod artifacts;
pub mod dashboards;
pub mod graph;
pub mod grid;
pub mod html;
pub mod run;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use etl_core::Context;

use crate::executions::{self, ExecutionStoreError};

/// The port `etl ui` listens on unless told otherwise; `etl run` prints links to it.
pub const DEFAULT_PORT: u16 = 8765;

/// What the pages read from.
pub struct Viewer {
    pub ctx: Arc<Context>,
    /// The template's machines, in its order: the grid's rows.
    pub machines: Vec<String>,
}

type Shared = Arc<Viewer>;

/// The address the viewer listens on: always the loopback interface.
pub fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The viewer's routes, all GET.
pub fn app(viewer: Viewer) -> Router {
    Router::new()
        .route("/", get(grid_page))
        .route("/runs/{name}", get(run_page))
        .route("/runs/{name}/history.json", get(history_json))
        .route("/dashboards/{slug}", get(dashboard_page))
        .route("/artifacts", get(artifact_page))
        .route("/artifacts/raw", get(artifact_raw))
        .fallback(get(not_found))
        .with_state(Arc::new(viewer))
}

/// Serves until Ctrl-C.
pub async fn serve(viewer: Viewer, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address(port)).await?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "etl ui listening");
    axum::serve(listener, app(viewer))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<p class=\"alert\" role=\"alert\">{}</p><p><a href=\"/\">Back to the runs grid</a></p>",
        html::escape(message)
    );
    (status, Html(html::page(title, &body))).into_response()
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Cannot read the runs",
        &format!("{what}: {error}"),
    )
}

async fn grid_page(State(viewer): State<Shared>, Query(query): Query<grid::GridQuery>) -> Response {
    let filter = match query.checked() {
        Ok(filter) => filter,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad filter", &e.to_string()),
    };
    let client = match viewer.ctx.postgres().await {
        Ok(client) => client,
        Err(e) => return unavailable("PostgreSQL", &e),
    };
    match grid::load(&client, &viewer.machines, &filter).await {
        Ok(grid) => Html(html::page(
            "Runs",
            &grid::render(&grid, &filter, &viewer.machines),
        ))
        .into_response(),
        Err(e) => unavailable(
            "the run ledger (is the schema applied? run `etl run hr-setup`)",
            &e,
        ),
    }
}

async fn run_page(State(viewer): State<Shared>, Path(name): Path<String>) -> Response {
    let client = match viewer.ctx.postgres().await {
        Ok(client) => client,
        Err(e) => return unavailable("PostgreSQL", &e),
    };
    let execution = match executions::load(&client, &name).await {
        Ok(execution) => execution,
        Err(ExecutionStoreError::NotFound(_)) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such run",
                &format!("No local execution is named {name:?}."),
            )
        }
        Err(e) => return unavailable("the executions table", &e),
    };
    let history = match executions::load_history(&client, &name).await {
        Ok(history) => history.events,
        Err(e) => return unavailable("the execution history", &e),
    };
    let stages = match run::stage_rows(&client, &name).await {
        Ok(stages) => stages,
        Err(e) => return unavailable("the run ledger", &e),
    };
    drop(client);
    let date = execution
        .input
        .get("logical_date")
        .and_then(serde_json::Value::as_str)
        .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
    let artifacts = match date {
        Some(date) => artifacts::list(&viewer.ctx, &execution.machine, date)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the run's objects cannot be listed");
                Vec::new()
            }),
        None => Vec::new(),
    };
    let view = run::RunView {
        execution: &execution,
        events: &history,
        stages: &stages,
        artifacts: &artifacts,
    };
    Html(html::page(&format!("Run {name}"), &run::render(&view))).into_response()
}

async fn history_json(State(viewer): State<Shared>, Path(name): Path<String>) -> Response {
    let client = match viewer.ctx.postgres().await {
        Ok(client) => client,
        Err(e) => return unavailable("PostgreSQL", &e),
    };
    match executions::load_history(&client, &name).await {
        Ok(history) => match serde_json::to_string_pretty(&history) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(e) => unavailable("the history", &e),
        },
        Err(ExecutionStoreError::NotFound(_)) => not_found().await,
        Err(e) => unavailable("the execution history", &e),
    }
}

async fn dashboard_page(State(viewer): State<Shared>, Path(slug): Path<String>) -> Response {
    let Some(dashboard) = dashboards::Dashboard::from_slug(&slug) else {
        return not_found().await;
    };
    let response = dashboards::search(&viewer.ctx, dashboard).await;
    let body = dashboards::render(dashboard, response.as_ref().map_err(String::as_str));
    Html(html::page_with_script(
        dashboard.title(),
        &body,
        dashboards::LIVE_SCRIPT,
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct KeyQuery {
    key: String,
}

/// A key of the bucket the viewer may show: 1 to 1024 bytes, as S3 allows.
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 1024
}

fn bad_key() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Bad key",
        "An object key is 1 to 1024 bytes.",
    )
}

async fn artifact_page(State(viewer): State<Shared>, Query(query): Query<KeyQuery>) -> Response {
    let key = query.key.as_str();
    if !valid_key(key) {
        return bad_key();
    }
    let body = artifacts::render(&viewer.ctx, key).await;
    Html(html::page(key, &body)).into_response()
}

async fn artifact_raw(State(viewer): State<Shared>, Query(query): Query<KeyQuery>) -> Response {
    let key = query.key.as_str();
    if !valid_key(key) {
        return bad_key();
    }
    match artifacts::fetch(&viewer.ctx, key, true).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(artifacts::content_type(key)),
            );
            // The report is the pipeline's HTML: shown, but walled off from the viewer.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
            response
        }
        Err(reason) => error_page(StatusCode::NOT_FOUND, "No such object", &reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_viewer_listens_on_loopback_only() {
        assert!(address(DEFAULT_PORT).ip().is_loopback());
        assert_eq!(address(0).to_string(), "127.0.0.1:0");
    }
}
