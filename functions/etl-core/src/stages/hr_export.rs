//! Stage `hr-export` (reverse ETL): the employees as of a logical date, as one CSV in S3 at
//! `exports/employees/dt=YYYY-MM-DD/employees.csv`. PostgreSQL writes the CSV (RFC 4180
//! quoting, UTF-8, header row) with `COPY … TO STDOUT`; the bytes stream straight into an S3
//! multipart upload, so memory stays at one part whatever the table size.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::{Service, StageError};
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;

/// S3's minimum part size is 5 MiB (except the last); 8 MiB keeps requests few.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct ExportEvent {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportOutput {
    pub logical_date: LogicalDate,
    pub bucket: String,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub parts: u32,
}

pub fn export_key(date: LogicalDate) -> String {
    format!("exports/employees/{}/employees.csv", date.partition())
}

impl Counted for ExportOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.rows as i64),
            rows_out: Some(self.rows as i64),
            rows_rejected: Some(0),
        }
    }
}

pub async fn run(ctx: &Context, event: ExportEvent) -> Result<ExportOutput, StageError> {
    let date = event.logical_date;
    ledger::tracked(
        ctx,
        "hr",
        "export",
        date,
        event.execution.as_deref(),
        export(ctx, date),
    )
    .await
}

async fn export(ctx: &Context, date: LogicalDate) -> Result<ExportOutput, StageError> {
    let next = date.next().ok_or_else(|| {
        StageError::invalid_input(format!("{date} has no following day in range"))
    })?;
    let bucket = ctx.config.bucket.clone();
    let key = export_key(date);

    let mut client = ctx.postgres().await?;
    // One snapshot for the count and the rows.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(StageError::postgres)?;
    let cutoff = next.date();
    let rows: i64 = tx
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE hire_date < $1",
            &[&cutoff],
        )
        .await
        .map_err(StageError::postgres)?
        .get(0);
    // COPY takes no parameters; the date is formatted by us, from a validated LogicalDate.
    let copy = format!(
        "COPY (SELECT employee_id, full_name, job_title, department, email, salary, hire_date
                 FROM hr.employees WHERE hire_date < DATE '{cutoff}' ORDER BY employee_id)
         TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    );
    let stream = tx
        .copy_out(copy.as_str())
        .await
        .map_err(StageError::postgres)?;
    pin_mut!(stream);

    let mut upload = MultipartUpload::new(ctx, &bucket, &key);
    let mut buffer: Vec<u8> = Vec::with_capacity(PART_SIZE);
    let mut total = 0u64;
    let result: Result<(), StageError> = async {
        while let Some(chunk) = stream.try_next().await.map_err(StageError::postgres)? {
            total += chunk.len() as u64;
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= PART_SIZE {
                let part = std::mem::replace(&mut buffer, Vec::with_capacity(PART_SIZE));
                upload.part(Bytes::from(part)).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(err) = result {
        upload.abort().await;
        return Err(err);
    }
    tx.commit().await.map_err(StageError::postgres)?;
    let parts = upload.finish(Bytes::from(buffer)).await?;

    tracing::info!(bucket = %bucket, key = %key, rows, bytes = total, parts, "employees exported");
    Ok(ExportOutput {
        logical_date: date,
        bucket,
        key,
        rows: rows as u64,
        bytes: total,
        parts,
    })
}

/// An S3 upload that becomes multipart only when the object outgrows one part.
struct MultipartUpload<'a> {
    ctx: &'a Context,
    bucket: &'a str,
    key: &'a str,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl<'a> MultipartUpload<'a> {
    fn new(ctx: &'a Context, bucket: &'a str, key: &'a str) -> Self {
        Self {
            ctx,
            bucket,
            key,
            upload_id: None,
            parts: Vec::new(),
        }
    }

    fn s3_error<E>(
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StageError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        StageError::aws(Service::S3, err)
    }

    async fn part(&mut self, body: Bytes) -> Result<(), StageError> {
        let s3 = self.ctx.s3();
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = s3
                    .create_multipart_upload()
                    .bucket(self.bucket)
                    .key(self.key)
                    .content_type("text/csv; charset=utf-8")
                    .send()
                    .await
                    .map_err(Self::s3_error)?;
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
            .send()
            .await
            .map_err(Self::s3_error)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    /// Uploads the last bytes and completes; returns the number of parts (1 for a plain PUT).
    async fn finish(mut self, last: Bytes) -> Result<u32, StageError> {
        let s3 = self.ctx.s3();
        if self.upload_id.is_none() {
            s3.put_object()
                .bucket(self.bucket)
                .key(self.key)
                .content_type("text/csv; charset=utf-8")
                .body(ByteStream::from(last))
                .send()
                .await
                .map_err(Self::s3_error)?;
            return Ok(1);
        }
        if !last.is_empty() {
            if let Err(err) = self.part(last).await {
                self.abort().await;
                return Err(err);
            }
        }
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let parts = self.parts.len() as u32;
        let completed = s3
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
            return Err(Self::s3_error(err));
        }
        Ok(parts)
    }

    /// Best effort: an abandoned upload only costs storage until the bucket's lifecycle rule.
    async fn abort(&self) {
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
                tracing::warn!(error = %StageError::aws(Service::S3, err), "could not abort multipart upload");
            }
        }
    }
}
