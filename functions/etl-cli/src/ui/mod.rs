//! `etl ui`: the read-only run viewer. A small HTTP server on 127.0.0.1 (never another
//! address: it serves the database's contents without authentication) with GET routes only,
//! rendering HTML on the server; the only script is the dashboards' refresh.
//!
//! - `/` the runs grid (pipelines × logical dates), filtered by `?pipeline=&from=&to=`;
//! - `/runs/<execution>` a run's page, `/runs/<execution>/history.json` its history as
//!   `GetExecutionHistory` returns it;
//! - `/dashboards/hr`, `/dashboards/clickstream` the Kibana dashboards' views;
//! - `/artifacts?key=` an object of the bucket, readable; `/artifacts/raw?key=` the object.
//!
//! The runs come from a [`source::RunSource`]: the local database (`etl run`'s executions and
//! the run ledger), or with `--deployed` the Step Functions API ([`deployed_runs`]: the
//! machines `etl start` finds, their executions, histories and deployed definitions).
//!
//! Only requests addressed to the viewer itself are answered: a `Host` other than
//! `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>` (the port it listens on; without
//! the port only when that is 80) gets `421 Misdirected Request`. Listening on loopback keeps
//! other machines out, but not a web page elsewhere whose name an attacker re-points at
//! 127.0.0.1 (DNS rebinding): the browser then sends that name as the Host, and is refused.

pub mod artifacts;
pub mod dashboards;
pub mod deployed_runs;
pub mod graph;
pub mod grid;
pub mod html;
pub mod run;
pub mod source;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use etl_core::Context;

use source::{RunSource, SourceError};

/// The port `etl ui` listens on unless told otherwise; `etl run` prints links to it.
pub const DEFAULT_PORT: u16 = 8765;

/// What the pages read from.
pub struct Viewer {
    pub ctx: Arc<Context>,
    /// The template's machines, in its order: the grid's rows.
    pub machines: Vec<String>,
    /// Where the runs are read: locally or from Step Functions.
    pub source: RunSource,
}

type Shared = Arc<Viewer>;

/// The address the viewer listens on: always the loopback interface.
pub fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The viewer's routes, all GET, answering only requests addressed to `port` on loopback.
pub fn app(viewer: Viewer, port: u16) -> Router {
    let routes = Router::new()
        .route("/", get(grid_page))
        .route("/runs/{name}", get(run_page))
        .route("/runs/{name}/history.json", get(history_json))
        .route("/dashboards/{slug}", get(dashboard_page))
        .route("/artifacts", get(artifact_page))
        .route("/artifacts/raw", get(artifact_raw))
        .fallback(get(not_found))
        .with_state(Arc::new(viewer));
    loopback_hosts_only(routes, port)
}

/// Serves until Ctrl-C.
pub async fn serve(viewer: Viewer, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address(port)).await?;
    let bound = listener.local_addr()?;
    tracing::info!(url = %format!("http://{bound}"), "etl ui listening");
    axum::serve(listener, app(viewer, bound.port()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// The `Host` values the viewer answers on `port`: its loopback names with the port, and
/// without it only on port 80 (where browsers leave it out).
pub fn allowed_hosts(port: u16) -> Vec<String> {
    let names = ["127.0.0.1", "localhost", "[::1]"];
    let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
    if port == 80 {
        hosts.extend(names.iter().map(ToString::to_string));
    }
    hosts
}

/// Whether `host` (a `Host` header or a request target's authority) names the viewer.
/// Host names are case-insensitive; anything else must match exactly.
pub fn host_allowed(host: &str, port: u16) -> bool {
    allowed_hosts(port)
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
}

/// `router`, refusing (421) every request not addressed to `port` on loopback.
pub fn loopback_hosts_only(router: Router, port: u16) -> Router {
    router.layer(middleware::from_fn_with_state(port, refuse_other_hosts))
}

async fn refuse_other_hosts(State(port): State<u16>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)"));
    // An absolute-form target (`GET http://name/ HTTP/1.1`) names the host too.
    let authority = request
        .uri()
        .authority()
        .map(axum::http::uri::Authority::as_str);
    let addressed_here = host.is_some_and(|h| host_allowed(h, port))
        && authority.is_none_or(|a| host_allowed(a, port));
    if addressed_here {
        return next.run(request).await;
    }
    tracing::warn!(
        ?host,
        ?authority,
        "refused a request addressed to another host"
    );
    error_page(
        StatusCode::MISDIRECTED_REQUEST,
        "Wrong host",
        &format!(
            "This viewer answers only requests addressed to 127.0.0.1:{port} (or localhost:{port}); \
             this one was for {}. A page of another site reaching it through DNS rebinding is \
             refused.",
            host.unwrap_or("no host")
        ),
    )
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

/// A run that is not there (404) or runs that cannot be read (503), as a page.
fn source_error(error: SourceError) -> Response {
    match error {
        SourceError::NotFound(message) => {
            error_page(StatusCode::NOT_FOUND, "No such run", &message)
        }
        unavailable @ SourceError::Unavailable { .. } => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot read the runs",
            &unavailable.to_string(),
        ),
    }
}

async fn grid_page(State(viewer): State<Shared>, Query(query): Query<grid::GridQuery>) -> Response {
    let filter = match query.checked() {
        Ok(filter) => filter,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad filter", &e.to_string()),
    };
    let page = match viewer
        .source
        .grid(&viewer.ctx, &viewer.machines, &filter)
        .await
    {
        Ok(page) => page,
        Err(e) => return source_error(e),
    };
    let deployed = viewer.source.is_deployed();
    let mut body = source::notes_html(&page.notes);
    if deployed && page.grid.dates.is_empty() {
        body.push_str(&deployed_runs::render_no_runs());
    } else {
        body.push_str(&grid::render(&page.grid, &filter, &viewer.machines));
    }
    if let Some(undated) = &page.undated {
        body.push_str(&deployed_runs::render_undated(undated));
    }
    let title = if deployed { "Deployed runs" } else { "Runs" };
    Html(html::page(title, &body)).into_response()
}

async fn run_page(State(viewer): State<Shared>, Path(name): Path<String>) -> Response {
    let mut data = match viewer.source.run(&viewer.ctx, &name).await {
        Ok(data) => data,
        Err(e) => return source_error(e),
    };
    // The input's date; a deployed execution started without one (a scheduled start) may
    // still carry it in its name.
    let date = data
        .execution
        .input
        .get("logical_date")
        .and_then(serde_json::Value::as_str)
        .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
        .or_else(|| crate::deployed::date_of_execution_name(&name));
    let artifacts = match date {
        Some(date) => artifacts::list(&viewer.ctx, &data.execution.machine, date)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the run's objects cannot be listed");
                data.notes.push(format!(
                    "The objects this run wrote cannot be listed (bucket {}): {e}",
                    viewer.ctx.config.bucket
                ));
                Vec::new()
            }),
        None => Vec::new(),
    };
    let view = run::RunView {
        execution: &data.execution,
        events: &data.events,
        stages: &data.stages,
        artifacts: &artifacts,
        deployed_stages: data.deployed_stages.as_deref(),
    };
    let mut body = source::notes_html(&data.notes);
    body.push_str(&run::render(&view));
    let title = if viewer.source.is_deployed() {
        format!("Deployed run {name}")
    } else {
        format!("Run {name}")
    };
    Html(html::page(&title, &body)).into_response()
}

