//! Stage `marketing-unify`: reads the day's raw partitions with polars, quarantines what is
//! corrupt or inconsistent (with a reason file), and writes the rest as the master dataset,
//! Parquet plus CSV, to `curated/marketing/dt=…/` and to a local directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use etl_core::ledger::{self, Counted, RowCounts};
use etl_core::s3::{self, CSV_CONTENT_TYPE};
use etl_core::{Context, LogicalDate, StageError};
use futures::{StreamExt, TryStreamExt};
use polars::prelude::{CsvWriter, DataFrame, SerWriter};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::dataset::{curated_prefix, partition_of, quarantine_prefix, raw_prefix, MASTER_NAME};
use crate::master::{MasterError, MasterPaths, MasterWriter, Produced};
use crate::validate::{check_partitions, PartitionCheck};

/// Raw partitions downloaded ahead of the one being checked.
const PREFETCH: usize = 8;
/// Chunks of a master file that may wait for its uploader (the CSV gets one chunk per raw
/// partition, ≈ 1 MB; Parquet one per 100,000 rows encoded).
const CHUNKS_IN_FLIGHT: usize = 16;
/// Raw partitions checked together in one polars query (see `check_partitions`).
const CHECK_BATCH: usize = 5;
/// Checked partitions that may wait for the encoder: one batch.
const CHECKED_AHEAD: usize = CHECK_BATCH;
/// Where the local copy goes when neither the event nor `MARKETING_LOCAL_DIR` says: the
/// system temp dir, which is `/tmp` (the only writable place) inside Lambda.
const LOCAL_DIR_VAR: &str = "MARKETING_LOCAL_DIR";
/// How many dates' local copies stay on disk (default `LOCAL_KEEP_DEFAULT`): a warm Lambda
/// container keeps `/tmp` between invocations, and each date's copy is about 83 MB at the
/// seed's volume (828 MB at 5M rows), so a backfill through one container would fill its
/// `/tmp` otherwise (6 GB in template.yaml: 3 dates at the 10M maximum).
const LOCAL_KEEP_VAR: &str = "MARKETING_LOCAL_KEEP_DATES";
const LOCAL_KEEP_DEFAULT: usize = 3;
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

/// What part of a raw partition was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineKind {
    /// The whole partition: it could not be read with the schema.
    Corrupt,
    /// Some of its rows: they broke a rule.
    Rows,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub partition: u32,
    pub kind: QuarantineKind,
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

fn local_keep() -> usize {
    std::env::var(LOCAL_KEEP_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|keep| *keep >= 1)
        .unwrap_or(LOCAL_KEEP_DEFAULT)
}

/// Removes the oldest dates' local copies so that, with the one about to be written, at most
/// `keep` remain. The copies are a convenience (the master dataset is in S3), so a copy that
/// cannot be removed is logged, not fatal.
fn prune_local_copies(root: &Path, writing: LogicalDate, keep: usize) {
    let current = writing.partition();
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut others: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("dt=") && *name != current)
        .collect();
    // `dt=YYYY-MM-DD` sorts by date.
    others.sort_unstable();
    let excess = (others.len() + 1).saturating_sub(keep);
    for name in others.into_iter().take(excess) {
        let dir = root.join(&name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(dir = %dir.display(), "removed an older local copy"),
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "could not remove an older local copy");
            }
        }
    }
}

/// One raw partition, downloaded.
struct RawPartition {
    number: u32,
    key: String,
    bytes: Bytes,
}

/// Something to set aside in the quarantine zone, as the checks find it.
struct ToQuarantine {
    partition: u32,
    kind: QuarantineKind,
    body: Bytes,
    rows: u64,
    reason: String,
}

/// What building the master dataset counted.
struct Built {
    paths: MasterPaths,
    rows_in: u64,
    rows_out: u64,
    rows_quarantined: u64,
    /// Time spent parsing and checking, and encoding the master files: the CPU half of the
    /// stage, logged so a slow run shows which half it was.
    checking: Duration,
    encoding: Duration,
}

/// Why the master-building thread stopped early.
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error("encoding quarantined rows: {0}")]
    Quarantine(String),
    /// An uploader or the quarantine writer went away: its own error is the one to report.
    #[error("an upload stopped before the master dataset was complete")]
    ConsumerGone,
    #[error("the thread checking raw partitions panicked")]
    CheckerPanicked,
}

