//! One sandbox's Lambda Runtime API (`/2018-06-01/runtime/...`), as the `lambda_runtime`
//! crate in our binaries talks to it: the runtime long-polls for its next event and posts the
//! result or error under the event's request id.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot, watch};

use super::http::{body_within, respond, Body, ReadBody};
use super::{lock, PAYLOAD_LIMIT_BYTES, RESPONSE_LIMIT_BYTES};

const PREFIX: &str = "/2018-06-01/runtime/";

/// One event for the runtime.
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Milliseconds since the epoch, as `Lambda-Runtime-Deadline-Ms` carries it.
    pub deadline_ms: u128,
    pub function_arn: String,
}

/// What the runtime posted for an invocation.
pub enum Reply {
    Response(Bytes),
    /// The function's error document (`errorType`, `errorMessage`).
    Error(Bytes),
}

pub struct RuntimeApi {
    invocations: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    replies: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    /// Set by the runtime's first `next`: the end of the init phase.
    asked: watch::Sender<bool>,
    /// What the runtime posted to `init/error`, if it did before exiting.
    init_error: Mutex<Option<Bytes>>,
}

impl RuntimeApi {
    pub fn new() -> (Self, mpsc::Sender<Invocation>) {
        // One at a time: a sandbox runs one invocation, as in Lambda.
        let (sender, receiver) = mpsc::channel(1);
        let api = Self {
            invocations: tokio::sync::Mutex::new(receiver),
            replies: Mutex::new(HashMap::new()),
            asked: watch::Sender::new(false),
            init_error: Mutex::new(None),
        };
        (api, sender)
    }

    /// Resolves once the runtime asked for its first event.
    pub fn initialized(&self) -> watch::Receiver<bool> {
        self.asked.subscribe()
    }

    /// Where the runtime's reply to `request_id` will arrive.
    pub fn expect_reply(&self, request_id: &str) -> oneshot::Receiver<Reply> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.replies).insert(request_id.to_string(), sender);
        receiver
    }

    pub fn init_error(&self) -> Option<Bytes> {
        lock(&self.init_error).clone()
    }

    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let Some(route) = request
            .uri()
            .path()
            .strip_prefix(PREFIX)
            .map(str::to_string)
        else {
            return respond(StatusCode::NOT_FOUND, "not a Runtime API path");
        };
        let method = request.method().clone();
        match (method, route.as_str()) {
            (Method::GET, "invocation/next") => self.next().await,
            (Method::POST, "init/error") => {
                if let ReadBody::Complete(body) = body_within(request, PAYLOAD_LIMIT_BYTES).await {
                    *lock(&self.init_error) = Some(body);
                }
                accepted()
            }
            (Method::POST, route) => match route
                .strip_prefix("invocation/")
                .and_then(|rest| rest.rsplit_once('/'))
            {
                Some((id, kind @ ("response" | "error"))) => {
                    let is_error = kind == "error";
                    let id = id.to_string();
                    self.reply(&id, is_error, request).await
                }
                _ => respond(StatusCode::NOT_FOUND, "unknown Runtime API path"),
            },
            _ => respond(StatusCode::NOT_FOUND, "unknown Runtime API path"),
        }
    }

    async fn next(&self) -> Response<Body> {
        self.asked.send_replace(true);
        let Some(invocation) = self.invocations.lock().await.recv().await else {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the sandbox is shutting down",
            );
        };
        let mut response = respond(StatusCode::OK, invocation.payload);
        let headers = response.headers_mut();
        for (name, value) in [
            (
                "Lambda-Runtime-Aws-Request-Id",
                invocation.request_id.clone(),
            ),
            (
                "Lambda-Runtime-Deadline-Ms",
                invocation.deadline_ms.to_string(),
            ),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                invocation.function_arn,
            ),
            (
                "Lambda-Runtime-Trace-Id",
                format!(
                    "Root=1-00000000-{};Sampled=0",
                    invocation.request_id.replace('-', "")
                ),
            ),
            ("Content-Type", "application/json".to_string()),
        ] {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        response
    }

    async fn reply(&self, id: &str, is_error: bool, request: Request<Incoming>) -> Response<Body> {
        let Some(waiting) = lock(&self.replies).remove(id) else {
            return respond(
                StatusCode::BAD_REQUEST,
                r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#,
            );
        };
        let body = match body_within(request, RESPONSE_LIMIT_BYTES).await {
            ReadBody::Complete(body) => body,
            ReadBody::TooLarge => {
                // Lambda refuses the runtime's post and fails the invocation with this document.
                let _ = waiting.send(Reply::Error(Bytes::from(
                    serde_json::json!({
                        "errorType": "Function.ResponseSizeTooLarge",
                        "errorMessage": format!(
                            "Response payload size exceeded maximum allowed payload size \
                             ({RESPONSE_LIMIT_BYTES} bytes)."
                        ),
                    })
                    .to_string(),
                )));
                return respond(StatusCode::PAYLOAD_TOO_LARGE, "response too large");
            }
            // The runtime went away mid-post: the invocation ends as its process does.
            ReadBody::Broken => {
                lock(&self.replies).insert(id.to_string(), waiting);
                return respond(StatusCode::BAD_REQUEST, "the body broke off");
            }
        };
        let _ = waiting.send(if is_error {
            Reply::Error(body)
        } else {
            Reply::Response(body)
        });
        accepted()
    }
}

fn accepted() -> Response<Body> {
    respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}
