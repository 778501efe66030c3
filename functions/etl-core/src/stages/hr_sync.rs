//! Stage `hr-sync`: copies employees hired in one data interval (hire date in
//! `[date, date + 1)`), or all of them with `full`, from PostgreSQL into the
//! `empleados_search` index. Documents have `_id` = employee id, so a re-run overwrites
//! rather than duplicates.
//!
//! One invocation indexes at most `max_docs` employees, in employee-id order, and says
//! whether more remain and after which id to continue: the `hr` state machine invokes the
//! stage again with that progress until none remain, so a day of any size is synced by
//! invocations that each end well inside Lambda's 900 s (docs/pipelines.md § Maximums).
//! It also stops on time: when the invocation's deadline ([`Context::deadline`]) is nearer
//! than [`DEFAULT_STOP_MARGIN`], it takes no more rows, drains the requests in flight and
//! answers `more` with the last id it sent, so a cluster slower than `max_docs` assumes
//! still makes progress instead of timing out from the same cursor again and again.

use std::time::{Duration, Instant};

use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::clients::Context;
use crate::error::StageError;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;
use crate::search::bulk::BULK_REQUEST_TIMEOUT;
use crate::search::index::EMPLOYEES;
use crate::search::{ensure_index, refresh, BulkConfig, BulkSink, ItemFailure};

/// Documents one invocation indexes at most, unless the event says otherwise. The sync is
/// bound by the cluster's indexing rate, not by this client (docs/pipelines.md § Maximums):
/// at the slowest rate the local stand-in sustained on a quiet machine, 1,300 docs/s, 700,000
/// documents take about 540 s, 60 % of Lambda's 900 s; the rest is for a slower cluster and
/// retries. Against a slower cluster the stage stops on time ([`DEFAULT_STOP_MARGIN`]) and
/// the loop continues; a smaller `max_docs` (a run's `params.sync_max_docs`) also works.
pub const DEFAULT_MAX_DOCS_PER_INVOCATION: u64 = 700_000;

/// Time before the deadline at which the stage takes no more rows. What remains to do then
/// is draining the `_bulk` requests in flight, sent together, so each ends within one
/// [`BULK_REQUEST_TIMEOUT`] (120 s) or fails the invocation, and the last partial request
/// goes out with them; then the refresh and the answer, which the other 30 s cover. 10 %
/// of 900 s (90 s) would not cover one slow request. A shorter `Timeout` (a local run's
/// `--timeout-scale`) gets half its time as margin instead (see [`stop_margin`]).
pub const DEFAULT_STOP_MARGIN: Duration = Duration::from_secs(BULK_REQUEST_TIMEOUT.as_secs() + 30);

#[derive(Debug, Clone, Deserialize)]
pub struct SyncEvent {
    pub logical_date: LogicalDate,
    /// Everything, not just the logical date's interval (a first load or a rebuild).
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub execution: Option<String>,
    /// At most this many documents in this invocation ([`DEFAULT_MAX_DOCS_PER_INVOCATION`]
    /// when absent). `sync_max_docs` in a run's `params` reaches the stage as this.
    #[serde(default, alias = "sync_max_docs")]
    pub max_docs: Option<u64>,
    /// Stop taking rows this many milliseconds before the invocation's deadline, instead of
    /// [`stop_margin`]'s (tests make an invocation stop on time with it; a run's
    /// `params.sync_stop_margin_ms` reaches the stage as this).
    #[serde(default, alias = "sync_stop_margin_ms")]
    pub stop_margin_ms: Option<u64>,
    /// Continue after this employee id (what an earlier invocation's `progress` said).
    #[serde(default)]
    pub after_employee_id: Option<i64>,
    /// The previous invocation's progress, as the state machine's loop hands it back: its
    /// cursor wins over `after_employee_id`, and its totals are carried on.
    #[serde(default)]
    pub sync: Option<SyncProgress>,
    /// `_bulk` requests in flight (else `ELASTICSEARCH_BULK_CONCURRENCY`).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Gzip request bodies (else `ELASTICSEARCH_BULK_GZIP`).
    #[serde(default)]
    pub gzip: Option<bool>,
    /// Uncompressed bytes per request (else `ELASTICSEARCH_BULK_BYTES`).
    #[serde(default)]
    pub batch_bytes: Option<usize>,
}

