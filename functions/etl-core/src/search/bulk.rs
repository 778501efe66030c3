//! The bulk sink: documents in, `_bulk` requests out, in bounded batches, with per-item
//! retries. Split like a small service: request building and response parsing are pure
//! functions (unit-tested on real responses), the retry decision is [`crate::retry`]'s, and
//! only `BulkSink::flush` talks to the server.

use std::time::Duration;

use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::Value;

use super::SearchClient;
use crate::error::{error_chain, StageError};
use crate::retry::is_retryable_status;

#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// Documents per request.
    pub max_docs: usize,
    /// Body bytes per request (flushes before crossing it).
    pub max_bytes: usize,
    /// Tries per document (and per whole request) before giving up.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_docs: 5_000,
            max_bytes: 5 * 1024 * 1024,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A document that could not be indexed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    pub id: String,
    pub status: u16,
    pub reason: String,
}

/// What a sink did. `failures` keeps the first few reasons; `failed` counts them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BulkReport {
    pub indexed: u64,
    pub failed: u64,
    /// Item retries performed (a document retried twice counts twice).
    pub retried: u64,
    pub requests: u64,
    pub failures: Vec<ItemFailure>,
}

const MAX_FAILURE_SAMPLES: usize = 20;

impl BulkReport {
    fn record_failure(&mut self, failure: ItemFailure) {
        self.failed += 1;
        if self.failures.len() < MAX_FAILURE_SAMPLES {
            self.failures.push(failure);
        }
    }
}

/// What happened to one item of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    /// Worth trying again: the cluster was busy (429) or failed (5xx).
    Retry {
        status: u16,
        reason: String,
    },
    /// Will fail again: mapping errors, bad documents.
    Failed {
        status: u16,
        reason: String,
    },
}

/// Appends one `index` action and its source to an NDJSON body.
pub fn append_index_action(body: &mut Vec<u8>, index: &str, id: &str, source: &[u8]) {
    let action = serde_json::json!({"index": {"_index": index, "_id": id}});
    // Serialising a json! value cannot fail.
    body.extend_from_slice(action.to_string().as_bytes());
    body.push(b'\n');
    body.extend_from_slice(source);
    body.push(b'\n');
}

/// Reads a `_bulk` response: one outcome per item, in request order.
pub fn parse_response(body: &[u8], expected_items: usize) -> Result<Vec<ItemOutcome>, StageError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        StageError::elasticsearch_status(200, &format!("bulk response is not JSON ({e})"))
    })?;
    let items = doc["items"]
        .as_array()
        .ok_or_else(|| StageError::elasticsearch_status(200, "bulk response has no items array"))?;
    if items.len() != expected_items {
        return Err(StageError::Internal(format!(
            "bulk response has {} items for {expected_items} documents",
            items.len()
        )));
    }
    Ok(items
        .iter()
        .map(|item| {
            // {"index": {...}} / {"create": {...}} / …: the action's one value.
            let result = item
                .as_object()
                .and_then(|o| o.values().next())
                .unwrap_or(&Value::Null);
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            if (200..300).contains(&status) {
                return ItemOutcome::Indexed;
            }
            let error = &result["error"];
            let reason = match (error["type"].as_str(), error["reason"].as_str()) {
                (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
                _ => error.to_string(),
            };
            if is_retryable_status(status) {
                ItemOutcome::Retry { status, reason }
            } else {
                ItemOutcome::Failed { status, reason }
            }
        })
        .collect())
}

/// The wait before retry number `attempt` (1-based): exponential, capped.
pub fn backoff(config: &BulkConfig, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    config
        .initial_backoff
        .saturating_mul(factor)
        .min(config.max_backoff)
}

/// Posts one NDJSON body to `_bulk`; returns the HTTP status and the response body.
pub async fn post_bulk(
    client: &SearchClient,
    body: Vec<u8>,
) -> Result<(u16, bytes::Bytes), StageError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    let response = client
        .send(Method::Post, "/_bulk", headers, Some(&body))
        .await?;
    let status = response.status_code().as_u16();
    let bytes = response.bytes().await.map_err(|e| {
        StageError::unavailable(
            crate::Service::Elasticsearch,
            format!("reading bulk response: {}", error_chain(&e)),
        )
    })?;
    Ok((status, bytes))
}

/// A pending document: its `_id` and serialised source.
struct Pending {
    id: String,
    source: Vec<u8>,
}

/// Buffers documents and sends them to one index in bounded `_bulk` requests.
pub struct BulkSink<'a> {
    client: &'a SearchClient,
    index: String,
    config: BulkConfig,
    pending: Vec<Pending>,
    pending_bytes: usize,
    report: BulkReport,
}

impl<'a> BulkSink<'a> {
    pub fn new(client: &'a SearchClient, index: &str, config: BulkConfig) -> Self {
        Self {
            client,
            index: index.to_string(),
            pending: Vec::with_capacity(config.max_docs),
            config,
            pending_bytes: 0,
            report: BulkReport::default(),
        }
    }

    /// Adds a document; sends a request when the batch is full.
    pub async fn push<T: Serialize>(&mut self, id: String, document: &T) -> Result<(), StageError> {
        let source = serde_json::to_vec(document)
            .map_err(|e| StageError::Internal(format!("document {id} does not serialise: {e}")))?;
        let size = source.len() + id.len() + self.index.len() + 40;
        if !self.pending.is_empty()
            && (self.pending.len() >= self.config.max_docs
                || self.pending_bytes + size > self.config.max_bytes)
        {
            self.flush().await?;
        }
        self.pending_bytes += size;
        self.pending.push(Pending { id, source });
        Ok(())
    }

