//! A local Lambda service for the real function binaries, the stand-in for `sam local
//! start-lambda` and `cargo lambda watch` where they are more lenient than Lambda.
//!
//! The Invoke API in front (`POST /2015-03-31/functions/{name}/invocations`, what the SDK
//! and `etl run --lambda-endpoint` call); behind it, one process per concurrent invocation,
//! each with its own Runtime API, kept warm between invocations. It answers as Lambda does
//! where the others do not: a process that dies during init or an invocation is
//! `Runtime.ExitError`, a run past the template's `Timeout` ends the process with
//! `Sandbox.Timedout`, a peak RSS over `MemorySize` is `Runtime.OutOfMemory`, payloads over
//! 6 MB are refused both ways, and the account's concurrency quota throttles with
//! `TooManyRequestsException`.

mod http;
mod runtime_api;
mod sandbox;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::template::FunctionSizing;
use http::{body_within, respond, serve, service_error, Body, ReadBody};
use runtime_api::{Invocation, Reply};
use sandbox::{FunctionSpec, Outcome, Sandbox};

/// Lambda's limit on a synchronous invocation's request, bytes.
pub const PAYLOAD_LIMIT_BYTES: usize = 6 * 1024 * 1024;
/// And on its response: the figure Lambda's own error message gives.
pub const RESPONSE_LIMIT_BYTES: usize = 6_291_556;
/// A new account's concurrency quota: the strictest a first deployment may meet.
pub const NEW_ACCOUNT_CONCURRENCY: usize = 10;
/// The account in the function ARNs the host hands out (moto's default account).
const ACCOUNT: &str = "123456789012";
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

pub struct HostConfig {
    /// Holds each function as `<name>/bootstrap` (what `cargo lambda build` leaves) or as a
    /// plain `<name>` executable (what `cargo build` leaves in `target/debug`).
    pub binaries: PathBuf,
    /// Binary → the template's `Timeout` and `MemorySize`. Only these functions are served;
    /// any other name is `ResourceNotFoundException`, as in the deployed stack.
    pub sizing: HashMap<String, FunctionSizing>,
    /// The functions' environment (their settings, AWS region and credentials).
    pub env: Vec<(String, String)>,
    /// Invocations running at once across all functions, as the account quota counts them.
    pub concurrency: usize,
    /// Multiplies every `Timeout` (tests shorten them).
    pub timeout_scale: f64,
    pub region: String,
}

/// The running service; stops, killing every function process, when dropped.
pub struct LambdaHost {
    address: SocketAddr,
    server: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        self.server.abort();
        // The warm processes end with their sandboxes (`kill_on_drop`); one still running an
        // invocation is dropped, not parked, when that invocation ends.
        self.shared.closed.store(true, Ordering::SeqCst);
        lock(&self.shared.idle).clear();
    }
}

impl LambdaHost {
    pub async fn start(config: HostConfig, address: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            idle: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            invocations: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let served = Arc::clone(&shared);
        let server = tokio::spawn(serve(listener, move |request| {
            let shared = Arc::clone(&served);
            async move { shared.handle(request).await }
        }));
        Ok(Self {
            address,
            server,
            shared,
        })
    }

    /// Function processes started so far: one per cold start.
    pub fn sandboxes_started(&self) -> u64 {
        self.shared.cold_starts.load(Ordering::SeqCst)
    }

