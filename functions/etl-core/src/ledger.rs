//! The run ledger (`etl.runs`): one row per (pipeline, stage, logical date, attempt), with
//! status, row counts, duration and error. Stages record themselves through [`tracked`],
//! under the date's lease ([`crate::lease`]); state machines record the pipeline's own
//! outcome with stage [`PIPELINE_STAGE`], which also releases the lease. The backfill
//! planner reads it to find the dates still to run.
//!
//! An attempt is `running`, then `succeeded` or `failed`; or `abandoned` when its process
//! died: superseded by the next attempt of its stage, its lease taken over after expiring,
//! its execution ending the date without it, or found without a valid lease
//! ([`crate::lease::reap`]). The reason is in `error_cause`. A `pipeline` row is `skipped`
//! when an operator gave up on the date ([`skip`]): a date whose latest pipeline run failed
//! is planned again by every run until it succeeds or is skipped ([`failed_dates`]).

use std::future::Future;
use std::str::FromStr;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::lease::{self, Lease};
use crate::logical_date::LogicalDate;
use crate::metrics::{self, StageFigures};

/// The stage name under which a whole pipeline run's outcome is recorded.
pub const PIPELINE_STAGE: &str = "pipeline";

/// Rows a stage read, wrote and rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
}

/// Stage outputs say what they counted.
pub trait Counted {
    fn counts(&self) -> RowCounts;
    /// Bytes the stage wrote, when it knows (a metric, not a ledger column).
    fn bytes(&self) -> Option<u64> {
        None
    }
    /// Requests the stage retried internally, when it retries (a metric, not a ledger column).
    fn retries(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: i64,
    pub pipeline: String,
    pub stage: String,
    pub logical_date: NaiveDate,
    pub attempt: i32,
    pub status: String,
    pub execution: Option<String>,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub error_name: Option<String>,
    pub error_cause: Option<String>,
}

/// Which dates a backfill runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reprocess {
    /// Only dates the pipeline never attempted.
    #[default]
    None,
    /// Dates it never completed: never attempted, or failed.
    Failed,
    /// Every date in the range.
    All,
}

impl FromStr for Reprocess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Reprocess::None),
            "failed" => Ok(Reprocess::Failed),
            "all" => Ok(Reprocess::All),
            other => Err(format!(
                "reprocess must be none, failed or all, not {other:?}"
            )),
        }
    }
}

/// The status of an attempt whose process died.
pub const ABANDONED: &str = "abandoned";

/// The status of a date an operator gave up on (`etl runs skip`): never planned again.
pub const SKIPPED: &str = "skipped";

/// A new attempt, and the older ones of the same stage and date still `running` marked
/// abandoned: the caller holds the date's lease, so no other process can be running them
/// (Step Functions retries a Task only once its previous invocation has ended).
const BEGIN: &str = "
    WITH attempt AS (
        INSERT INTO etl.runs (pipeline, stage, logical_date, attempt, status, execution)
        SELECT $1, $2, $3, COALESCE(MAX(attempt), 0) + 1, 'running', $4
          FROM etl.runs WHERE pipeline = $1 AND stage = $2 AND logical_date = $3
        RETURNING run_id, attempt
    ), superseded AS (
        UPDATE etl.runs r
           SET status = 'abandoned', finished_at = now(),
               error_cause = 'superseded by attempt ' || a.attempt || ' of '
                             || COALESCE('execution ' || $4, 'a direct invocation')
          FROM attempt a
         WHERE r.pipeline = $1 AND r.stage = $2 AND r.logical_date = $3 AND r.status = 'running'
    )
    SELECT run_id, attempt FROM attempt";

/// A run's outcome for a date, in one statement: the `pipeline` row (never seen `running`),
/// the execution's attempts of that date still `running` marked abandoned (the state machine
/// has moved past every Task of the date, so their processes are gone), and the lease
/// released if the execution holds it (a refused execution's failure leaves the holder's).
const RECORD_OUTCOME: &str = "
    WITH outcome AS (
        INSERT INTO etl.runs (pipeline, stage, logical_date, attempt, status, execution,
                              error_name, error_cause, finished_at, duration_ms)
        SELECT $1, 'pipeline', $2, COALESCE(MAX(attempt), 0) + 1, $4, $3, $5, $6, now(), 0
          FROM etl.runs WHERE pipeline = $1 AND stage = 'pipeline' AND logical_date = $2
        RETURNING run_id
    ), leftovers AS (
        UPDATE etl.runs
           SET status = 'abandoned', finished_at = now(),
               error_cause = 'execution ' || $3 || ' ended the date while this attempt was still running'
         WHERE pipeline = $1 AND logical_date = $2 AND status = 'running' AND execution = $3
    ), released AS (
        UPDATE etl.leases SET released_at = now(), expires_at = now()
         WHERE pipeline = $1 AND logical_date = $2 AND owner = $3 AND released_at IS NULL
    )
    SELECT run_id FROM outcome";

