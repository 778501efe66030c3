//! Stage `hr-hire`: hires `count` fake employees for a logical date — generate, clean,
//! validate, load — deterministically, so a retry or a re-run adds nothing.
//!
//! The batch (date, seed) is generated on every core straight into binary COPY bytes
//! ([`crate::hr::chunks`]) and loaded as a unit ([`crate::hr::load`]): one transaction deletes
//! what an earlier run of the batch left and copies the new rows in.

use std::num::{NonZeroU32, NonZeroUsize};

use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::hr::binary_copy::RowEncoder;
use crate::hr::chunks::{default_threads, ChunkPlan, Chunks};
use crate::hr::clean::Reject;
use crate::hr::generate::HireBatch;
use crate::hr::load::{
    claim_batch, delete_batch, merge_staging, record_batch, replace_rejects, reserve_id_blocks,
    BatchIds, BatchRecord, CopyIn, CopyTarget, IdBlocks, Replaced, ID_BLOCK,
};
use crate::hr::locale::Locale;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;

/// The most one invocation may hire (#18: 10× the seed's volumes): it must finish inside the
/// function's 600 s timeout (template.yaml). 10M rows took 112 s and 10.9 s of CPU on 2
/// shared cores, release build (38 s of CPU at 512 MB's 0.29 vCPU, overlapped with the COPY,
/// which is the bottleneck); a re-run replaces the batch in about 1.8× a first load's time.
/// Larger days are an `InvalidInput` up front rather than a timeout after minutes of work
/// (docs/pipelines.md § Maximums).
pub const MAX_COUNT: u64 = 10_000_000;
// `batch_index` is an integer column.
const _: () = assert!(MAX_COUNT <= i32::MAX as u64);

fn default_count() -> u64 {
    100
}

#[derive(Debug, Clone, Deserialize)]
pub struct HireEvent {
    pub logical_date: LogicalDate,
    #[serde(default = "default_count")]
    pub count: u64,
    #[serde(default)]
    pub locale: Option<Locale>,
    #[serde(default)]
    pub seed: u64,
    /// The state machine execution, for the run ledger.
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HireOutput {
    pub logical_date: LogicalDate,
    pub seed: u64,
    pub locale: String,
    pub generated: u64,
    /// Rows new to the table in this run (0 when the date was already loaded).
    pub loaded: u64,
    /// Rows that passed validation but were already there.
    pub already_present: u64,
    pub rejected: u64,
}

impl Counted for HireOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.generated as i64),
            rows_out: Some(self.loaded as i64),
            rows_rejected: Some(self.rejected as i64),
        }
    }
}

/// How the stage runs, beyond what the event says (tests and benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct HireOptions {
    /// Generator threads; default one per available core.
    pub generator_threads: Option<NonZeroUsize>,
    /// Rows per id block; default (and at most) [`ID_BLOCK`]. Tests set fewer to cross blocks
    /// with a small batch. A batch's ids are stable only across loads with the same value.
    pub id_block_rows: Option<NonZeroU32>,
}

/// [`ID_BLOCK`] as the non-zero type the options use.
const FULL_BLOCK: NonZeroU32 = match NonZeroU32::new(ID_BLOCK) {
    Some(rows) => rows,
    None => panic!("ID_BLOCK is not zero"),
};

pub async fn run(ctx: &Context, event: HireEvent) -> Result<HireOutput, StageError> {
    run_with(ctx, event, HireOptions::default()).await
}

pub async fn run_with(
    ctx: &Context,
    event: HireEvent,
    options: HireOptions,
) -> Result<HireOutput, StageError> {
    let (date, execution) = (event.logical_date, event.execution.clone());
    ledger::tracked(
        ctx,
        "hr",
        "hire",
        date,
        execution.as_deref(),
        hire(ctx, event, options),
    )
    .await
}