async fn history_json(State(viewer): State<Shared>, Path(name): Path<String>) -> Response {
    match viewer.source.history(&viewer.ctx, &name).await {
        Ok(history) => match serde_json::to_string_pretty(&history) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(e) => source_error(SourceError::unavailable("the history", &e)),
        },
        Err(e) => source_error(e),
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

    #[test]
    fn only_the_loopback_names_with_the_port_are_hosts_of_the_viewer() {
        for host in [
            "127.0.0.1:8765",
            "localhost:8765",
            "LOCALHOST:8765",
            "[::1]:8765",
        ] {
            assert!(host_allowed(host, 8765), "{host}");
        }
        for host in [
            "127.0.0.1",
            "localhost",
            "127.0.0.1:8766",
            "localhost.:8765",
            "127.0.0.2:8765",
            "0.0.0.0:8765",
            "evil.example:8765",
            "127.0.0.1:8765.evil.example",
            "",
        ] {
            assert!(!host_allowed(host, 8765), "{host}");
        }
        // Port 80: browsers leave it out of the Host.
        assert!(host_allowed("localhost", 80) && host_allowed("127.0.0.1:80", 80));
        assert!(!host_allowed("localhost", 8080));
    }

    /// The status line's code of a raw HTTP request to `port`.
    async fn status_of(port: u16, request: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"))
    }

    #[tokio::test]
    async fn requests_for_another_host_are_refused_on_every_route() {
        let listener = tokio::net::TcpListener::bind(address(0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes = Router::new()
            .route("/", get(|| async { "the grid" }))
            .fallback(get(not_found));
        tokio::spawn(async move { axum::serve(listener, loopback_hosts_only(routes, port)).await });
        let request = |target: &str, host: Option<&str>| {
            let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
            format!("GET {target} HTTP/1.1\r\n{host}Connection: close\r\n\r\n")
        };
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            assert_eq!(
                status_of(port, &request("/", Some(&host))).await,
                200,
                "{host}"
            );
            assert_eq!(
                status_of(port, &request("/nowhere", Some(&host))).await,
                404,
                "{host}"
            );
        }
        for host in [
            format!("rebound.example:{port}"),
            "rebound.example".to_string(),
            "127.0.0.1".to_string(),
            format!("127.0.0.1:{}", port.wrapping_add(1)),
        ] {
            assert_eq!(
                status_of(port, &request("/", Some(&host))).await,
                421,
                "{host}"
            );
            assert_eq!(
                status_of(port, &request("/nowhere", Some(&host))).await,
                421,
                "{host}"
            );
        }
        let no_host = "GET / HTTP/1.0\r\n\r\n";
        assert_eq!(status_of(port, no_host).await, 421, "no Host at all");
        // The request target's own authority must name the viewer too.
        let absolute = request(
            "http://rebound.example/",
            Some(&format!("127.0.0.1:{port}")),
        );
        assert_eq!(status_of(port, &absolute).await, 421);
    }
}