impl SyncEvent {
    /// The date's interval, from its first employee, with the default limit and settings.
    pub fn for_date(logical_date: LogicalDate, execution: Option<String>) -> Self {
        Self {
            logical_date,
            full: false,
            execution,
            max_docs: None,
            stop_margin_ms: None,
            after_employee_id: None,
            sync: None,
            concurrency: None,
            gzip: None,
            batch_bytes: None,
        }
    }
}

/// Where a date's sync stands after an invocation, totals over its invocations so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    pub invocations: u64,
    pub indexed: u64,
    pub failed: u64,
    /// Employees remain after `after_employee_id`: invoke again with this progress.
    pub more: bool,
    /// The last employee id this invocation sent; `None` before any.
    pub after_employee_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncOutput {
    pub logical_date: LogicalDate,
    pub index: String,
    pub full: bool,
    /// This invocation's figures.
    pub selected: u64,
    pub indexed: u64,
    pub failed: u64,
    pub retried: u64,
    pub requests: u64,
    pub failures: Vec<ItemFailure>,
    /// Over every invocation for this sync, and whether another is needed.
    pub progress: SyncProgress,
}

/// The search document for one employee, borrowing its text from the row: serialised
/// straight into the bulk body, with no owned copy in between.
#[derive(Debug, Serialize)]
pub struct EmployeeDoc<'r> {
    pub employee_id: i64,
    pub full_name: &'r str,
    pub job_title: &'r str,
    pub department: &'r str,
    pub email: &'r str,
    pub salary: f64,
    pub hire_date: chrono::NaiveDate,
    pub logical_date: chrono::NaiveDate,
}

impl<'r> EmployeeDoc<'r> {
    pub fn from_row(row: &'r Row) -> Result<Self, StageError> {
        Ok(Self {
            employee_id: row.try_get(0).map_err(StageError::postgres)?,
            full_name: row.try_get(1).map_err(StageError::postgres)?,
            job_title: row.try_get(2).map_err(StageError::postgres)?,
            department: row.try_get(3).map_err(StageError::postgres)?,
            email: row.try_get(4).map_err(StageError::postgres)?,
            salary: row.try_get(5).map_err(StageError::postgres)?,
            hire_date: row.try_get(6).map_err(StageError::postgres)?,
            logical_date: row.try_get(7).map_err(StageError::postgres)?,
        })
    }
}

/// One more row than the invocation sends: its presence says that more remain.
pub const SELECT: &str = "
    SELECT employee_id, full_name, job_title, department, email, salary::float8, hire_date, logical_date
      FROM hr.employees
     WHERE ($3 OR (hire_date >= $1 AND hire_date < $2)) AND employee_id > $4
     ORDER BY employee_id
     LIMIT $5";

impl Counted for SyncOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.selected as i64),
            rows_out: Some(self.indexed as i64),
            rows_rejected: Some(self.failed as i64),
        }
    }
    fn retries(&self) -> Option<u64> {
        Some(self.retried)
    }
}

pub async fn run(ctx: &Context, event: SyncEvent) -> Result<SyncOutput, StageError> {
    let (date, execution) = (event.logical_date, event.execution.clone());
    ledger::tracked(
        ctx,
        "hr",
        "sync",
        date,
        execution.as_deref(),
        sync(ctx, event),
    )
    .await
}

