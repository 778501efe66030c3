//! What the test proxies ([`crate::sigv4_proxy`], [`crate::fault_proxy`]) share: serving
//! HTTP/1 on a free local port, reading a request whole, forwarding it to the real server and
//! answering with that server's response.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub type ProxyResponse = Response<Full<Bytes>>;

/// Serves `handle` on a free local port until the returned task is aborted; returns the
/// proxy's URL (`http://127.0.0.1:PORT`) and the task.
pub async fn serve<H, F>(handle: H) -> (String, JoinHandle<()>)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = ProxyResponse> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = Arc::clone(&handle);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = handle(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

/// A request's head and its whole body (empty if the client went away mid-body).
pub async fn receive(request: Request<Incoming>) -> (Parts, Bytes) {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    (parts, body)
}

/// An answer made here, not by the server.
pub fn respond(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> ProxyResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::try_from(*name),
            hyper::header::HeaderValue::try_from(*value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Sends the request on to `upstream` (its base URL) as it came, but for the headers the
/// HTTP stack sets itself, and returns the server's response (502 if there was none).
pub async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    parts: &Parts,
    body: Bytes,
) -> ProxyResponse {
    let upstream = upstream.trim_end_matches('/');
    let path = parts.uri.path();
    let target = match parts.uri.query() {
        None | Some("") => format!("{upstream}{path}"),
        Some(q) => format!("{upstream}{path}?{q}"),
    };
    let mut forward = client.request(parts.method.clone(), target).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    match forward.send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let headers = upstream.headers().clone();
            let bytes = upstream.bytes().await.unwrap_or_default();
            let mut response = Response::new(Full::new(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(err) => respond(StatusCode::BAD_GATEWAY, &[], err.to_string()),
    }
}
