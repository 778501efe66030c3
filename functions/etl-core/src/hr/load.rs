//! Loading a hire batch — the rows of one (logical date, seed) — as a unit, in the caller's
//! transaction: lock the batch, delete whatever an earlier run of it left, binary COPY the
//! new rows straight into `hr.employees`, replace its rejects. A re-run therefore ends with
//! exactly the rows a first run makes (it adds nothing), a connection lost mid-load rolls all
//! of it back, and no row is compared with another: the work is one DELETE and one COPY
//! (docs/pipelines.md § Loading a hire batch explains the choice and its cost on RDS).
//!
//! `employee_id` is what `hr-sync` uses as the search document's `_id` and what `hr-export`
//! orders by, so a batch loaded again must get the same ids: each batch owns blocks of
//! [`ID_BLOCK`] ids, registered in `hr.hire_batches` (migrations 6 and 8) when a load first
//! needs them and kept from then on, and row `i` of the batch is id `i mod ID_BLOCK` of its
//! block `i / ID_BLOCK` ([`IdBlocks`]). A batch loaded before migration 6 has identity-assigned ids
//! that no formula reproduces; it keeps the old path (COPY into a staging table, then
//! `INSERT … ON CONFLICT DO NOTHING`), which leaves its rows and ids as they are.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt;
use serde_json::json;
use tokio_postgres::{CopyInSink, Transaction};

use super::binary_copy::{COLUMNS, HEADER, TRAILER};
use super::chunks::Chunk;
use super::clean::Reject;
use crate::error::StageError;
use crate::logical_date::LogicalDate;

/// Ids per block: the spacing of the bases migrations 6 and 8 allocate (2^40 + n · 2^21,
/// above every identity value and under 2^53, so JSON readers such as Kibana see them
/// exactly). A batch of more rows owns several blocks.
pub const ID_BLOCK: u32 = 1 << 21;

/// The ids of a block batch's rows: row `i` is `bases[i / rows_per_block] + i % rows_per_block`.
/// Cloned into every generator thread, hence the shared slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdBlocks {
    bases: Arc<[i64]>,
    rows_per_block: NonZeroU32,
}

impl IdBlocks {
    /// Blocks `count` rows need, `rows_per_block` to a block.
    pub fn needed(count: u32, rows_per_block: NonZeroU32) -> u32 {
        count.div_ceil(rows_per_block.get())
    }

    /// `bases[k]` is block `k`'s first id; together they must hold `count` rows.
    pub fn new(
        bases: Vec<i64>,
        rows_per_block: NonZeroU32,
        count: u32,
    ) -> Result<Self, StageError> {
        if rows_per_block.get() > ID_BLOCK {
            return Err(StageError::Internal(format!(
                "{rows_per_block} rows per id block is more than a block's {ID_BLOCK} ids"
            )));
        }
        let needed = Self::needed(count, rows_per_block);
        if bases.len() < needed as usize {
            return Err(StageError::Internal(format!(
                "{count} rows need {needed} id blocks, the batch has {}",
                bases.len()
            )));
        }
        Ok(Self {
            bases: bases.into(),
            rows_per_block,
        })
    }

    /// Ids nobody keeps (a legacy batch's staging rows): the index itself.
    pub fn unused() -> Self {
        Self {
            bases: Arc::new([0]),
            rows_per_block: NonZeroU32::MAX,
        }
    }

    /// The id of row `index`; [`IdBlocks::new`] checked that every row of the batch has one.
    pub fn id(&self, index: u32) -> i64 {
        let per_block = self.rows_per_block.get();
        self.bases[(index / per_block) as usize] + i64::from(index % per_block)
    }
}

/// How the rows of a batch get their `employee_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchIds {
    /// `employee_id = base + batch_index`: the batch is replaced as a unit.
    Block(i64),
    /// Loaded before migration 6 with identity ids: merged, never replaced.
    Legacy,
}

const LOCK_BATCH: &str = "
    SELECT id_base FROM hr.hire_batches WHERE logical_date = $1 AND batch_seed = $2 FOR UPDATE";
