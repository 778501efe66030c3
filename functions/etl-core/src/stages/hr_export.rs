//! Stage `hr-export` (reverse ETL): the employees as of a logical date, as one CSV in S3 at
//! `exports/employees/dt=YYYY-MM-DD/employees.csv`. PostgreSQL writes the CSV (RFC 4180
//! quoting, UTF-8, header row) with `COPY … TO STDOUT`; the bytes stream straight into an S3
//! multipart upload, so memory stays at one part whatever the table size.

use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;
use crate::s3::{ObjectWriter, CSV_CONTENT_TYPE};

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
    fn bytes(&self) -> Option<u64> {
        Some(self.bytes)
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

    let mut upload = ObjectWriter::new(ctx, &bucket, &key, CSV_CONTENT_TYPE);
    let copied: Result<(), StageError> = async {
        while let Some(chunk) = stream.try_next().await.map_err(StageError::postgres)? {
            upload.write(&chunk).await?;
        }
        Ok(())
    }
    .await;
    if let Err(err) = copied {
        upload.abort().await;
        return Err(err);
    }
    tx.commit().await.map_err(StageError::postgres)?;
    let (total, parts) = upload.finish().await?;

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
