//! A fault-injecting HTTP proxy in front of a local server (moto's S3, osmem's Elasticsearch
//! API): it forwards requests, and answers a seeded random share of them with a server error
//! (500, 503) or a throttle (429) instead, with the body that service would send. A fault comes
//! either before forwarding (the request never reaches the server) or after it (the server did
//! the work, the client sees an error and tries again): the second is the case that finds a
//! writer that is not idempotent. Every fault is counted by kind.
//!
//! The decision to fault a request and when is drawn from the seed; the kinds take turns, so
//! a handful of faults already covers every status.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use etl_cli::lambda_limits::SeededDraws;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::proxy::{forward, receive, respond, serve, ProxyResponse};

/// Which service's errors the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// S3's XML error documents.
    S3,
    /// Elasticsearch's JSON error documents.
    Elasticsearch,
}

/// One kind of fault: the status, the error code its body names and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultKind {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
}

impl Flavor {
    /// The faults this service answers with, in turn.
    pub fn kinds(self) -> &'static [FaultKind] {
        const S3: &[FaultKind] = &[
            FaultKind {
                status: 503,
                code: "SlowDown",
                message: "Please reduce your request rate.",
            },
            FaultKind {
                status: 500,
                code: "InternalError",
                message: "We encountered an internal error. Please try again.",
            },
            // S3 itself throttles with 503 SlowDown; S3-compatible stores and gateways in
            // front of it answer 429, which the SDK does not retry by itself.
            FaultKind {
                status: 429,
                code: "TooManyRequests",
                message: "Please reduce your request rate.",
            },
            FaultKind {
                status: 503,
                code: "ServiceUnavailable",
                message: "Service is unable to handle request.",
            },
        ];
        const ELASTICSEARCH: &[FaultKind] = &[
            FaultKind {
                status: 429,
                code: "es_rejected_execution_exception",
                message: "rejected execution of coordinating operation \
                          [coordinating_and_primary_bytes=104857600, replica_bytes=0, \
                          all_bytes=104857600, coordinating_operation_bytes=1048576, \
                          max_coordinating_and_primary_bytes=104857600]",
            },
            FaultKind {
                status: 503,
                code: "cluster_block_exception",
                message: "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
            },
            FaultKind {
                status: 500,
                code: "exception",
                message: "java.lang.IllegalStateException: the node closed the request's \
                          channel before answering",
            },
            FaultKind {
                status: 503,
                code: "unavailable_shards_exception",
                message: "[empleados_search][0] primary shard is not active Timeout: [1m]",
            },
        ];
        match self {
            Flavor::S3 => S3,
            Flavor::Elasticsearch => ELASTICSEARCH,
        }
    }

    /// The error response `kind` is, as this service sends it.
    fn answer(self, kind: FaultKind, method: &Method, request_id: u64) -> ProxyResponse {
        let status = StatusCode::from_u16(kind.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = format!("FAULT{request_id:011}");
        let (content_type, body) = match self {
            Flavor::S3 => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code>\
                     <Message>{}</Message><RequestId>{request_id}</RequestId>\
                     <HostId>fault-proxy</HostId></Error>",
                    kind.code, kind.message
                ),
            ),
            Flavor::Elasticsearch => {
                let cause = serde_json::json!({"type": kind.code, "reason": kind.message});
                (
                    "application/json; charset=UTF-8",
                    serde_json::json!({
                        "error": {
                            "root_cause": [cause],
                            "type": kind.code,
                            "reason": kind.message,
                        },
                        "status": kind.status,
                    })
                    .to_string(),
                )
            }
        };
        // A HEAD answer has no body; S3 then says it in headers only.
        let body = if method == Method::HEAD {
            String::new()
        } else {
            body
        };
        let mut headers = vec![("content-type", content_type)];
        if self == Flavor::S3 {
            headers.push(("x-amz-request-id", request_id.as_str()));
        }
        respond(status, &headers, body)
    }
}

/// What share of requests fails, how, and from which seed.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub flavor: Flavor,
    /// Share of requests answered with a fault.
    pub rate: f64,
    /// Share of the faults that come after the request was forwarded and done.
    pub after_share: f64,
    pub seed: u64,
}

/// When a fault came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum When {
    /// Instead of forwarding: the server never saw the request.
    Before,
    /// After forwarding: the server did the work, its answer was replaced.
    After,
}

/// What a proxy did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    pub faults: BTreeMap<(FaultKind, When), u64>,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults with this status.
    pub fn with_status(&self, status: u16) -> u64 {
        self.count(|kind, _| kind.status == status)
    }

    /// Faults that came at this moment.
    pub fn when(&self, when: When) -> u64 {
        self.count(|_, w| w == when)
    }

    fn count(&self, keep: impl Fn(FaultKind, When) -> bool) -> u64 {
        self.faults
            .iter()
            .filter(|((kind, when), _)| keep(*kind, *when))
            .map(|(_, n)| n)
            .sum()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} faults in {} requests", self.total(), self.requests)?;
        for ((kind, when), n) in &self.faults {
            write!(
                f,
                "\n    {n:>5}  {} {} ({when:?} forwarding)",
                kind.status, kind.code
            )?;
        }
        Ok(())
    }
}

/// The proxy; stops when dropped. Starts with faults off ([`FaultProxy::set_enabled`]), so
/// a test can set up through it first.
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free local port and forwards to `upstream` (a base URL).
    pub async fn start(upstream: &str, plan: FaultPlan) -> Self {
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            enabled: AtomicBool::new(false),
            draws: SeededDraws::new(plan.seed),
            tally: Mutex::new(Tally::default()),
            client: reqwest::Client::new(),
            plan,
        });
        let shared = Arc::clone(&state);
        let (url, task) = serve(move |request| {
            let state = Arc::clone(&shared);
            async move { state.handle(request).await }
        })
        .await;
        Self { url, state, task }
    }

    /// Faults on or off (then it only forwards).
    pub fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::SeqCst);
    }

    pub fn tally(&self) -> Tally {
        self.state.tally.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: String,
    plan: FaultPlan,
    enabled: AtomicBool,
    draws: SeededDraws,
    tally: Mutex<Tally>,
    client: reqwest::Client,
}

impl State {
    /// The fault for this request, if any, and counts it.
    fn decide(&self) -> Option<(FaultKind, When, u64)> {
        let mut tally = self.tally.lock().unwrap();
        tally.requests += 1;
        if !self.enabled.load(Ordering::SeqCst) || self.draws.next() >= self.plan.rate {
            return None;
        }
        let kinds = self.plan.flavor.kinds();
        let number = tally.total();
        let kind = kinds[(number % kinds.len() as u64) as usize];
        let when = if self.draws.next() < self.plan.after_share {
            When::After
        } else {
            When::Before
        };
        *tally.faults.entry((kind, when)).or_insert(0) += 1;
        Some((kind, when, number + 1))
    }

    async fn handle(&self, request: Request<Incoming>) -> ProxyResponse {
        let (parts, body) = receive(request).await;
        match self.decide() {
            None => forward(&self.client, &self.upstream, &parts, body).await,
            Some((kind, When::Before, number)) => {
                self.plan.flavor.answer(kind, &parts.method, number)
            }
            Some((kind, When::After, number)) => {
                // The server's answer is dropped: whatever it did stays done.
                let _done = forward(&self.client, &self.upstream, &parts, body).await;
                self.plan.flavor.answer(kind, &parts.method, number)
            }
        }
    }
}