impl SyncEvent {
    /// The most documents this invocation sends, refused when zero.
    pub fn limit(&self) -> Result<u64, StageError> {
        match self.max_docs {
            None => Ok(DEFAULT_MAX_DOCS_PER_INVOCATION),
            Some(0) => Err(StageError::invalid_input(
                "max_docs must be at least 1 (documents per invocation)",
            )),
            Some(n) => Ok(n),
        }
    }

    /// The employee id to continue after.
    pub fn cursor(&self) -> Option<i64> {
        match &self.sync {
            Some(progress) => progress.after_employee_id,
            None => self.after_employee_id,
        }
    }

    /// The bulk settings: the configuration's, overridden by the event's.
    pub fn bulk_config(&self, ctx: &Context, es: &crate::search::SearchClient) -> BulkConfig {
        let settings = ctx
            .elasticsearch_settings()
            .map_or(ctx.config.elasticsearch.bulk, |s| s.bulk);
        let mut config = BulkConfig::from_settings(&settings, es);
        if let Some(concurrency) = self.concurrency.filter(|&n| n > 0) {
            config.concurrency = concurrency;
        }
        if let Some(gzip) = self.gzip {
            config.gzip = gzip;
        }
        if let Some(bytes) = self.batch_bytes.filter(|&n| n > 0) {
            config.max_bytes = bytes;
        }
        config
    }
}

/// How long before the deadline to stop taking rows: `requested` if given, else
/// [`DEFAULT_STOP_MARGIN`], at most half of `budget` (the invocation's time when it started),
/// so that a short `Timeout` is still half spent indexing.
pub fn stop_margin(requested: Option<Duration>, budget: Duration) -> Duration {
    requested.unwrap_or_else(|| DEFAULT_STOP_MARGIN.min(budget / 2))
}

/// Whether to take no more rows: less than `margin` is left before `deadline`. Never before
/// the first row (`taken` 0), so every invocation moves the cursor on.
pub fn out_of_time(now: Instant, deadline: Option<Instant>, margin: Duration, taken: u64) -> bool {
    taken > 0 && deadline.is_some_and(|d| d.saturating_duration_since(now) < margin)
}

/// The rows one invocation reads: `limit` + 1 from after `cursor`, in id order.
pub async fn select_rows(
    client: &tokio_postgres::Client,
    event: &SyncEvent,
    limit: u64,
) -> Result<tokio_postgres::RowStream, StageError> {
    let date = event.logical_date;
    let next = date.next().ok_or_else(|| {
        StageError::invalid_input(format!("{date} has no following day in range"))
    })?;
    let (start, end) = (date.date(), next.date());
    let after = event.cursor().unwrap_or(i64::MIN);
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 5] = [&start, &end, &event.full, &after, &fetch];
    client
        .query_raw(SELECT, params.iter().copied())
        .await
        .map_err(StageError::postgres)
}

