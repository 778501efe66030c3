//! Stage `hr-hire`: hires `count` fake employees for a logical date — generate, clean,
//! validate, load — deterministically, so a retry or a re-run adds nothing.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use crate::clients::Context;
use crate::error::StageError;
use crate::hr::clean::{clean_and_validate, Employee, Reject};
use crate::hr::generate::HireBatch;
use crate::hr::load::{save_rejects, StagingCopy};
use crate::hr::locale::Locale;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;

/// The most one invocation may hire: it must finish inside the function's 300 s timeout
/// (template.yaml). 5M rows took about 335 s at 512 MB (issue #14), so about 15k rows/s;
/// 2M is about 135 s, leaving room for a slower day. Larger days are an `InvalidInput` up
/// front rather than a timeout after minutes of work.
pub const MAX_COUNT: u64 = 2_000_000;
/// Rows generated and sent per COPY chunk: bounds memory whatever the count.
const CHUNK: u32 = 10_000;

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

pub async fn run(ctx: &Context, event: HireEvent) -> Result<HireOutput, StageError> {
    let (date, execution) = (event.logical_date, event.execution.clone());
    ledger::tracked(
        ctx,
        "hr",
        "hire",
        date,
        execution.as_deref(),
        hire(ctx, event),
    )
    .await
}

async fn hire(ctx: &Context, event: HireEvent) -> Result<HireOutput, StageError> {
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
    let batch = HireBatch {
        hire_date: date.date(),
        seed: event.seed,
        locale,
    };
    let interval = (date.date(), next.date());
    let count = event.count as u32; // checked above: at most MAX_COUNT

    let mut client = ctx.postgres().await?;
    let tx = client.transaction().await.map_err(StageError::postgres)?;
    let mut copy = StagingCopy::begin(&tx).await?;
    // Generation and cleaning run on a blocking thread while the previous chunk is written:
    // the CPU-bound half and the I/O-bound half overlap. Two chunks in flight bound memory.
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Vec<Employee>>(2);
    let producer =
        tokio::task::spawn_blocking(move || generate_chunks(batch, interval, count, sender));
    let mut written: Result<(), StageError> = Ok(());
    while let Some(chunk) = chunks.recv().await {
        if let Err(err) = copy.write(&chunk).await {
            written = Err(err);
            break;
        }
    }
    drop(chunks);
    let rejects = producer
        .await
        .map_err(|e| StageError::Internal(format!("employee generator panicked: {e}")))?;
    written?;
    let (staged, inserted) = copy.merge(date, seed).await?;
    save_rejects(&tx, date, seed, &rejects).await?;
    tx.commit().await.map_err(StageError::postgres)?;

    let output = HireOutput {
        logical_date: date,
        seed: event.seed,
        locale: locale.to_string(),
        generated: u64::from(count),
        loaded: inserted,
        already_present: staged - inserted,
        rejected: rejects.len() as u64,
    };
    tracing::info!(
        generated = output.generated,
        loaded = output.loaded,
        already_present = output.already_present,
        rejected = output.rejected,
        "employees hired"
    );
    Ok(output)
}

/// Generates and cleans `count` employees in chunks of [`CHUNK`], sending the good ones to
/// the writer and returning the rejects. Stops early when the writer has gone.
fn generate_chunks(
    batch: HireBatch,
    interval: (NaiveDate, NaiveDate),
    count: u32,
    sender: Sender<Vec<Employee>>,
) -> Vec<Reject> {
    let mut rejects = Vec::new();
    let mut start = 0u32;
    while start < count {
        let end = start.saturating_add(CHUNK).min(count);
        let mut chunk = Vec::with_capacity((end - start) as usize);
        for index in start..end {
            match clean_and_validate(batch.employee(index), interval) {
                Ok(employee) => chunk.push(employee),
                Err(reject) => rejects.push(*reject),
            }
        }
        if sender.blocking_send(chunk).is_err() {
            break; // the writer stopped (its error is reported by `hire`)
        }
        start = end;
    }
    rejects
}