async fn unify(ctx: &Context, event: &UnifyEvent) -> Result<UnifyOutput, StageError> {
    let date = event.logical_date;
    let bucket = ctx.config.bucket.as_str();
    // A re-run replaces the day's quarantine, so it only ever describes the last run.
    s3::delete_prefix(ctx, bucket, &quarantine_prefix(date)).await?;
    let (partitions, ignored_keys) = list_partitions(ctx, date).await?;
    let partition_count = partitions.len();
    let local_root = local_base(event).join("marketing");
    prune_local_copies(&local_root, date, local_keep());
    let local_dir = local_root.join(date.partition());
    let (parquet_key, csv_key) = master_keys(date);

    let Finished {
        parquet,
        csv,
        built,
        quarantined,
    } = run_pipeline(
        ctx,
        date,
        partitions,
        local_dir,
        (parquet_key.as_str(), csv_key.as_str()),
    )
    .await?;
    futures::try_join!(parquet.finish(), csv.finish())?;

    let output = UnifyOutput {
        logical_date: date,
        partitions: partition_count,
        partitions_corrupt: quarantined
            .iter()
            .filter(|q| q.kind == QuarantineKind::Corrupt)
            .count(),
        rows_in: built.rows_in,
        rows_out: built.rows_out,
        rows_quarantined: built.rows_quarantined,
        parquet_key,
        csv_key,
        local_parquet: built.paths.parquet,
        local_csv: built.paths.csv,
        quarantined,
        ignored_keys,
    };
    tracing::info!(
        date = %date,
        partitions = output.partitions,
        corrupt = output.partitions_corrupt,
        rows_in = output.rows_in,
        rows_out = output.rows_out,
        rows_quarantined = output.rows_quarantined,
        checking_ms = built.checking.as_millis() as u64,
        encoding_ms = built.encoding.as_millis() as u64,
        "master dataset written"
    );
    Ok(output)
}

/// The day's raw partitions as `(number, key)` in partition order, and the other keys
/// under the raw prefix.
async fn list_partitions(
    ctx: &Context,
    date: LogicalDate,
) -> Result<(Vec<(u32, String)>, Vec<String>), StageError> {
    let mut partitions = Vec::new();
    let mut ignored_keys = Vec::new();
    for entry in s3::list(ctx, &ctx.config.bucket, &raw_prefix(date)).await? {
        match partition_of(&entry.key) {
            Some(number) => partitions.push((number, entry.key)),
            None => ignored_keys.push(entry.key),
        }
    }
    partitions.sort();
    Ok((partitions, ignored_keys))
}

/// What the pipeline leaves when every part of it succeeded.
struct Finished<'a> {
    /// The master files' uploads, complete but for the final call.
    parquet: s3::ObjectWriter<'a>,
    csv: s3::ObjectWriter<'a>,
    built: Built,
    quarantined: Vec<Quarantined>,
}