async fn hire(
    ctx: &Context,
    event: HireEvent,
    options: HireOptions,
) -> Result<HireOutput, StageError> {
    if !(1..=MAX_COUNT).contains(&event.count) {
        return Err(StageError::invalid_input(format!(
            "count must be between 1 and {MAX_COUNT}, got {}",
            event.count
        )));
    }
    let seed = i64::try_from(event.seed).map_err(|_| {
        StageError::invalid_input(format!(
            "seed must be at most {}, got {}",
            i64::MAX,
            event.seed
        ))
    })?;
    let date = event.logical_date;
    let next = date.next().ok_or_else(|| {
        StageError::invalid_input(format!("{date} has no following day in range"))
    })?;
    let locale = event.locale.unwrap_or(Locale::EsEs);
    let count = event.count as u32; // checked above: at most MAX_COUNT
    let threads = options.generator_threads.unwrap_or_else(default_threads);

    let mut client = ctx.postgres().await?;
    let tx = client.transaction().await.map_err(StageError::postgres)?;
    let block_rows = options.id_block_rows.unwrap_or(FULL_BLOCK);
    let (ids, target, id_blocks, replaced) = prepare(&tx, date, seed, count, block_rows).await?;
    let plan = ChunkPlan {
        batch: HireBatch {
            hire_date: date.date(),
            seed: event.seed,
            locale,
        },
        interval: (date.date(), next.date()),
        count,
        encoder: RowEncoder::new(date.date(), seed, id_blocks),
    };
    let (copied, rejects) = copy_batch(&tx, target, plan, threads).await?;
    let (loaded, already_present, dropped) = match replaced {
        Some(replaced) => {
            let present = replaced.reproduced.min(copied);
            (copied - present, present, replaced.dropped)
        }
        None => {
            let inserted = merge_staging(&tx).await?;
            (inserted, copied.saturating_sub(inserted), 0)
        }
    };
    replace_rejects(&tx, date, seed, &rejects).await?;
    let record = BatchRecord {
        locale: &locale.to_string(),
        requested: count,
        loaded: copied,
        rejected: rejects.len() as u64,
    };
    record_batch(&tx, date, seed, &record).await?;
    tx.commit().await.map_err(StageError::postgres)?;

    let output = HireOutput {
        logical_date: date,
        seed: event.seed,
        locale: locale.to_string(),
        generated: u64::from(count),
        loaded,
        already_present,
        rejected: rejects.len() as u64,
    };
    tracing::info!(
        generated = output.generated,
        loaded = output.loaded,
        already_present = output.already_present,
        rejected = output.rejected,
        dropped,
        legacy_batch = ids == BatchIds::Legacy,
        generator_threads = threads.get(),
        "employees hired"
    );
    Ok(output)
}

/// Locks the batch (a concurrent load of the same (date, seed) waits for this one) and
/// readies it for the COPY: a block batch gets the id blocks `count` rows need and loses its
/// earlier rows; a legacy batch is merged through staging, whose ids are not kept.
async fn prepare(
    tx: &tokio_postgres::Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    count: u32,
    block_rows: NonZeroU32,
) -> Result<(BatchIds, CopyTarget, IdBlocks, Option<Replaced>), StageError> {
    let ids = claim_batch(tx, date, seed).await?;
    Ok(match ids {
        BatchIds::Block(_) => {
            let blocks = IdBlocks::needed(count, block_rows);
            let bases = reserve_id_blocks(tx, date, seed, blocks).await?;
            let id_blocks = IdBlocks::new(bases, block_rows, count)?;
            let replaced = delete_batch(tx, date, seed, count).await?;
            (ids, CopyTarget::Employees, id_blocks, Some(replaced))
        }
        BatchIds::Legacy => (ids, CopyTarget::Staging, IdBlocks::unused(), None),
    })
}

/// Streams the batch into `target` while the generator threads make it; returns the rows
/// copied and the rejects. Stops the threads if the COPY fails.
async fn copy_batch(
    tx: &tokio_postgres::Transaction<'_>,
    target: CopyTarget,
    plan: ChunkPlan,
    threads: NonZeroUsize,
) -> Result<(u64, Vec<Reject>), StageError> {
    let internal = |err: crate::hr::chunks::ChunkError| StageError::Internal(err.to_string());
    let mut chunks = Chunks::start(plan, threads);
    let copied = async {
        let mut copy = CopyIn::begin(tx, target).await?;
        while let Some(chunk) = chunks.next().await.map_err(internal)? {
            copy.write(chunk).await?;
        }
        copy.finish().await
    }
    .await;
    // Before reporting a COPY error: the threads stop at their next send once the channels
    // close, and nothing outlives the stage.
    let rejects = chunks.finish().await.map_err(internal);
    let copied = copied?;
    Ok((copied, rejects?))
}