const HAS_ROWS: &str = "
    SELECT EXISTS (SELECT 1 FROM hr.employees WHERE logical_date = $1 AND batch_seed = $2)";
/// `id_base` from the column default: the next block.
const REGISTER_BLOCK: &str = "
    INSERT INTO hr.hire_batches (logical_date, batch_seed) VALUES ($1, $2)
    ON CONFLICT DO NOTHING RETURNING id_base";
const REGISTER_LEGACY: &str = "
    INSERT INTO hr.hire_batches (logical_date, batch_seed, id_base) VALUES ($1, $2, NULL)
    ON CONFLICT DO NOTHING RETURNING id_base";

/// Registers the batch on its first load and locks its row until the transaction ends: a
/// concurrent load of the same batch waits here, then replaces what this one committed.
pub async fn claim_batch(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
) -> Result<BatchIds, StageError> {
    let ids = |id_base: Option<i64>| id_base.map_or(BatchIds::Legacy, BatchIds::Block);
    // An INSERT that finds the row registered meanwhile by another load goes back to locking
    // it: that load has committed by then (the INSERT waited for it), so the second round
    // finds the row; the third only guards against a surprise.
    for _ in 0..3 {
        if let Some(row) = tx
            .query_opt(LOCK_BATCH, &[&date.date(), &seed])
            .await
            .map_err(StageError::postgres)?
        {
            return Ok(ids(row.get(0)));
        }
        // Unregistered rows were loaded before migration 6 (or by a build from before it).
        let legacy: bool = tx
            .query_one(HAS_ROWS, &[&date.date(), &seed])
            .await
            .map_err(StageError::postgres)?
            .get(0);
        let register = if legacy {
            REGISTER_LEGACY
        } else {
            REGISTER_BLOCK
        };
        if let Some(row) = tx
            .query_opt(register, &[&date.date(), &seed])
            .await
            .map_err(StageError::postgres)?
        {
            return Ok(ids(row.get(0)));
        }
    }
    Err(StageError::Internal(format!(
        "could not register hire batch ({date}, seed {seed})"
    )))
}

/// Block 0 is `id_base` (migration 6), blocks 1.. are `more_id_bases` (migration 8, a
/// PostgreSQL array, so `more_id_bases[k]` is block `k`). The blocks missing below `$3` are
/// drawn now; existing ones never change.
const RESERVE_BLOCKS: &str = "
    UPDATE hr.hire_batches
       SET more_id_bases = more_id_bases || ARRAY(
               SELECT hr.next_id_block()
                 FROM generate_series(cardinality(more_id_bases) + 1, $3::integer - 1))
     WHERE logical_date = $1 AND batch_seed = $2 AND id_base IS NOT NULL
    RETURNING id_base, more_id_bases";

/// The first id of each of the batch's first `blocks` blocks, reserving the ones it does not
/// have yet. Call after [`claim_batch`] returned a block batch (its row is locked, so two
/// loads never draw blocks for the same batch at once).
pub async fn reserve_id_blocks(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    blocks: u32,
) -> Result<Vec<i64>, StageError> {
    let blocks = i32::try_from(blocks)
        .map_err(|_| StageError::Internal(format!("{blocks} id blocks exceed integer")))?;
    let row = tx
        .query_opt(RESERVE_BLOCKS, &[&date.date(), &seed, &blocks])
        .await
        .map_err(StageError::postgres)?
        .ok_or_else(|| {
            StageError::Internal(format!(
                "hire batch ({date}, seed {seed}) has no id block to add to"
            ))
        })?;
    let mut bases = vec![row.get::<_, i64>(0)];
    bases.extend(row.get::<_, Vec<i64>>(1));
    Ok(bases)
}

/// What deleting an earlier load of the batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Rows this load writes again (index below its count).
    pub reproduced: u64,
    /// Rows beyond this load's count: an earlier run asked for more.
    pub dropped: u64,
}