/// Overwrites `abandoned` too: a process declared dead that finishes after all (a Parallel
/// branch Step Functions stopped waiting for, a stage outliving its lease) knows better.
/// Returns the status it replaced.
///
/// A lease held for this attempt only (`$9`, its owner: a direct invocation's, or work under
/// a [`lease::work_label`]) is given back in the same statement. Given back by a statement of
/// its own, an invocation ended in between (a Lambda timeout, a killed connection) would
/// leave the attempt finished and the lease held, and nothing would come back for it: an
/// execution's `record-run` releases only the execution's own lease, and the date of a
/// refreshed snapshot is done (its snapshot current), so no later run takes it over.
const FINISH: &str = "
    WITH finished AS (
        UPDATE etl.runs r
           SET status = $2, rows_in = $3, rows_out = $4, rows_rejected = $5,
               error_name = $6, error_cause = $7, finished_at = now(), duration_ms = $8
          FROM (SELECT run_id, status FROM etl.runs WHERE run_id = $1 FOR UPDATE) before
         WHERE r.run_id = before.run_id
        RETURNING before.status, r.pipeline, r.logical_date
    ), released AS (
        UPDATE etl.leases l SET released_at = now(), expires_at = now()
          FROM finished f
         WHERE l.pipeline = f.pipeline AND l.logical_date = f.logical_date
           AND l.owner = $9::text AND l.released_at IS NULL
    )
    SELECT status FROM finished";

/// Starts a ledger row, returning its id and attempt number; retried once if a concurrent
/// attempt took the same number.
async fn begin(
    ctx: &Context,
    pipeline: &str,
    stage: &str,
    date: LogicalDate,
    execution: Option<&str>,
) -> Result<(i64, i32), StageError> {
    let client = ctx.postgres().await?;
    let mut last_error = None;
    for _ in 0..3 {
        match client
            .query_one(BEGIN, &[&pipeline, &stage, &date.date(), &execution])
            .await
        {
            Ok(row) => return Ok((row.get(0), row.get(1))),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                last_error = Some(e);
            }
            Err(e) => return Err(StageError::postgres(e)),
        }
    }
    Err(last_error.map_or_else(
        || StageError::Internal("ledger begin failed".into()),
        StageError::postgres,
    ))
}

/// [`FINISH`]: closes the attempt's row, and gives back `lease` with it when it was taken for
/// this attempt only.
async fn finish(
    ctx: &Context,
    run_id: i64,
    lease: &Lease,
    outcome: Result<RowCounts, (&str, String)>,
    duration_ms: i64,
) -> Result<(), StageError> {
    let client = ctx.postgres().await?;
    let own_lease = lease.is_direct().then_some(lease.owner.as_str());
    let (status, counts, error_name, cause) = match outcome {
        Ok(counts) => ("succeeded", counts, None, None),
        Err((name, cause)) => (
            "failed",
            RowCounts::default(),
            Some(name.to_string()),
            Some(cause),
        ),
    };
    let before = client
        .query_opt(
            FINISH,
            &[
                &run_id,
                &status,
                &counts.rows_in,
                &counts.rows_out,
                &counts.rows_rejected,
                &error_name,
                &cause,
                &duration_ms,
                &own_lease,
            ],
        )
        .await
        .map_err(StageError::postgres)?;
    if let Some(before) = before.map(|row| row.get::<_, String>(0)) {
        if before == ABANDONED {
            tracing::warn!(
                run_id,
                status,
                "an attempt marked abandoned finished after all"
            );
        }
    }
    Ok(())
}

/// Runs a stage's work between two ledger writes, under the date's lease: taken or renewed
/// first (refused with a `Retryable` [`crate::error::LeaseError`] while another execution
/// holds it), renewed while the work runs, and given back at the end, by the write that
/// closes the attempt's row, only when the stage was invoked outside an execution. A ledger
/// write that fails after the work succeeded is logged, not raised: the work is done and
/// idempotent.
pub async fn tracked<O, F>(
    ctx: &Context,
    pipeline: &str,
    stage: &str,
    date: LogicalDate,
    execution: Option<&str>,
    work: F,
) -> Result<O, StageError>
where
    O: Counted,
    F: Future<Output = Result<O, StageError>>,
{
    let lease = lease::acquire(ctx, pipeline, date, execution).await?;
    attempt(ctx, &lease, stage, work).await
}

