//! The bulk sink: documents in, `_bulk` requests out, with per-item retries. Documents are
//! serialised straight into the NDJSON body of the next request; a request leaves when its
//! body reaches [`BulkConfig::max_bytes`], and up to [`BulkConfig::concurrency`] of them are
//! in flight while the next body fills. Split like a small service: body building and
//! response parsing are pure (unit-tested on real responses), the retry decision is
//! [`crate::retry`]'s, and only [`send_batch`] talks to the server.

use std::fmt::Display;
use std::time::Duration;

use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::Method;
use serde::{Deserialize, Serialize, Serializer as _};
use serde_json::Value;
use tokio::task::JoinSet;

use super::SearchClient;
use crate::config::BulkSettings;
use crate::error::{error_chain, StageError};
use crate::retry::is_retryable_status;

#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// Documents per request at most: a guard only, requests are sized by `max_bytes`.
    pub max_docs: usize,
    /// Uncompressed body bytes per request: a request leaves before a document would cross
    /// it (a single larger document goes alone).
    pub max_bytes: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Gzip request bodies (`Content-Encoding: gzip`); SigV4 signs the compressed bytes.
    pub gzip: bool,
    /// Tries per document (and per whole request) before giving up.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for BulkConfig {
    fn default() -> Self {
        let settings = BulkSettings::default();
        Self {
            max_docs: 100_000,
            max_bytes: settings.max_bytes,
            concurrency: settings.concurrency,
            gzip: false,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl BulkConfig {
    /// The configured sizes, with gzip decided for `client`'s endpoint.
    pub fn from_settings(settings: &BulkSettings, client: &SearchClient) -> Self {
        Self {
            max_bytes: settings.max_bytes,
            concurrency: settings.concurrency,
            gzip: settings.gzip_for(client.url()),
            ..Self::default()
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

    fn merge(&mut self, other: BulkReport) {
        self.indexed += other.indexed;
        self.retried += other.retried;
        self.requests += other.requests;
        self.failed += other.failed;
        let room = MAX_FAILURE_SAMPLES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
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

/// Where one item lies in its request body: the action line and source from `start` to
/// `end`, its `_id` (a JSON string) from `id_start` to `id_end`.
#[derive(Debug, Clone, Copy)]
struct ItemSpan {
    start: usize,
    id_start: usize,
    id_end: usize,
    end: usize,
}

/// One request's NDJSON body being built, and where each of its items lies in it (to send
/// the busy ones again alone, and to name the failed ones).
#[derive(Debug, Default)]
pub struct Batch {
    body: Vec<u8>,
    items: Vec<ItemSpan>,
}

/// The start of every action line for `index`: `{"index":{"_index":"…","_id":`.
pub fn action_prefix(index: &str) -> Vec<u8> {
    let mut prefix = br#"{"index":{"_index":"#.to_vec();
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut prefix, index);
    prefix.extend_from_slice(br#","_id":"#);
    prefix
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            body: Vec::with_capacity(bytes),
            items: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Appends one `index` action (`prefix` from [`action_prefix`], then `id` as a JSON
    /// string) and `document` serialised in place. On error the body is left as it was.
    pub fn push<I: Display + ?Sized, T: Serialize + ?Sized>(
        &mut self,
        prefix: &[u8],
        id: &I,
        document: &T,
    ) -> Result<(), serde_json::Error> {
        let start = self.body.len();
        let written = self.write(prefix, id, document);
        match written {
            Ok((id_start, id_end)) => {
                self.items.push(ItemSpan {
                    start,
                    id_start,
                    id_end,
                    end: self.body.len(),
                });
                Ok(())
            }
            Err(err) => {
                self.body.truncate(start);
                Err(err)
            }
        }
    }

    fn write<I: Display + ?Sized, T: Serialize + ?Sized>(
        &mut self,
        prefix: &[u8],
        id: &I,
        document: &T,
    ) -> Result<(usize, usize), serde_json::Error> {
        self.body.extend_from_slice(prefix);
        let id_start = self.body.len();
        // Escaped as a JSON string straight from its Display, without a String in between.
        serde_json::Serializer::new(&mut self.body).collect_str(id)?;
        let id_end = self.body.len();
        self.body.extend_from_slice(b"}}\n");
        serde_json::to_writer(&mut self.body, document)?;
        self.body.push(b'\n');
        Ok((id_start, id_end))
    }

    /// The batch to send now, if `config` says this one is full: all of it, or all but the
    /// last item when that one crossed `max_bytes` (it stays here, to start the next).
    pub fn take_full(&mut self, config: &BulkConfig) -> Option<Batch> {
        if self.items.len() > 1 && self.body.len() > config.max_bytes {
            let last = self.split_last();
            Some(std::mem::replace(self, last))
        } else if self.items.len() >= config.max_docs || self.body.len() >= config.max_bytes {
            Some(std::mem::replace(
                self,
                Batch::with_capacity(config.max_bytes),
            ))
        } else {
            None
        }
    }

    /// Moves the last item into a batch of its own (it made this one too large).
    fn split_last(&mut self) -> Batch {
        let Some(last) = self.items.pop() else {
            return Batch::default();
        };
        let mut moved = Batch::with_capacity(self.body.capacity());
        moved.append_from(self, last);
        self.body.truncate(last.start);
        moved
    }

    /// A batch of the given items of this one, in order.
    fn subset(&self, items: &[usize]) -> Batch {
        let mut batch = Batch::with_capacity(
            items
                .iter()
                .map(|&i| self.items[i].end - self.items[i].start)
                .sum(),
        );
        for &i in items {
            batch.append_from(self, self.items[i]);
        }
        batch
    }

    fn append_from(&mut self, other: &Batch, span: ItemSpan) {
        let shift = |offset: usize| offset - span.start + self.body.len();
        self.items.push(ItemSpan {
            start: self.body.len(),
            id_start: shift(span.id_start),
            id_end: shift(span.id_end),
            end: shift(span.end),
        });
        self.body
            .extend_from_slice(&other.body[span.start..span.end]);
    }

    /// Item `i`'s `_id`, unescaped (only read for a failure).
    fn id(&self, i: usize) -> String {
        let span = self.items[i];
        let raw = &self.body[span.id_start..span.id_end];
        serde_json::from_slice(raw).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
    }
}

/// Appends one `index` action and its already serialised source to an NDJSON body.
pub fn append_index_action(body: &mut Vec<u8>, index: &str, id: &str, source: &[u8]) {
    body.extend_from_slice(&action_prefix(index));
    let _ = serde_json::to_writer(&mut *body, id);
    body.extend_from_slice(b"}}\n");
    body.extend_from_slice(source);
    body.push(b'\n');
}

/// A `_bulk` response, read without building a tree of it: only each item's status and
/// error are kept.
#[derive(Deserialize)]
struct BulkResponse {
    items: Option<Vec<ResponseItem>>,
}

/// `{"index": {...}}`, `{"create": {...}}`, …: the action's one value.
#[derive(Deserialize)]
struct ResponseItem {
    #[serde(alias = "create", alias = "update", alias = "delete")]
    index: ItemResult,
}

#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Reads a `_bulk` response: one outcome per item, in request order.
pub fn parse_response(body: &[u8], expected_items: usize) -> Result<Vec<ItemOutcome>, StageError> {
    let response: BulkResponse = serde_json::from_slice(body).map_err(|e| {
        StageError::elasticsearch_status(200, &format!("bulk response is not JSON ({e})"))
    })?;
    let items = response
        .items
        .ok_or_else(|| StageError::elasticsearch_status(200, "bulk response has no items array"))?;
    if items.len() != expected_items {
        return Err(StageError::Internal(format!(
            "bulk response has {} items for {expected_items} documents",
            items.len()
        )));
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let ItemResult { status, error } = item.index;
            if (200..300).contains(&status) {
                return ItemOutcome::Indexed;
            }
            let error = error.unwrap_or(Value::Null);
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

/// `body` gzipped, at the fastest level: a bulk body of repetitive JSON shrinks about
/// tenfold even so, and the sink's CPU is what bounds a Lambda's throughput.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Posts one NDJSON body to `_bulk`, gzipped on the way when `compress`; returns the HTTP
/// status and the response body.
pub async fn post_bulk(
    client: &SearchClient,
    body: &[u8],
    compress: bool,
) -> Result<(u16, bytes::Bytes), StageError> {
    if compress {
        post_bulk_encoded(client, &gzip(body), true).await
    } else {
        post_bulk_encoded(client, body, false).await
    }
}

/// How long one `_bulk` request may take: longer than other requests' timeout
/// (`ELASTICSEARCH_TIMEOUT_SECS`), since with several in flight a cluster that works through
/// them one at a time answers the last only after the others; a timeout there would send
/// the same documents again while the cluster is still indexing them.
pub const BULK_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Posts one NDJSON body as it is, labelled `Content-Encoding: gzip` when `gzipped`.
pub async fn post_bulk_encoded(
    client: &SearchClient,
    body: &[u8],
    gzipped: bool,
) -> Result<(u16, bytes::Bytes), StageError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let response = client
        .send_with_timeout(
            Method::Post,
            "/_bulk",
            headers,
            Some(body),
            Some(BULK_REQUEST_TIMEOUT),
        )
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

/// Buffers documents and sends them to one index in `_bulk` requests, several at once.
pub struct BulkSink {
    client: SearchClient,
    config: BulkConfig,
    prefix: Vec<u8>,
    current: Batch,
    in_flight: JoinSet<Result<BulkReport, StageError>>,
    report: BulkReport,
}

impl BulkSink {
    pub fn new(client: &SearchClient, index: &str, config: BulkConfig) -> Self {
        Self {
            client: client.clone(),
            prefix: action_prefix(index),
            current: Batch::with_capacity(config.max_bytes),
            config,
            in_flight: JoinSet::new(),
            report: BulkReport::default(),
        }
    }

    /// Adds a document; sends a request when the batch is full.
    pub async fn push<T: Serialize + ?Sized>(
        &mut self,
        id: String,
        document: &T,
    ) -> Result<(), StageError> {
        self.push_id(&id, document).await
    }

    /// Adds a document whose `_id` is `id`'s Display (escaped as JSON), serialising both
    /// straight into the next request's body; sends the request once it is full, waiting
    /// first if [`BulkConfig::concurrency`] requests are already in flight.
    pub async fn push_id<I: Display + ?Sized, T: Serialize + ?Sized>(
        &mut self,
        id: &I,
        document: &T,
    ) -> Result<(), StageError> {
        self.current
            .push(&self.prefix, id, document)
            .map_err(|e| StageError::Internal(format!("document {id} does not serialise: {e}")))?;
        match self.current.take_full(&self.config) {
            Some(batch) => self.dispatch(batch).await,
            None => Ok(()),
        }
    }

    /// Sends what is left, waits for every request and returns the report.
    pub async fn finish(mut self) -> Result<BulkReport, StageError> {
        let last = std::mem::take(&mut self.current);
        if !last.is_empty() {
            self.dispatch(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        Ok(self.report)
    }

    async fn dispatch(&mut self, batch: Batch) -> Result<(), StageError> {
        while self.in_flight.len() >= self.config.concurrency.max(1) {
            self.collect_one().await?;
        }
        self.in_flight
            .spawn(send_batch(self.client.clone(), self.config.clone(), batch));
        Ok(())
    }

    /// Waits for one request in flight. An error ends the sink: the requests still in
    /// flight are dropped with it (aborted), and the stage fails as that error says.
    async fn collect_one(&mut self) -> Result<(), StageError> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(report))) => {
                self.report.merge(report);
                Ok(())
            }
            Some(Ok(Err(err))) => Err(err),
            Some(Err(join)) => Err(StageError::Internal(format!(
                "bulk request task ended: {join}"
            ))),
            None => Ok(()),
        }
    }
}

/// One batch to the server, its busy items retried alone with backoff until they succeed,
/// fail for good or run out of attempts.
pub async fn send_batch(
    client: SearchClient,
    config: BulkConfig,
    mut batch: Batch,
) -> Result<BulkReport, StageError> {
    let mut report = BulkReport::default();
    let mut attempt = 1;
    while !batch.is_empty() {
        report.requests += 1;
        let outcomes = match send(&client, &batch, config.gzip).await {
            Ok(outcomes) => outcomes,
            Err(err)
                if err.kind() == crate::ErrorKind::Retryable && attempt < config.max_attempts =>
            {
                tracing::warn!(attempt, error = %err, "bulk request failed; retrying");
                tokio::time::sleep(backoff(&config, attempt)).await;
                attempt += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        let mut retry = Vec::new();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                ItemOutcome::Indexed => report.indexed += 1,
                ItemOutcome::Failed { status, reason } => {
                    report.record_failure(ItemFailure {
                        id: batch.id(i),
                        status,
                        reason,
                    });
                }
                ItemOutcome::Retry { status, reason } if attempt >= config.max_attempts => {
                    report.record_failure(ItemFailure {
                        id: batch.id(i),
                        status,
                        reason: format!("gave up after {attempt} attempts: {reason}"),
                    });
                }
                ItemOutcome::Retry { .. } => retry.push(i),
            }
        }
        if !retry.is_empty() {
            report.retried += retry.len() as u64;
            tracing::warn!(
                items = retry.len(),
                attempt,
                "bulk items rejected as busy; retrying"
            );
            tokio::time::sleep(backoff(&config, attempt)).await;
            attempt += 1;
        }
        batch = batch.subset(&retry);
    }
    Ok(report)
}

async fn send(
    client: &SearchClient,
    batch: &Batch,
    compress: bool,
) -> Result<Vec<ItemOutcome>, StageError> {
    let (status, bytes) = post_bulk(client, batch.body(), compress).await?;
    if !(200..300).contains(&status) {
        return Err(StageError::elasticsearch_status(
            status,
            &String::from_utf8_lossy(&bytes),
        ));
    }
    parse_response(&bytes, batch.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn documents_are_written_straight_into_the_body_and_items_can_be_resent_alone() {
        let prefix = action_prefix("idx");
        let mut batch = Batch::default();
        batch.push(&prefix, &42, &json!({"a": 1})).unwrap();
        batch.push(&prefix, "quo\"te", &json!({"b": "x"})).unwrap();
        batch.push(&prefix, &7, &json!({"c": true})).unwrap();
        let text = String::from_utf8(batch.body().to_vec()).unwrap();
        let lines: Vec<Value> = text
            .split_terminator('\n')
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(lines[0], json!({"index": {"_index": "idx", "_id": "42"}}));
        assert_eq!(
            lines[2],
            json!({"index": {"_index": "idx", "_id": "quo\"te"}})
        );
        assert_eq!(lines[3], json!({"b": "x"}));
        assert_eq!(batch.id(1), "quo\"te");

        let again = batch.subset(&[0, 2]);
        assert_eq!(
            (again.len(), again.id(0), again.id(1)),
            (2, "42".into(), "7".into())
        );
        let text = String::from_utf8(again.body().to_vec()).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.ends_with("{\"c\":true}\n"), "{text}");

        let last = batch.split_last();
        assert_eq!((batch.len(), last.len(), last.id(0)), (2, 1, "7".into()));
        assert!(String::from_utf8_lossy(batch.body()).ends_with("{\"b\":\"x\"}\n"));
    }

    #[test]
    fn a_document_that_does_not_serialise_leaves_the_body_as_it_was() {
        let prefix = action_prefix("idx");
        let mut batch = Batch::default();
        batch.push(&prefix, &1, &json!({"a": 1})).unwrap();
        let before = batch.body().to_vec();
        let bad: std::collections::HashMap<Vec<u8>, u8> = [(vec![1u8], 1u8)].into();
        assert!(batch.push(&prefix, &2, &bad).is_err());
        assert_eq!((batch.body(), batch.len()), (&before[..], 1));
    }

    #[test]
    fn gzip_bodies_decode_to_the_ndjson() {
        use std::io::Read;
        let prefix = action_prefix("idx");
        let mut batch = Batch::default();
        for i in 0..1000 {
            batch
                .push(&prefix, &i, &json!({"full_name": "Ana Pérez", "n": i}))
                .unwrap();
        }
        let compressed = gzip(batch.body());
        assert!(
            compressed.len() * 5 < batch.body().len(),
            "{}",
            compressed.len()
        );
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, batch.body());
    }

    #[test]
    fn reports_merge_and_keep_a_bounded_sample_of_failures() {
        let failure = |id: &str| ItemFailure {
            id: id.into(),
            status: 400,
            reason: "x".into(),
        };
        let mut total = BulkReport::default();
        for n in 0..3 {
            let mut part = BulkReport {
                indexed: 10,
                retried: 1,
                requests: 2,
                ..BulkReport::default()
            };
            for i in 0..15 {
                part.record_failure(failure(&format!("{n}-{i}")));
            }
            total.merge(part);
        }
        assert_eq!(
            (total.indexed, total.retried, total.requests, total.failed),
            (30, 3, 6, 45)
        );
        assert_eq!(total.failures.len(), MAX_FAILURE_SAMPLES);
        assert_eq!(total.failures[15].id, "1-0");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let config = BulkConfig::default();
        assert_eq!(backoff(&config, 1), Duration::from_millis(200));
        assert_eq!(backoff(&config, 3), Duration::from_millis(800));
        assert_eq!(backoff(&config, 30), Duration::from_secs(5));
    }
}
