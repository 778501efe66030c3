//! Stage `marketing-plan`: validates a run's size, splits the day into partitions and groups
//! them into generate tasks (the Map's items). Also removes raw partitions a previous, larger
//! run of the same date left beyond the new count, so the day holds exactly this run's data.

use etl_core::{s3, Context, LogicalDate, StageError};
use serde::{Deserialize, Serialize};

use crate::dataset::{partition_of, raw_prefix, MAX_PARTITIONS};

pub const DEFAULT_ROWS: u64 = 500_000;
pub const DEFAULT_PARTITION_ROWS: u32 = 10_000;
pub const DEFAULT_PARTITIONS_PER_TASK: u32 = 5;
pub const DEFAULT_SEED: u64 = 42;
/// 100× the seed's volume: more than that is a typo, not a run.
pub const MAX_ROWS: u64 = 50_000_000;
pub const MAX_PARTITION_ROWS: u32 = 1_000_000;
pub const MAX_PARTITIONS_PER_TASK: u32 = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEvent {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub rows: Option<u64>,
    #[serde(default)]
    pub partition_rows: Option<u32>,
    #[serde(default)]
    pub partitions_per_task: Option<u32>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub execution: Option<String>,
}

/// One Map item: the partitions one `marketing-generate` invocation writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateTask {
    pub logical_date: LogicalDate,
    pub seed: u64,
    /// The day's total rows and partition size: each partition's own row count follows.
    pub rows: u64,
    pub partition_rows: u32,
    pub partitions: Vec<u32>,
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanOutput {
    pub logical_date: LogicalDate,
    pub rows: u64,
    pub partitions: u32,
    pub tasks: Vec<GenerateTask>,
    /// Stale raw partitions removed (left by an earlier run with more partitions).
    pub pruned: usize,
}

/// The validated size of a day's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSize {
    pub rows: u64,
    pub partition_rows: u32,
    pub partitions: u32,
}

impl RunSize {
    pub fn new(rows: u64, partition_rows: u32) -> Result<Self, StageError> {
        if rows == 0 || rows > MAX_ROWS {
            return Err(StageError::invalid_input(format!(
                "rows must be between 1 and {MAX_ROWS}, got {rows}"
            )));
        }
        if partition_rows == 0 || partition_rows > MAX_PARTITION_ROWS {
            return Err(StageError::invalid_input(format!(
                "partition_rows must be between 1 and {MAX_PARTITION_ROWS}, got {partition_rows}"
            )));
        }
        let partitions = rows.div_ceil(u64::from(partition_rows));
        if partitions >= u64::from(MAX_PARTITIONS) {
            return Err(StageError::invalid_input(format!(
                "{rows} rows in partitions of {partition_rows} make {partitions} partitions; \
                 at most {} fit the key format",
                MAX_PARTITIONS - 1
            )));
        }
        Ok(Self {
            rows,
            partition_rows,
            partitions: partitions as u32,
        })
    }

    /// Rows in one partition: full ones, then the remainder in the last.
    pub fn rows_in(&self, partition: u32) -> Result<u32, StageError> {
        if partition >= self.partitions {
            return Err(StageError::invalid_input(format!(
                "partition {partition} is outside 0..{}",
                self.partitions
            )));
        }
        let before = u64::from(partition) * u64::from(self.partition_rows);
        Ok((self.rows - before).min(u64::from(self.partition_rows)) as u32)
    }
}

pub fn plan(event: &PlanEvent) -> Result<(RunSize, Vec<GenerateTask>), StageError> {
    let size = RunSize::new(
        event.rows.unwrap_or(DEFAULT_ROWS),
        event.partition_rows.unwrap_or(DEFAULT_PARTITION_ROWS),
    )?;
    let per_task = event
        .partitions_per_task
        .unwrap_or(DEFAULT_PARTITIONS_PER_TASK);
    if per_task == 0 || per_task > MAX_PARTITIONS_PER_TASK {
        return Err(StageError::invalid_input(format!(
            "partitions_per_task must be between 1 and {MAX_PARTITIONS_PER_TASK}, got {per_task}"
        )));
    }
    let partitions: Vec<u32> = (0..size.partitions).collect();
    let tasks = partitions
        .chunks(per_task as usize)
        .map(|chunk| GenerateTask {
            logical_date: event.logical_date,
            seed: event.seed.unwrap_or(DEFAULT_SEED),
            rows: size.rows,
            partition_rows: size.partition_rows,
            partitions: chunk.to_vec(),
            execution: event.execution.clone(),
        })
        .collect();
    Ok((size, tasks))
}

pub async fn run(ctx: &Context, event: PlanEvent) -> Result<PlanOutput, StageError> {
    let (size, tasks) = plan(&event)?;
    let bucket = &ctx.config.bucket;
    let stale: Vec<String> = s3::list(ctx, bucket, &raw_prefix(event.logical_date))
        .await?
        .into_iter()
        .filter(|entry| partition_of(&entry.key).is_some_and(|p| p >= size.partitions))
        .map(|entry| entry.key)
        .collect();
    let pruned = s3::delete_keys(ctx, bucket, &stale).await?;
    tracing::info!(
        date = %event.logical_date,
        rows = size.rows,
        partitions = size.partitions,
        tasks = tasks.len(),
        pruned,
        "marketing run planned"
    );
    Ok(PlanOutput {
        logical_date: event.logical_date,
        rows: size.rows,
        partitions: size.partitions,
        tasks,
        pruned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(rows: Option<u64>, partition_rows: Option<u32>) -> PlanEvent {
        PlanEvent {
            logical_date: "2026-11-24".parse().unwrap(),
            rows,
            partition_rows,
            partitions_per_task: None,
            seed: None,
            execution: None,
        }
    }

    #[test]
    fn the_seed_volume_is_fifty_partitions_in_ten_tasks() {
        let (size, tasks) = plan(&event(None, None)).unwrap();
        assert_eq!(size.partitions, 50);
        assert_eq!(tasks.len(), 10);
        assert_eq!(tasks[9].partitions, vec![45, 46, 47, 48, 49]);
        let covered: u64 = (0..size.partitions)
            .map(|p| u64::from(size.rows_in(p).unwrap()))
            .sum();
        assert_eq!(covered, 500_000);
    }

    #[test]
    fn the_last_partition_holds_the_remainder() {
        let size = RunSize::new(25_001, 10_000).unwrap();
        assert_eq!(size.partitions, 3);
        assert_eq!(size.rows_in(2).unwrap(), 5_001);
        assert!(size.rows_in(3).is_err());
    }

    #[test]
    fn zero_and_absurd_sizes_are_invalid_input() {
        for (rows, partition_rows) in [
            (Some(0), None),
            (Some(MAX_ROWS + 1), None),
            (None, Some(0)),
            (None, Some(MAX_PARTITION_ROWS + 1)),
            (Some(MAX_ROWS), Some(1)),
        ] {
            let err = plan(&event(rows, partition_rows)).unwrap_err();
            assert_eq!(
                err.kind(),
                etl_core::ErrorKind::InvalidInput,
                "{rows:?} {partition_rows:?}"
            );
        }
    }
}
