//! Stage `marketing-report`: the KPI report of a date's master dataset, written to
//! `reports/marketing/dt=…/` as `kpis.json`, `report.md` and a self-contained `report.html`.

use bytes::Bytes;
use etl_core::ledger::{self, Counted, RowCounts};
use etl_core::{s3, Context, LogicalDate, StageError};
use serde::{Deserialize, Serialize};

use crate::dataset::reports_prefix;
use crate::kpi::{self, KpiReport};
use crate::render;
use crate::stages::unify::master_keys;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEvent {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportOutput {
    pub logical_date: LogicalDate,
    pub rows: u64,
    pub keys: Vec<String>,
    pub kpis: KpiReport,
}

impl Counted for ReportOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.rows as i64),
            rows_out: Some(self.rows as i64),
            rows_rejected: Some(0),
        }
    }
}

pub fn report_keys(date: LogicalDate) -> [String; 3] {
    let prefix = reports_prefix(date);
    ["kpis.json", "report.md", "report.html"].map(|name| format!("{prefix}{name}"))
}

pub async fn run(ctx: &Context, event: ReportEvent) -> Result<ReportOutput, StageError> {
    let date = event.logical_date;
    ledger::tracked(
        ctx,
        "marketing",
        "report",
        date,
        event.execution.as_deref(),
        // Boxed for the same reason as unify's: a future this deep overflows the compiler's
        // layout recursion limit in the binaries that await it.
        Box::pin(report(ctx, date)),
    )
    .await
}

/// An object this stage reads from the bucket: its absence means an earlier stage has not run
/// for the date, which is the caller's mistake (`InvalidInput`, with `missing` as the message).
async fn required(ctx: &Context, key: &str, missing: String) -> Result<Bytes, StageError> {
    // Listed first: the role may list curated/marketing/ only, and a GET of a missing key
    // without s3:ListBucket on the whole bucket is AccessDenied, not NoSuchKey.
    s3::get_if_listed(ctx, &ctx.config.bucket, key)
        .await?
        .ok_or_else(|| StageError::invalid_input(missing))
}

async fn report(ctx: &Context, date: LogicalDate) -> Result<ReportOutput, StageError> {
    let bucket = ctx.config.bucket.as_str();
    let (parquet_key, _) = master_keys(date);
    let parquet = required(
        ctx,
        &parquet_key,
        format!(
            "no master dataset for {date} at s3://{bucket}/{parquet_key}: unify that date first"
        ),
    )
    .await?;
    let label = date.to_string();
    let kpis = tokio::task::spawn_blocking(move || kpi::compute(parquet, &label))
        .await
        .map_err(|e| StageError::Internal(format!("computing KPIs: {e}")))?
        .map_err(|e| {
            StageError::Internal(format!("the master dataset for {date} cannot be read: {e}"))
        })?;

    let json = serde_json::to_vec_pretty(&kpis)
        .map_err(|e| StageError::Internal(format!("encoding kpis.json: {e}")))?;
    let markdown = render::markdown(&kpis);
    let html = render::html(&kpis).map_err(|e| StageError::Internal(e.to_string()))?;
    let keys = report_keys(date);
    let bodies = [
        ("application/json", Bytes::from(json)),
        ("text/markdown; charset=utf-8", Bytes::from(markdown)),
        ("text/html; charset=utf-8", Bytes::from(html)),
    ];
    for (key, (content_type, body)) in keys.iter().zip(bodies) {
        s3::put(ctx, bucket, key, content_type, body).await?;
    }
    tracing::info!(date = %date, rows = kpis.rows, "KPI report written");
    Ok(ReportOutput {
        logical_date: date,
        rows: kpis.rows,
        keys: keys.to_vec(),
        kpis,
    })
}

/// The stored `kpis.json` of a date (what `etl report marketing` prints).
pub async fn load(ctx: &Context, date: LogicalDate) -> Result<KpiReport, StageError> {
    let [json_key, ..] = report_keys(date);
    let bucket = ctx.config.bucket.as_str();
    let bytes = required(
        ctx,
        &json_key,
        format!("no KPI report for {date} at s3://{bucket}/{json_key}"),
    )
    .await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        StageError::Internal(format!("s3://{bucket}/{json_key} is not a KPI report: {e}"))
    })
}
