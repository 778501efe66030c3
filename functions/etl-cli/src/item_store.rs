//! The distributed Map's S3 port ([`asl::item_store::ItemStore`]) over the project's S3
//! client (`etl_core::Context::s3()`), which `AWS_ENDPOINT_URL` points at the local S3 server.

use asl::item_store::{ItemStore, ObjectSummary, StoreError};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::future::BoxFuture;
use futures::FutureExt;

#[derive(Debug, Clone)]
pub struct S3ItemStore {
    client: aws_sdk_s3::Client,
}

impl S3ItemStore {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

/// The service's "no such bucket/key" as such, anything else with its full context.
fn store_error<E, R>(error: SdkError<E, R>, bucket: &str, key: &str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
    {
        Some("NoSuchBucket") => StoreError::NoSuchBucket(bucket.to_string()),
        Some("NoSuchKey") => StoreError::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        },
        _ => StoreError::Service(DisplayErrorContext(error).to_string()),
    }
}

impl ItemStore for S3ItemStore {
    fn get_object(
        &self,
        bucket: String,
        key: String,
    ) -> BoxFuture<'_, Result<Vec<u8>, StoreError>> {
        async move {
            let object = self
                .client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| store_error(e, &bucket, &key))?;
            let body =
                object.body.collect().await.map_err(|e| {
                    StoreError::Service(format!("reading s3://{bucket}/{key}: {e}"))
                })?;
            Ok(body.into_bytes().to_vec())
        }
        .boxed()
    }

    fn list_objects_v2(
        &self,
        bucket: String,
        prefix: String,
    ) -> BoxFuture<'_, Result<Vec<ObjectSummary>, StoreError>> {
        async move {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            let mut objects = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| store_error(e, &bucket, &prefix))?;
                objects.extend(page.contents().iter().map(|o| {
                    ObjectSummary {
                        key: o.key().unwrap_or_default().to_string(),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        last_modified: o
                            .last_modified()
                            .map_or(0, aws_smithy_types::DateTime::secs),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                        storage_class: o
                            .storage_class()
                            .map_or("STANDARD", |c| c.as_str())
                            .to_string(),
                    }
                }));
            }
            Ok(objects)
        }
        .boxed()
    }

    fn put_object(
        &self,
        bucket: String,
        key: String,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type("application/json")
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| store_error(e, &bucket, &key))?;
            Ok(())
        }
        .boxed()
    }
}
