//! Stage `marketing-generate`: writes a task's raw partitions to
//! `raw/marketing/dt=YYYY-MM-DD/part-NNNNN.csv`, each streamed from a bounded buffer into S3.
//! A partition's bytes depend only on (date, partition, seed), so a retry overwrites it with
//! identical content.

use etl_core::ledger::{Counted, RowCounts};
use etl_core::metrics::StageFigures;
use etl_core::s3::{ObjectWriter, CSV_CONTENT_TYPE};
use etl_core::{Context, LogicalDate, StageError};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::dataset::raw_key;
use crate::generate::{PartitionRows, PartitionSpec, ROW_BYTES_ESTIMATE};
use crate::stages::plan::{GenerateTask, RunSize};

/// Bytes generated before they are handed to the upload: the bound on the row buffer.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Partitions uploaded at once by one invocation.
const CONCURRENT_PARTITIONS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenPartition {
    pub partition: u32,
    pub key: String,
    pub rows: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateOutput {
    pub logical_date: LogicalDate,
    pub rows: u64,
    pub bytes: u64,
    pub partitions: Vec<WrittenPartition>,
}

impl Counted for GenerateOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: None,
            rows_out: Some(self.rows as i64),
            rows_rejected: Some(0),
        }
    }
    fn bytes(&self) -> Option<u64> {
        Some(self.bytes)
    }
}

pub async fn run(ctx: &Context, task: GenerateTask) -> Result<GenerateOutput, StageError> {
    let size = RunSize::new(task.rows, task.partition_rows)?;
    if task.partitions.is_empty() {
        return Err(StageError::invalid_input(
            "a generate task needs at least one partition",
        ));
    }
    let specs = task
        .partitions
        .iter()
        .map(|&partition| {
            Ok(PartitionSpec {
                date: task.logical_date,
                partition,
                rows: size.rows_in(partition)?,
                seed: task.seed,
            })
        })
        .collect::<Result<Vec<_>, StageError>>()?;

    let mut written: Vec<WrittenPartition> = futures::stream::iter(specs)
        .map(|spec| write_partition(ctx, spec))
        .buffer_unordered(CONCURRENT_PARTITIONS)
        .try_collect()
        .await?;
    written.sort_by_key(|p| p.partition);
    let output = GenerateOutput {
        logical_date: task.logical_date,
        rows: written.iter().map(|p| u64::from(p.rows)).sum(),
        bytes: written.iter().map(|p| p.bytes).sum(),
        partitions: written,
    };
    tracing::info!(
        date = %output.logical_date,
        partitions = output.partitions.len(),
        rows = output.rows,
        bytes = output.bytes,
        "raw partitions written"
    );
    // Not in the ledger (one row per partition task would drown it), but in the metrics.
    let counts = output.counts();
    etl_core::metrics::record_stage(StageFigures {
        pipeline: "marketing".to_string(),
        rows_out: counts.rows_out,
        rows_rejected: counts.rows_rejected,
        bytes: output.bytes(),
        ..StageFigures::default()
    });
    Ok(output)
}

async fn write_partition(
    ctx: &Context,
    spec: PartitionSpec,
) -> Result<WrittenPartition, StageError> {
    let key = raw_key(spec.date, spec.partition);
    let mut upload = ObjectWriter::new(ctx, &ctx.config.bucket, &key, CSV_CONTENT_TYPE);
    let mut rows = PartitionRows::new(&spec);
    let mut buffer = String::with_capacity(CHUNK_BYTES + ROW_BYTES_ESTIMATE);
    while !rows.is_done() {
        // Rows are made on the blocking pool: partitions are generated on every core at once,
        // and the runtime's threads stay free to move the finished ones to S3.
        (rows, buffer) = tokio::task::spawn_blocking(move || {
            buffer.clear();
            rows.fill(&mut buffer, CHUNK_BYTES);
            (rows, buffer)
        })
        .await
        .map_err(|e| StageError::Internal(format!("generating rows: {e}")))?;
        upload.write(buffer.as_bytes()).await?;
    }
    let (bytes, _parts) = upload.finish().await?;
    Ok(WrittenPartition {
        partition: spec.partition,
        key,
        rows: spec.rows,
        bytes,
    })
}