const DELETE_BATCH: &str = "
    WITH gone AS (
        DELETE FROM hr.employees WHERE logical_date = $1 AND batch_seed = $2
        RETURNING batch_index)
    SELECT count(*) FILTER (WHERE batch_index < $3), count(*) FILTER (WHERE batch_index >= $3)
      FROM gone";

/// Deletes the batch's rows (nothing on a first load), before its new rows are copied in.
pub async fn delete_batch(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    count: u32,
) -> Result<Replaced, StageError> {
    let count = i32::try_from(count)
        .map_err(|_| StageError::Internal(format!("batch count {count} exceeds integer")))?;
    let row = tx
        .query_one(DELETE_BATCH, &[&date.date(), &seed, &count])
        .await
        .map_err(StageError::postgres)?;
    Ok(Replaced {
        reproduced: row.get::<_, i64>(0) as u64,
        dropped: row.get::<_, i64>(1) as u64,
    })
}

/// Where a COPY of employees goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyTarget {
    /// Straight into `hr.employees` (a block batch).
    Employees,
    /// Into a session table, merged afterwards (a legacy batch).
    Staging,
}

const CREATE_STAGING: &str = "
    CREATE TEMP TABLE hire_staging (
        employee_id  bigint        NOT NULL,
        logical_date date          NOT NULL,
        batch_seed   bigint        NOT NULL,
        batch_index  integer       NOT NULL,
        full_name    text          NOT NULL,
        job_title    text          NOT NULL,
        department   text          NOT NULL,
        email        text          NOT NULL,
        salary       numeric(12,2) NOT NULL,
        hire_date    date          NOT NULL
    ) ON COMMIT DROP";

/// Legacy batches only: the rows missing from the batch get identity ids, the rest stay.
const MERGE_STAGING: &str = "
    INSERT INTO hr.employees
        (logical_date, batch_seed, batch_index, full_name, job_title, department, email, salary, hire_date)
    SELECT logical_date, batch_seed, batch_index, full_name, job_title, department, email, salary, hire_date
      FROM hire_staging
     ORDER BY batch_index
    ON CONFLICT ON CONSTRAINT employees_natural_key DO NOTHING";

/// A binary COPY in progress: header sent, chunks of tuples to follow.
pub struct CopyIn {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    rows: u64,
}

impl CopyIn {
    pub async fn begin(tx: &Transaction<'_>, target: CopyTarget) -> Result<Self, StageError> {
        let table = match target {
            CopyTarget::Employees => "hr.employees",
            CopyTarget::Staging => {
                tx.batch_execute(CREATE_STAGING)
                    .await
                    .map_err(StageError::postgres)?;
                "hire_staging"
            }
        };
        let statement = format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)");
        let sink = tx
            .copy_in(statement.as_str())
            .await
            .map_err(StageError::postgres)?;
        let mut copy = Self {
            sink: Box::pin(sink),
            rows: 0,
        };
        copy.send(Bytes::from_static(HEADER)).await?;
        Ok(copy)
    }

    async fn send(&mut self, bytes: Bytes) -> Result<(), StageError> {
        self.sink
            .as_mut()
            .send(bytes)
            .await
            .map_err(StageError::postgres)
    }

    pub async fn write(&mut self, chunk: Chunk) -> Result<(), StageError> {
        self.send(chunk.bytes).await?;
        self.rows += chunk.rows;
        Ok(())
    }

    /// Ends the COPY; returns the rows the server stored.
    pub async fn finish(mut self) -> Result<u64, StageError> {
        self.send(Bytes::from_static(TRAILER)).await?;
        let stored = self
            .sink
            .as_mut()
            .finish()
            .await
            .map_err(StageError::postgres)?;
        if stored != self.rows {
            return Err(StageError::Internal(format!(
                "COPY reported {stored} rows, {} were sent",
                self.rows
            )));
        }
        Ok(stored)
    }
}

/// Legacy batches: inserts the staged rows the batch does not have; returns how many.
pub async fn merge_staging(tx: &Transaction<'_>) -> Result<u64, StageError> {
    tx.execute(MERGE_STAGING, &[])
        .await
        .map_err(StageError::postgres)
}