/// The stage is a pipeline, so the S3 server and the CPU work at the same time: downloads
/// run ahead of the checks; one blocking thread checks each partition and appends its good
/// rows to the master files; both files stream to S3 (multipart) while they grow. The
/// objects are completed only when every part of the pipeline succeeded, so a failed run
/// never leaves a partial master dataset behind.
async fn run_pipeline<'a>(
    ctx: &'a Context,
    date: LogicalDate,
    partitions: Vec<(u32, String)>,
    local_dir: PathBuf,
    (parquet_key, csv_key): (&'a str, &'a str),
) -> Result<Finished<'a>, StageError> {
    let bucket = ctx.config.bucket.as_str();
    let (raw_tx, raw_rx) = mpsc::channel::<RawPartition>(PREFETCH);
    let (parquet_tx, parquet_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let (csv_tx, csv_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let (quarantine_tx, quarantine_rx) = mpsc::channel::<ToQuarantine>(PREFETCH);

    let span = tracing::Span::current();
    let build = tokio::task::spawn_blocking(move || {
        let _in_stage = span.enter();
        build_master(raw_rx, date, &local_dir, parquet_tx, csv_tx, quarantine_tx)
    });
    let (downloaded, built, parquet, csv, quarantined) = tokio::join!(
        download(ctx, partitions, raw_tx),
        build,
        stream_upload(ctx, bucket, parquet_key, PARQUET_CONTENT_TYPE, parquet_rx),
        stream_upload(ctx, bucket, csv_key, CSV_CONTENT_TYPE, csv_rx),
        quarantine_all(ctx, date, quarantine_rx),
    );

    let built = built
        .map_err(|e| StageError::Internal(format!("building the master dataset: {e}")))
        .and_then(|result| result.map_err(|e| StageError::Internal(e.to_string())));
    match (downloaded, built, parquet, csv, quarantined) {
        (Ok(()), Ok(built), Ok(parquet), Ok(csv), Ok(quarantined)) => Ok(Finished {
            parquet,
            csv,
            built,
            quarantined,
        }),
        (downloaded, built, parquet, csv, quarantined) => {
            let mut causes = Vec::new();
            causes.extend(downloaded.err());
            for upload in [parquet, csv] {
                match upload {
                    Ok(writer) => writer.abort().await,
                    Err(err) => causes.push(err),
                }
            }
            causes.extend(quarantined.err());
            // Last: the builder's `ConsumerGone` only echoes one of the errors above.
            causes.extend(built.err());
            Err(causes.into_iter().next().unwrap_or_else(|| {
                StageError::Internal("the master dataset pipeline failed".into())
            }))
        }
    }
}

/// Downloads the partitions in order, up to `PREFETCH` ahead of the builder.
async fn download(
    ctx: &Context,
    partitions: Vec<(u32, String)>,
    raw: mpsc::Sender<RawPartition>,
) -> Result<(), StageError> {
    let bucket = ctx.config.bucket.as_str();
    let mut downloads = futures::stream::iter(partitions)
        .map(|(number, key)| async move {
            let bytes = s3::get(ctx, bucket, &key).await?;
            Ok::<_, StageError>(RawPartition { number, key, bytes })
        })
        .buffered(PREFETCH);
    while let Some(partition) = downloads.try_next().await? {
        if raw.send(partition).await.is_err() {
            break; // the builder stopped; its error is reported
        }
    }
    Ok(())
}

/// Writes each item the builder sets aside, as it arrives.
async fn quarantine_all(
    ctx: &Context,
    date: LogicalDate,
    mut items: mpsc::Receiver<ToQuarantine>,
) -> Result<Vec<Quarantined>, StageError> {
    let mut done = Vec::new();
    while let Some(item) = items.recv().await {
        done.push(quarantine(ctx, date, item).await?);
    }
    Ok(done)
}

/// The blocking half of the pipeline: checks each downloaded partition in order, appends its
/// good rows to the local master files, and hands on the files' new bytes and whatever must
/// be quarantined.
// It owns `quarantine` so that the channel closes, ending the consumer's loop, when the
// build returns, success or not.
#[allow(clippy::needless_pass_by_value)]
fn build_master(
    mut raw: mpsc::Receiver<RawPartition>,
    date: LogicalDate,
    local_dir: &std::path::Path,
    parquet: mpsc::Sender<Bytes>,
    csv: mpsc::Sender<Bytes>,
    quarantine: mpsc::Sender<ToQuarantine>,
) -> Result<Built, BuildError> {
    let mut master = Master {
        writer: MasterWriter::create(local_dir)?,
        uploads: Uploads { parquet, csv },
        rows_in: 0,
        rows_quarantined: 0,
        encoding: Duration::ZERO,
    };
    // Checking runs on a thread of its own, a partition or two ahead of encoding: the two
    // CPU halves overlap instead of taking turns.
    let (checked_tx, checked_rx) = std::sync::mpsc::sync_channel(CHECKED_AHEAD);
    let span = tracing::Span::current();
    let checking = std::thread::scope(|scope| {
        let checker = scope.spawn(move || {
            let _in_stage = span.enter();
            let mut checking = Duration::ZERO;
            loop {
                let batch: Vec<RawPartition> = std::iter::from_fn(|| raw.blocking_recv())
                    .take(CHECK_BATCH)
                    .collect();
                if batch.is_empty() {
                    return checking;
                }
                let started = Instant::now();
                let checks =
                    check_partitions(batch.iter().map(|p| p.bytes.clone()).collect(), date);
                checking += started.elapsed();
                for checked in batch.into_iter().zip(checks) {
                    if checked_tx.send(checked).is_err() {
                        return checking; // encoding stopped; its error is reported
                    }
                }
            }
        });
        for (partition, check) in checked_rx {
            if let Some(item) = master.append(partition, check)? {
                quarantine
                    .blocking_send(item)
                    .map_err(|_| BuildError::ConsumerGone)?;
            }
        }
        checker.join().map_err(|_| BuildError::CheckerPanicked)
    })?;
    master.finish(checking)
}

/// The master files being written, where their bytes go, and what they have counted.
struct Master {
    writer: MasterWriter,
    uploads: Uploads,
    rows_in: u64,
    rows_quarantined: u64,
    encoding: Duration,
}

impl Master {
    /// Appends one checked partition's good rows and returns what must be quarantined.
    fn append(
        &mut self,
        RawPartition { number, key, bytes }: RawPartition,
        check: PartitionCheck,
    ) -> Result<Option<ToQuarantine>, BuildError> {
        let (good, good_csv, mut rejected) = match check {
            PartitionCheck::Corrupt { reason } => {
                tracing::warn!(%key, %reason, "raw partition quarantined");
                return Ok(Some(ToQuarantine {
                    partition: number,
                    kind: QuarantineKind::Corrupt,
                    body: bytes,
                    rows: 0,
                    reason,
                }));
            }
            PartitionCheck::Parsed {
                good,
                good_csv,
                rejected,
            } => (good, good_csv, rejected),
        };
        self.rows_in += (good.height() + rejected.height()) as u64;
        let started = Instant::now();
        let produced = self.writer.write(good, good_csv)?;
        self.encoding += started.elapsed();
        self.uploads.send(produced)?;
        let rows = rejected.height() as u64;
        if rows == 0 {
            return Ok(None);
        }
        self.rows_quarantined += rows;
        let reason = summarise_reasons(&rejected);
        tracing::warn!(%key, rows, %reason, "rows quarantined");
        Ok(Some(ToQuarantine {
            partition: number,
            kind: QuarantineKind::Rows,
            body: rejected_csv(&mut rejected)?,
            rows,
            reason,
        }))
    }

    fn finish(self, checking: Duration) -> Result<Built, BuildError> {
        let started = Instant::now();
        let (paths, rows_out, last) = self.writer.finish()?;
        let encoding = self.encoding + started.elapsed();
        self.uploads.send(last)?;
        Ok(Built {
            paths,
            rows_in: self.rows_in,
            rows_out,
            rows_quarantined: self.rows_quarantined,
            checking,
            encoding,
        })
    }
}

/// The senders feeding the two master files' uploads.
struct Uploads {
    parquet: mpsc::Sender<Bytes>,
    csv: mpsc::Sender<Bytes>,
}

impl Uploads {
    fn send(&self, produced: Produced) -> Result<(), BuildError> {
        let parquet = std::iter::once(Bytes::from(produced.parquet)).map(|b| (b, &self.parquet));
        let csv = produced.csv.into_iter().map(|b| (b, &self.csv));
        for (bytes, sink) in parquet.chain(csv) {
            if !bytes.is_empty() {
                sink.blocking_send(bytes)
                    .map_err(|_| BuildError::ConsumerGone)?;
            }
        }
        Ok(())
    }
}

/// Uploads an object whose bytes arrive in chunks, and leaves it uncompleted: the caller
/// finishes it once the whole pipeline succeeded, or aborts it.
async fn stream_upload<'a>(
    ctx: &'a Context,
    bucket: &'a str,
    key: &'a str,
    content_type: &'a str,
    mut chunks: mpsc::Receiver<Bytes>,
) -> Result<s3::ObjectWriter<'a>, StageError> {
    let mut writer = s3::ObjectWriter::new(ctx, bucket, key, content_type);
    while let Some(chunk) = chunks.recv().await {
        writer.write(&chunk).await?;
    }
    Ok(writer)
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

