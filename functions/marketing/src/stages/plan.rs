//! Stage `marketing-plan`: validates a run's size, splits the day into partitions and groups
//! them into generate tasks (the Map's items). Also removes raw partitions a previous, larger
//! run of the same date left beyond the new count, so the day holds exactly this run's data.

use etl_core::{lease, s3, Context, LogicalDate, StageError};
use serde::{Deserialize, Serialize};

use crate::dataset::{partition_of, raw_prefix, MAX_PARTITIONS};

pub const DEFAULT_ROWS: u64 = 500_000;
pub const DEFAULT_PARTITION_ROWS: u32 = 10_000;
pub const DEFAULT_PARTITIONS_PER_TASK: u32 = 5;
pub const DEFAULT_SEED: u64 = 42;
/// 20× the seed's volume. unify must read it all inside its 600 s timeout at 1024 MB
/// (0.58 vCPU): 5M rows took 7.3 s of its CPU (docs/pipelines.md, Maximums), so 10M is
/// about 25 s on Lambda's share plus S3 transfer; report holds the day's Parquet, ≈ 1.6 GiB
/// at 10M, inside its 2048 MB.
pub const MAX_ROWS: u64 = 10_000_000;
/// Map items one execution can carry: each adds about 8 events to the execution history,
/// which Step Functions caps at 25,000 events.
pub const MAX_GENERATE_TASKS: usize = 1_000;
/// The plan's output travels in the execution's state, capped at 256 KiB; this leaves room
/// for the rest of the state.
pub const MAX_PLAN_BYTES: usize = 192 * 1024;
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
    let tasks: Vec<GenerateTask> = partitions
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
    check_fits_one_execution(&tasks)?;
    Ok((size, tasks))
}

/// Refuses, up front, a plan whose Map would break Step Functions' limits at run time.
fn check_fits_one_execution(tasks: &[GenerateTask]) -> Result<(), StageError> {
    if tasks.len() > MAX_GENERATE_TASKS {
        return Err(StageError::invalid_input(format!(
            "{} generate tasks: at most {MAX_GENERATE_TASKS} fit one execution's history; \
             raise partitions_per_task or partition_rows",
            tasks.len()
        )));
    }
    let bytes = serde_json::to_vec(tasks)
        .map_err(|e| StageError::invalid_input(format!("the plan does not serialise: {e}")))?
        .len();
    if bytes > MAX_PLAN_BYTES {
        return Err(StageError::invalid_input(format!(
            "the plan is {bytes} bytes: at most {MAX_PLAN_BYTES} fit the execution's 256 KiB \
             state; use fewer, larger partitions"
        )));
    }
    Ok(())
}

/// The first stage of a marketing run for its date, so it takes the date's lease: the
/// pruning below must not race another execution's generate tasks.
pub async fn run(ctx: &Context, event: PlanEvent) -> Result<PlanOutput, StageError> {
    let (size, tasks) = plan(&event)?;
    lease::with_lease(
        ctx,
        "marketing",
        event.logical_date,
        event.execution.as_deref(),
        prune(ctx, &event, size, tasks),
    )
    .await
}

/// Removes the raw partitions beyond this run's count.
async fn prune(
    ctx: &Context,
    event: &PlanEvent,
    size: RunSize,
    tasks: Vec<GenerateTask>,
) -> Result<PlanOutput, StageError> {
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
    fn a_plan_beyond_step_functions_limits_is_refused_up_front() {
        // Accepted before the limits were derived from the services: 50M rows made 1,000
        // items but a 1.7 MB state at 1,000-row partitions; 10,000 items broke the history.
        let mut too_many_items = event(Some(10_000_000), Some(1_000));
        too_many_items.partitions_per_task = Some(5);
        let err = plan(&too_many_items).unwrap_err();
        assert_eq!(err.kind(), etl_core::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("2000 generate tasks"), "{err}");

        let mut too_big_a_state = event(Some(9_999_900), Some(100));
        too_big_a_state.partitions_per_task = Some(100);
        let err = plan(&too_big_a_state).unwrap_err();
        assert_eq!(err.kind(), etl_core::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("256 KiB"), "{err}");

        let old_maximum = plan(&event(Some(50_000_000), None)).unwrap_err();
        assert_eq!(old_maximum.kind(), etl_core::ErrorKind::InvalidInput);

        let (_, largest) = plan(&event(Some(MAX_ROWS), None)).unwrap();
        let bytes = serde_json::to_vec(&largest).unwrap().len();
        assert!(largest.len() <= MAX_GENERATE_TASKS && bytes <= MAX_PLAN_BYTES);
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