const DELETE_REJECTS: &str =
    "DELETE FROM hr.employee_rejects WHERE logical_date = $1 AND batch_seed = $2";

const SAVE_REJECTS: &str = "
    INSERT INTO hr.employee_rejects (logical_date, batch_seed, batch_index, record, reason)
    SELECT $1, $2, r.batch_index, r.record, r.reason
      FROM UNNEST($3::integer[], $4::jsonb[], $5::text[]) AS r(batch_index, record, reason)";

/// Replaces the batch's rejected rows, with their reasons, by this load's.
pub async fn replace_rejects(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    rejects: &[Reject],
) -> Result<(), StageError> {
    tx.execute(DELETE_REJECTS, &[&date.date(), &seed])
        .await
        .map_err(StageError::postgres)?;
    if rejects.is_empty() {
        return Ok(());
    }
    let indexes: Vec<i32> = rejects.iter().map(|r| r.raw.index).collect();
    let records: Vec<serde_json::Value> = rejects.iter().map(|r| json!(r.raw)).collect();
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    tx.execute(
        SAVE_REJECTS,
        &[&date.date(), &seed, &indexes, &records, &reasons],
    )
    .await
    .map_err(StageError::postgres)?;
    Ok(())
}

/// What the batch's latest load did, kept beside its id block.
#[derive(Debug, Clone)]
pub struct BatchRecord<'a> {
    pub locale: &'a str,
    pub requested: u32,
    pub loaded: u64,
    pub rejected: u64,
}

const RECORD_BATCH: &str = "
    UPDATE hr.hire_batches
       SET locale = $3, rows_requested = $4, rows_loaded = $5, rows_rejected = $6, loaded_at = now()
     WHERE logical_date = $1 AND batch_seed = $2";

pub async fn record_batch(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    record: &BatchRecord<'_>,
) -> Result<(), StageError> {
    let requested = i64::from(record.requested);
    let (loaded, rejected) = (record.loaded as i64, record.rejected as i64);
    tx.execute(
        RECORD_BATCH,
        &[
            &date.date(),
            &seed,
            &record.locale,
            &requested,
            &loaded,
            &rejected,
        ],
    )
    .await
    .map_err(StageError::postgres)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: NonZeroU32 = match NonZeroU32::new(ID_BLOCK) {
        Some(rows) => rows,
        None => panic!("ID_BLOCK is not zero"),
    };

    #[test]
    fn rows_past_a_block_take_ids_from_the_next_one() {
        let base = |n: i64| (1_i64 << 40) + n * i64::from(ID_BLOCK);
        // Blocks need not be adjacent nor in order: other batches draw in between.
        let bases = vec![base(0), base(7), base(3)];
        let count = 2 * ID_BLOCK + 5;
        let ids = IdBlocks::new(bases, FULL, count).unwrap();
        assert_eq!(ids.id(0), base(0));
        assert_eq!(ids.id(ID_BLOCK - 1), base(0) + i64::from(ID_BLOCK) - 1);
        assert_eq!(ids.id(ID_BLOCK), base(7));
        assert_eq!(ids.id(2 * ID_BLOCK + 4), base(3) + 4);
        assert_eq!(IdBlocks::needed(count, FULL), 3);
        assert_eq!(IdBlocks::needed(ID_BLOCK, FULL), 1);
        assert_eq!(IdBlocks::needed(10_000_000, FULL), 5);
    }

    #[test]
    fn too_few_blocks_or_blocks_larger_than_their_ids_are_refused() {
        let short = IdBlocks::new(vec![1 << 40], FULL, ID_BLOCK + 1).unwrap_err();
        assert!(short.to_string().contains("need 2 id blocks"), "{short}");
        let wide = NonZeroU32::new(ID_BLOCK + 1).unwrap();
        let err = IdBlocks::new(vec![1 << 40], wide, 1).unwrap_err();
        assert!(err.to_string().contains("rows per id block"), "{err}");
    }
}