/// [`tracked`] for work an execution does on a date other than its own, under a
/// [`lease::work_label`]: the lease is held for this work only, as a direct invocation's.
pub async fn tracked_for_work<O, F>(
    ctx: &Context,
    pipeline: &str,
    stage: &str,
    date: LogicalDate,
    label: &str,
    work: F,
) -> Result<O, StageError>
where
    O: Counted,
    F: Future<Output = Result<O, StageError>>,
{
    let lease = lease::acquire_for_work(ctx, pipeline, date, label).await?;
    attempt(ctx, &lease, stage, work).await
}

/// One ledger row around the work. A direct lease its closing write could not give back (the
/// row never begun, or the write failed) is given back on its own, as best it can be.
async fn attempt<O, F>(ctx: &Context, lease: &Lease, stage: &str, work: F) -> Result<O, StageError>
where
    O: Counted,
    F: Future<Output = Result<O, StageError>>,
{
    let (pipeline, execution) = (lease.pipeline.as_str(), lease.execution.as_deref());
    let (run_id, attempt) = match begin(ctx, pipeline, stage, lease.date, execution).await {
        Ok(begun) => begun,
        Err(err) => {
            lease::release_if_direct(ctx, lease).await;
            return Err(err);
        }
    };
    let started = Instant::now();
    let result = lease::hold(ctx, lease, work).await;
    let duration_ms = started.elapsed().as_millis() as i64;
    metrics::record_stage(figures(pipeline, attempt, result.as_ref().ok()));
    let outcome = match &result {
        Ok(output) => Ok(output.counts()),
        Err(err) => Err((err.kind().as_str(), err.to_string())),
    };
    if let Err(ledger_error) = finish(ctx, run_id, lease, outcome, duration_ms).await {
        tracing::error!(run_id, error = %ledger_error, "could not finish the ledger row");
        lease::release_if_direct(ctx, lease).await;
    }
    result
}

/// A stage's figures for its metrics. Rejected rows are a warning, never a silent success:
/// logged here and alarmed on through the `RowsRejected` metric.
fn figures<O: Counted>(pipeline: &str, attempt: i32, output: Option<&O>) -> StageFigures {
    let mut figures = StageFigures {
        pipeline: pipeline.to_string(),
        attempt: Some(attempt),
        ..StageFigures::default()
    };
    if let Some(output) = output {
        let counts = output.counts();
        if let Some(rejected) = counts.rows_rejected.filter(|&n| n > 0) {
            tracing::warn!(rows_rejected = rejected, "the stage rejected rows");
        }
        figures.rows_in = counts.rows_in;
        figures.rows_out = counts.rows_out;
        figures.rows_rejected = counts.rows_rejected;
        figures.bytes = output.bytes();
        figures.retries = output.retries();
    }
    figures
}

/// Records a pipeline run's outcome for a date (what the state machines call at the end,
/// or from their Catch), ends the execution's leftover attempts of the date and releases its
/// lease (see [`RECORD_OUTCOME`]). Retried a few times if a concurrent record took the same
/// attempt number.
pub async fn record_outcome(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    execution: Option<&str>,
    failure: Option<(&str, &str)>,
) -> Result<i64, StageError> {
    let status = if failure.is_some() {
        "failed"
    } else {
        "succeeded"
    };
    let (name, cause) = failure.unzip();
    write_outcome(ctx, pipeline, date, execution, status, name, cause).await
}

/// An operator gives up on a date (`etl runs skip`): a `pipeline` row with status
/// [`SKIPPED`] and the reason as its cause. The planner no longer retries the date.
pub async fn skip(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    reason: &str,
) -> Result<i64, StageError> {
    write_outcome(ctx, pipeline, date, None, SKIPPED, None, Some(reason)).await
}

/// One [`RECORD_OUTCOME`] statement.
async fn write_outcome(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    execution: Option<&str>,
    status: &str,
    name: Option<&str>,
    cause: Option<&str>,
) -> Result<i64, StageError> {
    let client = ctx.postgres().await?;
    let mut last_error = None;
    for _ in 0..3 {
        match client
            .query_one(
                RECORD_OUTCOME,
                &[&pipeline, &date.date(), &execution, &status, &name, &cause],
            )
            .await
        {
            Ok(row) => return Ok(row.get(0)),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                last_error = Some(e);
            }
            Err(e) => return Err(StageError::postgres(e)),
        }
    }
    Err(last_error.map_or_else(
        || StageError::Internal("recording the outcome failed".into()),
        StageError::postgres,
    ))
}