    /// The Invoke API's base URL, for `--lambda-endpoint` or an SDK client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

struct Shared {
    config: HostConfig,
    /// Warm sandboxes waiting for their next event, per function.
    idle: Mutex<HashMap<String, Vec<Sandbox>>>,
    running: AtomicUsize,
    invocations: AtomicU64,
    cold_starts: AtomicU64,
    /// Set when the host is dropped: no sandbox goes back to the pool after that.
    closed: AtomicBool,
}

/// A unit of the concurrency quota, given back when the invocation ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let function = request
            .uri()
            .path()
            .strip_prefix(INVOKE_PREFIX)
            .and_then(|rest| rest.strip_suffix("/invocations"))
            .map(function_name);
        let Some(function) = function.filter(|_| request.method() == Method::POST) else {
            return service_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "only Invoke is served here",
            );
        };
        let invocation_type = request
            .headers()
            .get("X-Amz-Invocation-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("RequestResponse");
        if invocation_type != "RequestResponse" {
            return service_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("InvocationType {invocation_type} is not served locally"),
            );
        }
        let Some(binary) = self.binary(&function) else {
            return service_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {}", self.arn(&function)),
            );
        };
        let payload = match body_within(request, PAYLOAD_LIMIT_BYTES).await {
            ReadBody::Complete(payload) => payload,
            ReadBody::TooLarge => {
                return service_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    &format!(
                        "Request must be smaller than {PAYLOAD_LIMIT_BYTES} bytes for the \
                         InvokeFunction operation"
                    ),
                )
            }
            ReadBody::Broken => {
                return service_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "the request body broke off",
                )
            }
        };
        let Some(_slot) = self.reserve() else {
            return service_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            );
        };
        self.invoke(&function, &binary, payload).await
    }

    async fn invoke(&self, function: &str, binary: &Path, payload: Bytes) -> Response<Body> {
        let sizing = self
            .config
            .sizing
            .get(function)
            .copied()
            .unwrap_or(FunctionSizing::LAMBDA_DEFAULT);
        let mut sandbox = match self.warm(function) {
            Some(sandbox) => sandbox,
            None => {
                let spec = FunctionSpec {
                    name: function,
                    binary,
                    memory_mb: sizing.memory_mb,
                    env: &self.config.env,
                };
                self.cold_starts.fetch_add(1, Ordering::SeqCst);
                match Sandbox::start(&spec).await {
                    Ok(sandbox) => sandbox,
                    Err(err) => {
                        return service_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "ServiceException",
                            &format!("cannot start {}: {err}", binary.display()),
                        )
                    }
                }
            }
        };
        let timeout = Duration::from_secs_f64(
            (sizing.timeout_seconds as f64 * self.config.timeout_scale).clamp(0.001, 900.0),
        );
        let invocation = Invocation {
            request_id: self.request_id(),
            payload,
            deadline_ms: (SystemTime::now() + timeout)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            function_arn: self.arn(function),
        };
        match sandbox.invoke(invocation, timeout).await {
            Outcome::Replied(reply) => {
                self.park(function, sandbox);
                match reply {
                    Reply::Response(body) => respond(StatusCode::OK, body),
                    Reply::Error(document) => function_error(document),
                }
            }
            // The sandbox is dropped here, which kills what is left of its process.
            Outcome::Ended(document) => function_error(document),
        }
    }

    fn reserve(&self) -> Option<Slot<'_>> {
        let quota = self.config.concurrency;
        self.running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < quota).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(&self.running))
    }

    fn warm(&self, function: &str) -> Option<Sandbox> {
        lock(&self.idle).get_mut(function)?.pop()
    }

    fn park(&self, function: &str, sandbox: Sandbox) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        lock(&self.idle)
            .entry(function.to_string())
            .or_default()
            .push(sandbox);
    }

    fn binary(&self, function: &str) -> Option<PathBuf> {
        // Only the template's functions exist, as in the deployed stack: not `etl` or any
        // other executable that happens to sit in the directory. The name is then one path
        // segment, so nothing like `../x` reaches the file system.
        if !self.config.sizing.contains_key(function) {
            return None;
        }
        [
            self.config.binaries.join(function).join("bootstrap"),
            self.config.binaries.join(function),
        ]
        .into_iter()
        .find(|path| path.is_file())
    }

    fn arn(&self, function: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT}:function:{function}",
            self.config.region
        )
    }

    /// A UUID-shaped id, unique within this host.
    fn request_id(&self) -> String {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (nanos >> 32) as u32,
            (nanos >> 16) as u16,
            std::process::id() & 0xfff,
            n & 0xfff,
            n
        )
    }
}

/// Accepts a name, a partial ARN or a full ARN, with or without a qualifier.
fn function_name(raw: &str) -> String {
    // The SDKs percent-encode an ARN's colons in the path.
    let raw = raw
        .replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%24", "$");
    let raw = raw.rsplit("function:").next().unwrap_or(&raw);
    raw.split(':').next().unwrap_or(raw).to_string()
}

/// Lambda's answer when the function failed: 200, with the error in the body.
fn function_error(document: Bytes) -> Response<Body> {
    let mut response = respond(StatusCode::OK, document);
    response.headers_mut().insert(
        "X-Amz-Function-Error",
        hyper::header::HeaderValue::from_static("Unhandled"),
    );
    response
}

/// A poisoned lock still guards consistent data here: every critical section is a single
/// insert, remove or swap.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_qualifiers_name_the_same_function() {
        for raw in [
            "hr-schema",
            "hr-schema:$LATEST",
            "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Ahr-schema",
            "arn:aws:lambda:eu-west-1:123456789012:function:hr-schema",
            "arn:aws:lambda:eu-west-1:123456789012:function:hr-schema:live",
        ] {
            assert_eq!(function_name(raw), "hr-schema", "{raw}");
        }
    }
}