    /// Sends what is left and returns the report.
    pub async fn finish(mut self) -> Result<BulkReport, StageError> {
        self.flush().await?;
        Ok(self.report)
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        let mut batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut attempt = 1;
        while !batch.is_empty() {
            let mut body = Vec::with_capacity(batch.iter().map(|p| p.source.len() + 80).sum());
            for p in &batch {
                append_index_action(&mut body, &self.index, &p.id, &p.source);
            }
            let outcomes = match self.send(body, batch.len()).await {
                Ok(outcomes) => outcomes,
                Err(err)
                    if err.kind() == crate::ErrorKind::Retryable
                        && attempt < self.config.max_attempts =>
                {
                    tracing::warn!(attempt, error = %err, "bulk request failed; retrying");
                    tokio::time::sleep(backoff(&self.config, attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let mut retry = Vec::new();
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                match outcome {
                    ItemOutcome::Indexed => self.report.indexed += 1,
                    ItemOutcome::Failed { status, reason } => {
                        self.report.record_failure(ItemFailure {
                            id: pending.id,
                            status,
                            reason,
                        });
                    }
                    ItemOutcome::Retry { status, reason }
                        if attempt >= self.config.max_attempts =>
                    {
                        self.report.record_failure(ItemFailure {
                            id: pending.id,
                            status,
                            reason: format!("gave up after {attempt} attempts: {reason}"),
                        });
                    }
                    ItemOutcome::Retry { .. } => retry.push(pending),
                }
            }
            if !retry.is_empty() {
                self.report.retried += retry.len() as u64;
                tracing::warn!(
                    items = retry.len(),
                    attempt,
                    "bulk items rejected as busy; retrying"
                );
                tokio::time::sleep(backoff(&self.config, attempt)).await;
                attempt += 1;
            }
            batch = retry;
        }
        Ok(())
    }

    async fn send(&mut self, body: Vec<u8>, items: usize) -> Result<Vec<ItemOutcome>, StageError> {
        self.report.requests += 1;
        let (status, bytes) = post_bulk(self.client, body).await?;
        if !(200..300).contains(&status) {
            return Err(StageError::elasticsearch_status(
                status,
                &String::from_utf8_lossy(&bytes),
            ));
        }
        parse_response(&bytes, items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from osmem: an `index` that succeeded and a `create` on an existing id.
    const OSMEM_MIXED: &str = r#"{"errors":true,"items":[{"index":{"_id":"1","_index":"t1","_primary_term":1,"_seq_no":0,"_shards":{"failed":0,"successful":1,"total":2},"_version":1,"result":"created","status":201}},{"create":{"_id":"1","_index":"t1","error":{"index":"t1","index_uuid":"_na_","reason":"[1]: version conflict, document already exists (current version [1])","shard":"0","type":"version_conflict_engine_exception"},"status":409}}],"took":1}"#;

    /// Elasticsearch's answer when its write thread pool is full, and a mapping error.
    const ES_REJECTED_AND_MAPPING: &str = r#"{"took":30,"errors":true,"items":[{"index":{"_index":"empleados_search","_id":"7","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, max_coordinating_and_primary_bytes=0]"}}},{"index":{"_index":"empleados_search","_id":"8","status":400,"error":{"type":"strict_dynamic_mapping_exception","reason":"[1:10] mapping set to strict, dynamic introduction of [nickname] within [_doc] is not allowed"}}},{"index":{"_index":"empleados_search","_id":"9","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":5,"_primary_term":1,"status":201}},{"index":{"_index":"empleados_search","_id":"10","status":503,"error":{"type":"unavailable_shards_exception","reason":"[empleados_search][0] primary shard is not active"}}}]}"#;

    #[test]
    fn osmem_response_is_classified() {
        let outcomes = parse_response(OSMEM_MIXED.as_bytes(), 2).unwrap();
        assert_eq!(outcomes[0], ItemOutcome::Indexed);
        assert!(
            matches!(&outcomes[1], ItemOutcome::Failed { status: 409, reason } if reason.starts_with("version_conflict_engine_exception"))
        );
    }

    #[test]
    fn busy_and_unavailable_items_are_retried_mapping_errors_are_not() {
        let outcomes = parse_response(ES_REJECTED_AND_MAPPING.as_bytes(), 4).unwrap();
        assert!(
            matches!(&outcomes[0], ItemOutcome::Retry { status: 429, reason } if reason.contains("es_rejected_execution_exception"))
        );
        assert!(
            matches!(&outcomes[1], ItemOutcome::Failed { status: 400, reason } if reason.contains("strict_dynamic_mapping_exception"))
        );
        assert_eq!(outcomes[2], ItemOutcome::Indexed);
        assert!(matches!(
            &outcomes[3],
            ItemOutcome::Retry { status: 503, .. }
        ));
    }

    #[test]
    fn malformed_or_mismatched_responses_are_errors() {
        assert!(parse_response(b"<html>", 1).is_err());
        assert!(parse_response(br#"{"items": []}"#, 1).is_err());
        assert!(parse_response(br#"{"took": 1}"#, 0).is_err());
    }

    #[test]
    fn requests_are_ndjson_with_ids() {
        let mut body = Vec::new();
        append_index_action(&mut body, "idx", "42", br#"{"a":1}"#);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        // Key order inside the action is free; each line must be one JSON document.
        let action: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            action,
            serde_json::json!({"index": {"_index": "idx", "_id": "42"}})
        );
        assert_eq!(lines[1], r#"{"a":1}"#);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let config = BulkConfig::default();
        assert_eq!(backoff(&config, 1), Duration::from_millis(200));
        assert_eq!(backoff(&config, 3), Duration::from_millis(800));
        assert_eq!(backoff(&config, 30), Duration::from_secs(5));
    }
}
