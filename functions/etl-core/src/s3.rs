//! The S3 operations stages share: listing a prefix, reading and writing whole objects, and
//! streaming uploads that become multipart only when an object outgrows one part. Every
//! failure is a typed [`StageError`] naming S3.
//!
//! Uploads are not payload-signed: the SDK still sends a CRC32 checksum of every body, which
//! S3 verifies, and TLS protects it in transit, while hashing every byte with SHA-256 as well
//! was ≈ 6 % of unify's CPU (BENCHMARKS.md).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;

use crate::clients::Context;
use crate::error::{Service, StageError};

/// S3's minimum part size is 5 MiB (except the last); 8 MiB keeps requests few.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// DeleteObjects takes at most this many keys a request.
const DELETE_BATCH: usize = 1000;

fn s3_error<E>(err: SdkError<E, HttpResponse>) -> StageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    StageError::aws(Service::S3, err)
}

/// An object under a prefix: its key and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
}

/// Every object under `prefix`, in key order (S3 lists in UTF-8 binary order).
pub async fn list(
    ctx: &Context,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectEntry>, StageError> {
    let mut entries = Vec::new();
    let mut pages = ctx
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(s3_error)?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                entries.push(ObjectEntry {
                    key: key.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
    }
    Ok(entries)
}

/// The whole object, in memory. For objects a stage has already bounded (a raw partition, a
/// curated dataset it is about to read anyway).
pub async fn get(ctx: &Context, bucket: &str, key: &str) -> Result<Bytes, StageError> {
    get_if_exists(ctx, bucket, key)
        .await?
        .ok_or_else(|| StageError::Service {
            service: Service::S3,
            retryable: false,
            message: format!("s3://{bucket}/{key} does not exist"),
        })
}

/// The whole object, or `None` when there is no such key: one GET where HEAD + GET would
/// take two requests.
pub async fn get_if_exists(
    ctx: &Context,
    bucket: &str,
    key: &str,
) -> Result<Option<Bytes>, StageError> {
    match ctx.s3().get_object().bucket(bucket).key(key).send().await {
        Ok(object) => {
            let body = object.body.collect().await.map_err(|e| {
                StageError::unavailable(Service::S3, format!("reading s3://{bucket}/{key}: {e}"))
            })?;
            Ok(Some(body.into_bytes()))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) =>
        {
            Ok(None)
        }
        Err(err) => Err(s3_error(err)),
    }
}

/// The whole object, or `None` when there is no such key, for a caller allowed to list the
/// key's prefix only. S3 answers a GET of a missing key with 404 only to a caller holding
/// s3:ListBucket on the whole bucket (it evaluates ListBucket without a prefix); anyone else
/// gets 403 AccessDenied, indistinguishable from a real denial. So: list the key itself as a
/// prefix (its first entry is the key when it exists), then GET.
pub async fn get_if_listed(
    ctx: &Context,
    bucket: &str,
    key: &str,
) -> Result<Option<Bytes>, StageError> {
    let listed = ctx
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
        .max_keys(1)
        .send()
        .await
        .map_err(s3_error)?;
    if listed.contents().first().and_then(|o| o.key()) != Some(key) {
        return Ok(None);
    }
    get_if_exists(ctx, bucket, key).await
}

/// One PUT of a small object.
pub async fn put(
    ctx: &Context,
    bucket: &str,
    key: &str,
    content_type: &str,
    body: Bytes,
) -> Result<(), StageError> {
    ctx.s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .map_err(s3_error)?;
    Ok(())
}

/// Deletes the given keys (in batches of 1000); returns how many were deleted.
pub async fn delete_keys(
    ctx: &Context,
    bucket: &str,
    keys: &[String],
) -> Result<usize, StageError> {
    for chunk in keys.chunks(DELETE_BATCH) {
        let objects = chunk
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StageError::Internal(format!("building a delete request: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StageError::Internal(format!("building a delete request: {e}")))?;
        let deleted = ctx
            .s3()
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(s3_error)?;
        if let Some(failed) = deleted.errors().first() {
            return Err(StageError::unavailable(
                Service::S3,
                format!(
                    "could not delete s3://{bucket}/{}: {}",
                    failed.key().unwrap_or("?"),
                    failed.message().unwrap_or("no reason given")
                ),
            ));
        }
    }
    Ok(keys.len())
}

/// Deletes everything under `prefix`; returns how many objects there were.
pub async fn delete_prefix(ctx: &Context, bucket: &str, prefix: &str) -> Result<usize, StageError> {
    let keys: Vec<String> = list(ctx, bucket, prefix)
        .await?
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    delete_keys(ctx, bucket, &keys).await
}

/// An upload fed in chunks that becomes multipart only when the object outgrows one part, so
/// memory stays at one part whatever the object's size.
pub struct ObjectWriter<'a> {
    ctx: &'a Context,
    bucket: &'a str,
    key: &'a str,
    content_type: &'a str,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    bytes: u64,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(ctx: &'a Context, bucket: &'a str, key: &'a str, content_type: &'a str) -> Self {
        Self {
            ctx,
            bucket,
            key,
            content_type,
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            bytes: 0,
        }
    }

    /// Appends bytes; sends a part whenever a full one is buffered. Each byte is copied once,
    /// into the part buffer, however large the chunk. On error the upload is aborted and the
    /// writer must be dropped.
    pub async fn write(&mut self, mut chunk: &[u8]) -> Result<(), StageError> {
        self.bytes += chunk.len() as u64;
        while !chunk.is_empty() {
            if self.buffer.capacity() == 0 {
                // Reserved, not touched: only what is written counts towards memory.
                self.buffer.reserve_exact(PART_SIZE);
            }
            let room = PART_SIZE - self.buffer.len();
            let (head, rest) = chunk.split_at(room.min(chunk.len()));
            self.buffer.extend_from_slice(head);
            chunk = rest;
            if self.buffer.len() == PART_SIZE {
                let part = Bytes::from(std::mem::take(&mut self.buffer));
                if let Err(err) = self.send_part(part).await {
                    self.abort().await;
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Sends what is left and completes the object; returns (bytes, parts), parts being 1
    /// for a plain PUT.
    pub async fn finish(mut self) -> Result<(u64, u32), StageError> {
        let last = Bytes::from(std::mem::take(&mut self.buffer));
        let Some(upload_id) = self.upload_id.clone() else {
            put(self.ctx, self.bucket, self.key, self.content_type, last).await?;
            return Ok((self.bytes, 1));
        };
        if !last.is_empty() {
            if let Err(err) = self.send_part(last).await {
                self.abort().await;
                return Err(err);
            }
        }
        let completed = self
            .ctx
            .s3()
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        if let Err(err) = completed {
            self.abort().await;
            return Err(s3_error(err));
        }
        Ok((self.bytes, self.parts.len() as u32))
    }

    async fn send_part(&mut self, body: Bytes) -> Result<(), StageError> {
        let s3 = self.ctx.s3();
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = s3
                    .create_multipart_upload()
                    .bucket(self.bucket)
                    .key(self.key)
                    .content_type(self.content_type)
                    .send()
                    .await
                    .map_err(s3_error)?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| {
                        StageError::unavailable(
                            Service::S3,
                            "CreateMultipartUpload returned no upload id",
                        )
                    })?
                    .to_string();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let uploaded = s3
            .upload_part()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(s3_error)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    /// Gives up on the object. Best effort: an abandoned upload only costs storage until the
    /// bucket's lifecycle rule removes it.
    pub async fn abort(&self) {
        if let Some(upload_id) = &self.upload_id {
            if let Err(err) = self
                .ctx
                .s3()
                .abort_multipart_upload()
                .bucket(self.bucket)
                .key(self.key)
                .upload_id(upload_id)
                .send()
                .await
            {
                tracing::warn!(error = %s3_error(err), "could not abort multipart upload");
            }
        }
    }
}
