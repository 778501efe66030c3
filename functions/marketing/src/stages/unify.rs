//! Stage `marketing-unify`: reads the day's raw partitions with polars, quarantines what is
//! corrupt or inconsistent (with a reason file), and writes the rest as the master dataset,
//! Parquet plus CSV, to `curated/marketing/dt=…/` and to a local directory.

use std::path::PathBuf;

use bytes::Bytes;
use etl_core::ledger::{self, Counted, RowCounts};
use etl_core::s3::{self, CSV_CONTENT_TYPE};
use etl_core::{Context, LogicalDate, StageError};
use futures::{StreamExt, TryStreamExt};
use polars::prelude::{CsvWriter, DataFrame, SerWriter};
use serde::{Deserialize, Serialize};

use crate::dataset::{curated_prefix, partition_of, quarantine_prefix, raw_prefix, MASTER_NAME};
use crate::master::{MasterError, MasterWriter};
use crate::validate::{check_partition, PartitionCheck};

/// Raw partitions downloaded ahead of the one being checked.
const PREFETCH: usize = 8;
/// Where the local copy goes when neither the event nor `MARKETING_LOCAL_DIR` says: the
/// system temp dir, which is `/tmp` (the only writable place) inside Lambda.
const LOCAL_DIR_VAR: &str = "MARKETING_LOCAL_DIR";
const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnifyEvent {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub execution: Option<String>,
    /// The local copy's base directory (default: `$MARKETING_LOCAL_DIR`, else the temp dir).
    #[serde(default)]
    pub local_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub partition: u32,
    /// `corrupt` (the whole partition) or `rows` (some of its rows).
    pub kind: &'static str,
    pub rows: u64,
    pub key: String,
    pub reason_key: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnifyOutput {
    pub logical_date: LogicalDate,
    pub partitions: usize,
    pub partitions_corrupt: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    pub parquet_key: String,
    pub csv_key: String,
    pub local_parquet: PathBuf,
    pub local_csv: PathBuf,
    pub quarantined: Vec<Quarantined>,
    /// Objects under the raw prefix that are not `part-NNNNN.csv`: left alone.
    pub ignored_keys: Vec<String>,
}

impl Counted for UnifyOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.rows_in as i64),
            rows_out: Some(self.rows_out as i64),
            rows_rejected: Some(self.rows_quarantined as i64),
        }
    }
}

pub fn master_keys(date: LogicalDate) -> (String, String) {
    let prefix = curated_prefix(date);
    (
        format!("{prefix}{MASTER_NAME}.parquet"),
        format!("{prefix}{MASTER_NAME}.csv"),
    )
}

pub async fn run(ctx: &Context, event: UnifyEvent) -> Result<UnifyOutput, StageError> {
    let date = event.logical_date;
    ledger::tracked(
        ctx,
        "marketing",
        "unify",
        date,
        event.execution.as_deref(),
        // Boxed: the download → check → write → upload future is deep enough to overflow the
        // compiler's layout recursion limit in every binary that awaits it.
        Box::pin(unify(ctx, &event)),
    )
    .await
}

fn local_base(event: &UnifyEvent) -> PathBuf {
    event
        .local_dir
        .clone()
        .or_else(|| std::env::var_os(LOCAL_DIR_VAR).map(PathBuf::from))
        .unwrap_or_else(|| std::env::temp_dir().join("etl-pipelines"))
}

fn master_error(err: MasterError) -> StageError {
    StageError::Internal(err.to_string())
}