async fn sync(ctx: &Context, event: SyncEvent) -> Result<SyncOutput, StageError> {
    let limit = event.limit()?;
    let es = ctx.elasticsearch()?;
    let index = ctx.index_name(EMPLOYEES.name);
    ensure_index(es, &index, &EMPLOYEES).await?;

    let deadline = ctx.deadline();
    let margin = stop_margin(
        event.stop_margin_ms.map(Duration::from_millis),
        deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        }),
    );
    let client = ctx.postgres().await?;
    let rows = select_rows(&client, &event, limit).await?;
    pin_mut!(rows);

    let config = event.bulk_config(ctx, es);
    tracing::debug!(
        concurrency = config.concurrency,
        max_bytes = config.max_bytes,
        gzip = config.gzip,
        limit,
        margin_ms = u64::try_from(margin.as_millis()).unwrap_or(u64::MAX),
        "syncing"
    );
    let mut sink = BulkSink::new(es, &index, config);
    let (mut selected, mut more, mut last_id) = (0u64, false, event.cursor());
    while let Some(row) = rows.try_next().await.map_err(StageError::postgres)? {
        // Everything taken so far is sent by `finish` below (indexed or reported failed),
        // so continuing after the last id taken skips nothing.
        if selected == limit || out_of_time(Instant::now(), deadline, margin, selected) {
            more = true;
            break;
        }
        let doc = EmployeeDoc::from_row(&row)?;
        selected += 1;
        last_id = Some(doc.employee_id);
        sink.push_id(&doc.employee_id, &doc).await?;
    }
    let report = sink.finish().await?;
    refresh(es, &index).await?;

    for failure in &report.failures {
        tracing::warn!(id = %failure.id, status = failure.status, reason = %failure.reason, "document not indexed");
    }
    let before = event.sync.clone().unwrap_or_default();
    let progress = SyncProgress {
        invocations: before.invocations + 1,
        indexed: before.indexed + report.indexed,
        failed: before.failed + report.failed,
        more,
        after_employee_id: last_id,
    };
    tracing::info!(
        selected,
        indexed = report.indexed,
        failed = report.failed,
        retried = report.retried,
        requests = report.requests,
        more,
        stopped_on_time = more && selected < limit,
        "employees synced"
    );
    Ok(SyncOutput {
        logical_date: event.logical_date,
        index,
        full: event.full,
        selected,
        indexed: report.indexed,
        failed: report.failed,
        retried: report.retried,
        requests: report.requests,
        failures: report.failures,
        progress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> SyncEvent {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_loops_progress_wins_over_the_first_cursor_and_zero_docs_is_refused() {
        let first =
            event(serde_json::json!({"logical_date": "2026-11-20", "after_employee_id": 5}));
        assert_eq!(first.cursor(), Some(5));
        assert_eq!(first.limit().unwrap(), DEFAULT_MAX_DOCS_PER_INVOCATION);
        let looped = event(serde_json::json!({
            "logical_date": "2026-11-20", "sync_max_docs": 1000, "hire": {"loaded": 3},
            "sync": {"invocations": 2, "indexed": 2000, "failed": 0, "more": true, "after_employee_id": 2000}
        }));
        assert_eq!(
            (looped.cursor(), looped.limit().unwrap()),
            (Some(2000), 1000)
        );
        let err = event(serde_json::json!({"logical_date": "2026-11-20", "max_docs": 0}))
            .limit()
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("max_docs"), "{err}");
    }

    #[test]
    fn the_stage_stops_on_time_only_inside_the_margin_and_only_after_a_row() {
        let now = Instant::now();
        let margin = Duration::from_secs(150);
        let deadline = Some(now + Duration::from_secs(149));
        assert!(out_of_time(now, deadline, margin, 1));
        assert!(!out_of_time(now, deadline, margin, 0), "no progress");
        assert!(!out_of_time(now, Some(now + margin), margin, 5));
        assert!(!out_of_time(now, None, margin, 5), "outside an invocation");
        // Past the deadline already: stop.
        assert!(out_of_time(
            now + Duration::from_secs(1),
            Some(now),
            margin,
            1
        ));
    }

    #[test]
    fn the_margin_covers_a_bulk_request_and_is_at_most_half_a_short_timeout() {
        assert!(DEFAULT_STOP_MARGIN > BULK_REQUEST_TIMEOUT);
        let lambda = Duration::from_secs(900);
        assert_eq!(stop_margin(None, lambda), DEFAULT_STOP_MARGIN);
        assert_eq!(
            stop_margin(None, Duration::from_secs(9)),
            Duration::from_millis(4500)
        );
        assert_eq!(stop_margin(None, Duration::MAX), DEFAULT_STOP_MARGIN);
        let asked = Duration::from_secs(60);
        assert_eq!(stop_margin(Some(asked), lambda), asked);
        let looped =
            event(serde_json::json!({"logical_date": "2026-11-20", "sync_stop_margin_ms": 2500}));
        assert_eq!(looped.stop_margin_ms, Some(2500));
    }
}