/// Ledger rows, newest first.
pub async fn list(
    ctx: &Context,
    pipeline: Option<&str>,
    since: Option<LogicalDate>,
    limit: i64,
) -> Result<Vec<RunRecord>, StageError> {
    let client = ctx.postgres().await?;
    let since = since.map(LogicalDate::date);
    let rows = client
        .query(
            "SELECT run_id, pipeline, stage, logical_date, attempt, status, execution,
                    rows_in, rows_out, rows_rejected, started_at, duration_ms, error_name, error_cause
               FROM etl.runs
              WHERE ($1::text IS NULL OR pipeline = $1) AND ($2::date IS NULL OR logical_date >= $2)
              ORDER BY run_id DESC
              LIMIT $3",
            &[&pipeline, &since, &limit],
        )
        .await
        .map_err(StageError::postgres)?;
    Ok(rows
        .iter()
        .map(|r| RunRecord {
            run_id: r.get(0),
            pipeline: r.get(1),
            stage: r.get(2),
            logical_date: r.get(3),
            attempt: r.get(4),
            status: r.get(5),
            execution: r.get(6),
            rows_in: r.get(7),
            rows_out: r.get(8),
            rows_rejected: r.get(9),
            started_at: r.get(10),
            duration_ms: r.get(11),
            error_name: r.get(12),
            error_cause: r.get(13),
        })
        .collect())
}

/// The dates in `[from, to]` a backfill should run, oldest first.
pub async fn dates_to_run(
    ctx: &Context,
    pipeline: &str,
    from: LogicalDate,
    to: LogicalDate,
    reprocess: Reprocess,
) -> Result<Vec<LogicalDate>, StageError> {
    let client = ctx.postgres().await?;
    let rows = client
        .query(
            "SELECT d::date
               FROM generate_series($2::date, $3::date, interval '1 day') AS d
              WHERE $4 = 'all'
                 OR ($4 = 'failed' AND NOT EXISTS (
                        SELECT 1 FROM etl.runs r
                         WHERE r.pipeline = $1 AND r.stage = 'pipeline'
                           AND r.logical_date = d::date AND r.status IN ('succeeded', 'skipped')))
                 OR ($4 = 'none' AND NOT EXISTS (
                        SELECT 1 FROM etl.runs r
                         WHERE r.pipeline = $1 AND r.stage = 'pipeline' AND r.logical_date = d::date))
              ORDER BY 1",
            &[&pipeline, &from.date(), &to.date(), &reprocess_name(reprocess)],
        )
        .await
        .map_err(StageError::postgres)?;
    rows.iter()
        .map(|r| LogicalDate::new(r.get(0)).map_err(|e| StageError::Internal(e.to_string())))
        .collect()
}

/// The dates before `before` whose latest pipeline run failed and that never succeeded,
/// however old, oldest first: a failed date stays planned until it succeeds or an operator
/// skips it. (A date that succeeded once is not run again because a second execution of it,
/// refused its lease, recorded a failure after the success.)
pub async fn failed_dates(
    ctx: &Context,
    pipeline: &str,
    before: LogicalDate,
) -> Result<Vec<LogicalDate>, StageError> {
    let client = ctx.postgres().await?;
    let rows = client
        .query(
            "SELECT logical_date
               FROM (SELECT DISTINCT ON (logical_date) logical_date, status
                       FROM etl.runs
                      WHERE pipeline = $1 AND stage = 'pipeline' AND logical_date < $2
                      ORDER BY logical_date, attempt DESC) latest
              WHERE status = 'failed'
                AND NOT EXISTS (SELECT 1 FROM etl.runs r
                                 WHERE r.pipeline = $1 AND r.stage = 'pipeline'
                                   AND r.logical_date = latest.logical_date
                                   AND r.status = 'succeeded')
              ORDER BY 1",
            &[&pipeline, &before.date()],
        )
        .await
        .map_err(StageError::postgres)?;
    rows.iter()
        .map(|r| LogicalDate::new(r.get(0)).map_err(|e| StageError::Internal(e.to_string())))
        .collect()
}

/// The most recent date the pipeline completed, if any.
pub async fn last_success(
    ctx: &Context,
    pipeline: &str,
) -> Result<Option<LogicalDate>, StageError> {
    let client = ctx.postgres().await?;
    let row = client
        .query_one(
            "SELECT max(logical_date) FROM etl.runs WHERE pipeline = $1 AND stage = 'pipeline' AND status = 'succeeded'",
            &[&pipeline],
        )
        .await
        .map_err(StageError::postgres)?;
    let date: Option<NaiveDate> = row.get(0);
    date.map(|d| LogicalDate::new(d).map_err(|e| StageError::Internal(e.to_string())))
        .transpose()
}

fn reprocess_name(reprocess: Reprocess) -> &'static str {
    match reprocess {
        Reprocess::None => "none",
        Reprocess::Failed => "failed",
        Reprocess::All => "all",
    }
}
