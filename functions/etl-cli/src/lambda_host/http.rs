//! The little HTTP/1 plumbing both of the host's APIs share.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Body = Full<Bytes>;

/// Serves every connection `listener` accepts with `handle`, until the task is aborted.
pub async fn serve<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors or similar: the next accept may well succeed.
                tracing::warn!(error = %err, "accept failed");
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = handle(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection ended");
            }
        });
    }
}

/// A request or response body, read whole.
pub enum ReadBody {
    Complete(Bytes),
    /// Longer than the limit (read on to twice the limit, so that a sender still writing
    /// gets the refusal instead of a reset connection).
    TooLarge,
    /// The connection broke off.
    Broken,
}

pub async fn body_within(request: Request<Incoming>, limit: usize) -> ReadBody {
    match Limited::new(request.into_body(), limit.saturating_mul(2))
        .collect()
        .await
    {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            if bytes.len() > limit {
                ReadBody::TooLarge
            } else {
                ReadBody::Complete(bytes)
            }
        }
        Err(err) if err.is::<http_body_util::LengthLimitError>() => ReadBody::TooLarge,
        Err(_) => ReadBody::Broken,
    }
}

pub fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// An AWS REST-JSON service error: the code in `x-amzn-ErrorType`, where the SDKs read it.
pub fn service_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "Type": "User", "message": message });
    let mut response = respond(status, body.to_string());
    if let Ok(value) = code.parse() {
        response.headers_mut().insert("x-amzn-ErrorType", value);
    }
    response
}
