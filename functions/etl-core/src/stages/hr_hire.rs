//! Stage `hr-hire`: hires `count` fake employees for a logical date — generate, clean,
//! validate, load — deterministically, so a retry or a re-run adds nothing.
//!
//! The batch (date, seed) is generated on every core straight into binary COPY bytes
//! ([`crate::hr::chunks`]) and loaded as a unit ([`crate::hr::load`]): one transaction deletes
//! what an earlier run of the batch left and copies the new rows in.

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::hr::binary_copy::RowEncoder;
use crate::hr::chunks::{default_threads, ChunkPlan, Chunks};
use crate::hr::clean::Reject;
use crate::hr::generate::HireBatch;
use crate::hr::load::{
    claim_batch, delete_batch, merge_staging, record_batch, replace_rejects, BatchIds, BatchRecord,
    CopyIn, CopyTarget, ID_BLOCK,
};
use crate::hr::locale::Locale;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;

/// The most one invocation may hire: it must finish inside the function's 300 s timeout
/// (template.yaml). 5M rows took about 335 s at 512 MB (issue #14), so about 15k rows/s;
/// 2M is about 135 s, leaving room for a slower day. Larger days are an `InvalidInput` up
/// front rather than a timeout after minutes of work.
pub const MAX_COUNT: u64 = 2_000_000;
// A batch's rows must fit its block of employee ids.
const _: () = assert!(MAX_COUNT <= ID_BLOCK as u64);

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
}

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
    // Locks the batch: a concurrent load of the same (date, seed) waits for this one.
    let ids = claim_batch(&tx, date, seed).await?;
    let (target, id_base, replaced) = match ids {
        BatchIds::Block(base) => (
            CopyTarget::Employees,
            base,
            Some(delete_batch(&tx, date, seed, count).await?),
        ),
        // The staging rows' ids are not used: the merge keeps the batch's own.
        BatchIds::Legacy => (CopyTarget::Staging, 0, None),
    };
    let plan = ChunkPlan {
        batch: HireBatch {
            hire_date: date.date(),
            seed: event.seed,
            locale,
        },
        interval: (date.date(), next.date()),
        count,
        encoder: RowEncoder::new(date.date(), seed, id_base),
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
