//! Elasticsearch / OpenSearch: index set-up and the reusable bulk sink.

pub mod bulk;
pub mod index;

pub use bulk::{BulkConfig, BulkReport, BulkSink, ItemFailure};
pub use index::{ensure_index, refresh, IndexSpec};
