//! Stage `hr-export` (reverse ETL): the employees as of a logical date, as one CSV in S3 at
//! `exports/employees/dt=YYYY-MM-DD/employees.csv`. PostgreSQL writes the CSV (RFC 4180
//! quoting, UTF-8, header row) with `COPY … TO STDOUT`; the bytes stream straight into an S3
//! multipart upload, so memory stays at one part whatever the table size.
//!
//! A date's snapshot holds every employee hired up to it, so it goes stale when an earlier
//! date is loaded after it was written: a date that failed and succeeded later (per-date
//! isolation lets the dates after it run meanwhile), or a backfill of an old gap. So after its
//! own snapshot, an export refreshes every later snapshot the ledger shows as short of the
//! rows now hired up to its date; nothing else would ever write them again.

use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::{LeaseError, StageError};
use crate::lease;
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
    /// Later dates whose snapshots were stale and written again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshed: Vec<LogicalDate>,
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
    let mut output = ledger::tracked(
        ctx,
        "hr",
        "export",
        date,
        event.execution.as_deref(),
        export(ctx, date),
    )
    .await?;
    for later in stale_snapshots(ctx, date).await? {
        refresh(ctx, date, later, event.execution.as_deref()).await?;
        tracing::info!(%later, after = %date, "stale later snapshot exported again");
        output.refreshed.push(later);
    }
    Ok(output)
}

/// Writes a later date's snapshot again, recorded as its own attempt so that the ledger's row
/// count is the snapshot's again. Under that date's lease: taken for this refresh only when
/// free, under a label naming this export's date and execution (so that a retry of this
/// export takes back the lease an attempt ended mid-refresh left held, rather than being
/// refused by it until it expires); our own execution's when it is running that date too (a
/// backfill's Map runs several dates at once); refused, and so retried, while another
/// execution runs it.
async fn refresh(
    ctx: &Context,
    date: LogicalDate,
    later: LogicalDate,
    execution: Option<&str>,
) -> Result<ExportOutput, StageError> {
    let for_this_refresh = match execution {
        Some(ours) => {
            let label = lease::work_label(ours, &format!("a refresh from {date}"));
            ledger::tracked_for_work(ctx, "hr", "export", later, &label, export(ctx, later)).await
        }
        None => ledger::tracked(ctx, "hr", "export", later, None, export(ctx, later)).await,
    };
    match for_this_refresh {
        Err(StageError::Lease(LeaseError::Held { holder, .. }))
            if execution.is_some_and(|ours| holder == lease::describe(ours, Some(ours))) =>
        {
            ledger::tracked(ctx, "hr", "export", later, execution, export(ctx, later)).await
        }
        other => other,
    }
}

/// The dates after `date` that may have a snapshot (an export was attempted: its ledger row
/// is written before the upload starts) whose latest successful export, if any, did not
/// count exactly the employees now hired up to them. An attempt whose upload finished but
/// whose ledger row could not be closed (a killed connection, a timeout) leaves no success
/// behind, so its snapshot counts as stale too.
async fn stale_snapshots(ctx: &Context, date: LogicalDate) -> Result<Vec<LogicalDate>, StageError> {
    let client = ctx.postgres().await?;
    let rows = client
        .query(
            "SELECT attempted.logical_date::text
               FROM (SELECT DISTINCT logical_date FROM etl.runs
                      WHERE pipeline = 'hr' AND stage = 'export'
                        AND logical_date > $1::text::date) AS attempted
              WHERE (SELECT rows_out FROM etl.runs AS r
                      WHERE r.pipeline = 'hr' AND r.stage = 'export' AND r.status = 'succeeded'
                        AND r.logical_date = attempted.logical_date
                      ORDER BY r.attempt DESC LIMIT 1)
                    IS DISTINCT FROM
                    (SELECT count(*) FROM hr.employees WHERE hire_date <= attempted.logical_date)
              ORDER BY 1",
            &[&date.to_string()],
        )
        .await
        .map_err(StageError::postgres)?;
    rows.iter()
        .map(|row| {
            let text: String = row.get(0);
            text.parse().map_err(|e| {
                StageError::Internal(format!("the ledger holds a bad date {text:?}: {e}"))
            })
        })
        .collect()
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
        refreshed: Vec::new(),
    })
}
