//! Elasticsearch / OpenSearch: the client (basic auth or SigV4), index set-up and the
//! reusable bulk sink.

pub mod bulk;
pub mod client;
pub mod index;
pub mod sigv4;

pub use bulk::{BulkConfig, BulkReport, BulkSink, ItemFailure};
pub use client::SearchClient;
pub use index::{ensure_index, refresh, IndexSpec};
