//! The port through which a distributed Map reaches Amazon S3: its `ItemReader` reads
//! objects and listings, its `ResultWriter` writes the results. The engine holds no S3
//! client; the caller passes an [`ItemStore`] in [`crate::RunOptions`]. `etl run` adapts the
//! project's S3 client to it; [`InMemoryItemStore`] serves the unit and conformance tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("the object s3://{bucket}/{key} does not exist")]
    NoSuchKey { bucket: String, key: String },
    /// Anything else the service answered, as its client words it.
    #[error("{0}")]
    Service(String),
}

/// One entry of a `ListObjectsV2` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    /// As S3 gives it, in double quotes.
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified: i64,
    pub size: u64,
    pub storage_class: String,
}

/// The S3 calls a distributed Map makes. Owned arguments keep the returned futures free of
/// borrows from the caller.
pub trait ItemStore: Send + Sync + std::fmt::Debug {
    fn get_object(&self, bucket: String, key: String)
        -> BoxFuture<'_, Result<Vec<u8>, StoreError>>;

    /// Every object under `prefix`, in key order, across all pages.
    fn list_objects_v2(
        &self,
        bucket: String,
        prefix: String,
    ) -> BoxFuture<'_, Result<Vec<ObjectSummary>, StoreError>>;

    fn put_object(
        &self,
        bucket: String,
        key: String,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Buckets of objects in memory, for tests: a bucket exists once created or written to.
#[derive(Debug, Default)]
pub struct InMemoryItemStore {
    buckets: Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
}

/// The fixed modification time of every in-memory object (2026-01-01T00:00:00Z), so that
/// listings are deterministic.
const IN_MEMORY_LAST_MODIFIED: i64 = 1_767_225_600;

impl InMemoryItemStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.lock().entry(bucket.to_string()).or_default();
    }

    /// Stores `body` at `bucket`/`key`, creating the bucket.
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), body.into());
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock().get(bucket)?.get(key).cloned()
    }

    /// Every key of `bucket`, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .get(bucket)
            .map(|objects| objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Vec<u8>>>> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A stand-in for S3's ETag of a single-part upload (an MD5 of the body, quoted).
fn etag(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl ItemStore for InMemoryItemStore {
    fn get_object(
        &self,
        bucket: String,
        key: String,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>> {
        let buckets = self.lock();
        let result = match buckets.get(&bucket) {
            None => Err(StoreError::NoSuchBucket(bucket)),
            Some(objects) => objects
                .get(&key)
                .cloned()
                .ok_or(StoreError::NoSuchKey { bucket, key }),
        };
        futures::future::ready(result).boxed()
    }

    fn list_objects_v2(
        &self,
        bucket: String,
        prefix: String,
    ) -> BoxFuture<'_, Result<Vec<ObjectSummary>, StoreError>> {
        let buckets = self.lock();
        let result = match buckets.get(&bucket) {
            None => Err(StoreError::NoSuchBucket(bucket)),
            Some(objects) => Ok(objects
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(key, body)| ObjectSummary {
                    key: key.clone(),
                    etag: etag(body),
                    last_modified: IN_MEMORY_LAST_MODIFIED,
                    size: body.len() as u64,
                    storage_class: "STANDARD".to_string(),
                })
                .collect()),
        };
        futures::future::ready(result).boxed()
    }

    fn put_object(
        &self,
        bucket: String,
        key: String,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut buckets = self.lock();
        let result = match buckets.get_mut(&bucket) {
            None => Err(StoreError::NoSuchBucket(bucket)),
            Some(objects) => {
                objects.insert(key, body);
                Ok(())
            }
        };
        futures::future::ready(result).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_round_trip_and_list_by_prefix() {
        let store = InMemoryItemStore::new();
        store.insert("b", "in/a.json", "[1]");
        store.insert("b", "in/b.json", "[2, 3]");
        store.insert("b", "other.txt", "x");
        assert_eq!(
            store.get_object("b".into(), "in/a.json".into()).await,
            Ok(b"[1]".to_vec())
        );
        let listed = store
            .list_objects_v2("b".into(), "in/".into())
            .await
            .unwrap();
        let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["in/a.json", "in/b.json"]);
        assert_eq!(listed[1].size, 6);
        assert!(listed[0].etag.starts_with('"') && listed[0].etag.len() == 34);
        assert!(matches!(
            store.get_object("b".into(), "nope".into()).await,
            Err(StoreError::NoSuchKey { .. })
        ));
        assert!(matches!(
            store.put_object("missing".into(), "k".into(), vec![]).await,
            Err(StoreError::NoSuchBucket(_))
        ));
    }
}