async fn unify(ctx: &Context, event: &UnifyEvent) -> Result<UnifyOutput, StageError> {
    let date = event.logical_date;
    let bucket = ctx.config.bucket.as_str();
    // A re-run replaces the day's quarantine, so it only ever describes the last run.
    s3::delete_prefix(ctx, bucket, &quarantine_prefix(date)).await?;

    let mut partitions = Vec::new();
    let mut ignored_keys = Vec::new();
    for entry in s3::list(ctx, bucket, &raw_prefix(date)).await? {
        match partition_of(&entry.key) {
            Some(number) => partitions.push((number, entry.key)),
            None => ignored_keys.push(entry.key),
        }
    }
    partitions.sort();

    let local_dir = local_base(event).join("marketing").join(date.partition());
    let mut master = MasterWriter::create(&local_dir).map_err(master_error)?;
    let mut quarantined = Vec::new();
    let (mut rows_in, mut rows_quarantined) = (0u64, 0u64);
    let partition_count = partitions.len();

    let mut downloads = futures::stream::iter(partitions)
        .map(|(number, key)| async move {
            let bytes = s3::get(ctx, bucket, &key).await?;
            Ok::<_, StageError>((number, key, bytes))
        })
        .buffered(PREFETCH);
    while let Some((number, key, bytes)) = downloads.try_next().await? {
        let raw = bytes.clone();
        let check = tokio::task::spawn_blocking(move || check_partition(bytes, date))
            .await
            .map_err(|e| StageError::Internal(format!("checking {key}: {e}")))?;
        match check {
            PartitionCheck::Corrupt { reason } => {
                tracing::warn!(%key, %reason, "raw partition quarantined");
                quarantined.push(quarantine(ctx, date, number, "corrupt", raw, 0, reason).await?);
            }
            PartitionCheck::Parsed {
                mut good,
                mut rejected,
            } => {
                rows_in += (good.height() + rejected.height()) as u64;
                master.write(&mut good).map_err(master_error)?;
                if rejected.height() > 0 {
                    let rows = rejected.height() as u64;
                    rows_quarantined += rows;
                    let reason = summarise_reasons(&rejected);
                    tracing::warn!(%key, rows, %reason, "rows quarantined");
                    let csv = rejected_csv(&mut rejected)?;
                    quarantined
                        .push(quarantine(ctx, date, number, "rows", csv, rows, reason).await?);
                }
            }
        }
    }

    let (paths, rows_out) = master.finish().map_err(master_error)?;
    let (parquet_key, csv_key) = master_keys(date);
    s3::upload_file(
        ctx,
        bucket,
        &parquet_key,
        PARQUET_CONTENT_TYPE,
        &paths.parquet,
    )
    .await?;
    s3::upload_file(ctx, bucket, &csv_key, CSV_CONTENT_TYPE, &paths.csv).await?;

    let output = UnifyOutput {
        logical_date: date,
        partitions: partition_count,
        partitions_corrupt: quarantined.iter().filter(|q| q.kind == "corrupt").count(),
        rows_in,
        rows_out,
        rows_quarantined,
        parquet_key,
        csv_key,
        local_parquet: paths.parquet,
        local_csv: paths.csv,
        quarantined,
        ignored_keys,
    };
    tracing::info!(
        date = %date,
        partitions = output.partitions,
        corrupt = output.partitions_corrupt,
        rows_in,
        rows_out,
        rows_quarantined,
        "master dataset written"
    );
    Ok(output)
}

/// `"<n> × <reason>; …"`, most frequent first.
fn summarise_reasons(rejected: &DataFrame) -> String {
    let mut counts: Vec<(String, u64)> = Vec::new();
    if let Ok(column) = rejected
        .column(crate::validate::REASON_COLUMN)
        .and_then(|c| c.str().cloned())
    {
        for reason in column.iter().flatten() {
            match counts.iter_mut().find(|(r, _)| r == reason) {
                Some((_, n)) => *n += 1,
                None => counts.push((reason.to_string(), 1)),
            }
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
        .iter()
        .map(|(reason, n)| format!("{n} × {reason}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn rejected_csv(rejected: &mut DataFrame) -> Result<Bytes, StageError> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out)
        .include_header(true)
        .finish(rejected)
        .map_err(|e| StageError::Internal(format!("encoding quarantined rows: {e}")))?;
    Ok(Bytes::from(out))
}

/// Writes the quarantined bytes and a reason file next to them.
async fn quarantine(
    ctx: &Context,
    date: LogicalDate,
    partition: u32,
    kind: &'static str,
    body: Bytes,
    rows: u64,
    reason: String,
) -> Result<Quarantined, StageError> {
    let bucket = ctx.config.bucket.as_str();
    let prefix = quarantine_prefix(date);
    let stem = match kind {
        "rows" => format!("part-{partition:05}.rows"),
        _ => format!("part-{partition:05}"),
    };
    let entry = Quarantined {
        partition,
        kind,
        rows,
        key: format!("{prefix}{stem}.csv"),
        reason_key: format!("{prefix}{stem}.reason.json"),
        reason,
    };
    s3::put(ctx, bucket, &entry.key, CSV_CONTENT_TYPE, body).await?;
    let reason_file = serde_json::to_vec_pretty(&serde_json::json!({
        "logical_date": date,
        "source_key": crate::dataset::raw_key(date, partition),
        "kind": entry.kind,
        "rows": entry.rows,
        "reason": entry.reason,
    }))
    .map_err(|e| StageError::Internal(format!("encoding a reason file: {e}")))?;
    s3::put(
        ctx,
        bucket,
        &entry.reason_key,
        "application/json",
        Bytes::from(reason_file),
    )
    .await?;
    Ok(entry)
}