fn rejected_csv(rejected: &mut DataFrame) -> Result<Bytes, BuildError> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out)
        .include_header(true)
        .finish(rejected)
        .map_err(|e| BuildError::Quarantine(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// Writes the quarantined bytes and a reason file next to them.
async fn quarantine(
    ctx: &Context,
    date: LogicalDate,
    item: ToQuarantine,
) -> Result<Quarantined, StageError> {
    let ToQuarantine {
        partition,
        kind,
        body,
        rows,
        reason,
    } = item;
    let bucket = ctx.config.bucket.as_str();
    let prefix = quarantine_prefix(date);
    let stem = match kind {
        QuarantineKind::Rows => format!("part-{partition:05}.rows"),
        QuarantineKind::Corrupt => format!("part-{partition:05}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dates_left(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn older_local_copies_are_pruned_to_the_newest_few() {
        let root = std::env::temp_dir().join(format!("unify-prune-{}", std::process::id()));
        for day in 1..=5 {
            let dir = root.join(format!("dt=2026-11-0{day}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("marketing_master_dataset.csv"), b"x").unwrap();
        }
        std::fs::create_dir_all(root.join("not-a-date")).unwrap();

        prune_local_copies(&root, "2026-11-06".parse().unwrap(), 3);
        assert_eq!(
            dates_left(&root),
            ["dt=2026-11-04", "dt=2026-11-05", "not-a-date"],
            "two others are kept, so with the date being written there are three"
        );

        // Re-running a date that is already there keeps it and counts it once.
        prune_local_copies(&root, "2026-11-05".parse().unwrap(), 1);
        assert_eq!(dates_left(&root), ["dt=2026-11-05", "not-a-date"]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_local_root_is_not_an_error() {
        prune_local_copies(
            Path::new("/nonexistent/etl"),
            "2026-11-06".parse().unwrap(),
            3,
        );
    }
}
