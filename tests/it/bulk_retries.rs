//! The bulk sink's retry loop against a scripted `_bulk` endpoint. This is a stub, named as
//! such: osmem (the real local server) never answers 429 or 5xx, so busy-cluster behaviour
//! cannot be produced with it. The classification itself is unit-tested on real responses
//! in `etl-core/src/search/bulk.rs`; the happy path runs against osmem elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etl_core::search::{BulkConfig, BulkSink};
use etl_core::{Context, ErrorKind};
use integration_tests::{context, env_source};
use serde_json::{json, Value};

/// Answers `_bulk` requests: `script` decides each item's status from its `_id` and the
/// request number; `whole_request` may fail the entire request instead.
struct ScriptedBulk {
    url: String,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
}

impl ScriptedBulk {
    fn start(
        script: impl Fn(usize, &str) -> u16 + Send + 'static,
        whole_request: impl Fn(usize) -> Option<u16> + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    // Request line and headers.
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header == "\r\n" || header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let ids: Vec<String> = String::from_utf8_lossy(&body)
                        .lines()
                        .step_by(2)
                        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                        .map(|a| a["index"]["_id"].as_str().unwrap_or_default().to_string())
                        .collect();
                    let number = {
                        let mut all = seen.lock().unwrap();
                        all.push(ids.clone());
                        all.len()
                    };
                    let (status, payload) = match whole_request(number) {
                        Some(status) => (status, json!({"error": "scripted failure"})),
                        None => {
                            let items: Vec<Value> = ids
                                .iter()
                                .map(|id| {
                                    let status = script(number, id);
                                    if status < 300 {
                                        json!({"index": {"_id": id, "status": status, "result": "created"}})
                                    } else {
                                        json!({"index": {"_id": id, "status": status,
                                            "error": {"type": "es_rejected_execution_exception", "reason": "scripted"}}})
                                    }
                                })
                                .collect();
                            (200, json!({"took": 1, "errors": true, "items": items}))
                        }
                    };
                    let text = payload.to_string();
                    let _ = write!(
                        writer,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                }
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }
}

fn fast_retries() -> BulkConfig {
    BulkConfig {
        max_docs: 10,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..BulkConfig::default()
    }
}

async fn sink_for(url: &str) -> Context {
    context(&env_source().with("ELASTICSEARCH_URL", url)).await
}

async fn push_three(ctx: &Context) -> Result<etl_core::search::BulkReport, etl_core::StageError> {
    let mut sink = BulkSink::new(ctx.elasticsearch().unwrap(), "idx", fast_retries());
    for id in ["a", "b", "c"] {
        sink.push(id.to_string(), &json!({"n": id})).await?;
    }
    sink.finish().await
}

#[tokio::test]
async fn busy_items_are_retried_alone_until_they_succeed() {
    let server = ScriptedBulk::start(
        |request, id| if id == "b" && request < 3 { 429 } else { 201 },
        |_| None,
    );
    let report = push_three(&sink_for(&server.url).await).await.unwrap();
    assert_eq!(
        (
            report.indexed,
            report.failed,
            report.retried,
            report.requests
        ),
        (3, 0, 2, 3)
    );
    assert_eq!(
        server.requests(),
        vec![vec!["a", "b", "c"], vec!["b"], vec!["b"]]
    );
}

#[tokio::test]
async fn items_still_busy_after_the_last_attempt_are_reported_not_dropped() {
    let server = ScriptedBulk::start(|_, id| if id == "c" { 503 } else { 201 }, |_| None);
    let report = push_three(&sink_for(&server.url).await).await.unwrap();
    assert_eq!((report.indexed, report.failed), (2, 1));
    assert_eq!(report.failures[0].id, "c");
    assert_eq!(report.failures[0].status, 503);
    assert!(
        report.failures[0]
            .reason
            .contains("gave up after 3 attempts"),
        "{:?}",
        report.failures
    );
}

#[tokio::test]
async fn a_busy_cluster_is_retried_then_surfaces_as_retryable() {
    // Two whole-request 429s, then success: retried transparently.
    let server = ScriptedBulk::start(|_, _| 201, |request| (request <= 2).then_some(429));
    let report = push_three(&sink_for(&server.url).await).await.unwrap();
    assert_eq!((report.indexed, report.requests), (3, 3));

    // Always 503: after the attempts, a Retryable stage error for Step Functions to retry.
    let server = ScriptedBulk::start(|_, _| 201, |_| Some(503));
    let err = push_three(&sink_for(&server.url).await).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(server.requests().len(), 3);
}
