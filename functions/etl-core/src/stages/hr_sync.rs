//! Stage `hr-sync`: copies employees hired in one data interval (hire date in
//! `[date, date + 1)`), or all of them with `full`, from PostgreSQL into the
//! `empleados_search` index. Documents have `_id` = employee id, so a re-run overwrites
//! rather than duplicates.

use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::clients::Context;
use crate::error::StageError;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;
use crate::search::index::EMPLOYEES;
use crate::search::{ensure_index, refresh, BulkConfig, BulkSink, ItemFailure};

#[derive(Debug, Clone, Deserialize)]
pub struct SyncEvent {
    pub logical_date: LogicalDate,
    /// Everything, not just the logical date's interval (a first load or a rebuild).
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncOutput {
    pub logical_date: LogicalDate,
    pub index: String,
    pub full: bool,
    pub selected: u64,
    pub indexed: u64,
    pub failed: u64,
    pub retried: u64,
    pub failures: Vec<ItemFailure>,
}

/// The search document for one employee.
#[derive(Debug, Serialize)]
struct EmployeeDoc {
    employee_id: i64,
    full_name: String,
    job_title: String,
    department: String,
    email: String,
    salary: f64,
    hire_date: chrono::NaiveDate,
    logical_date: chrono::NaiveDate,
}

const SELECT: &str = "
    SELECT employee_id, full_name, job_title, department, email, salary::float8, hire_date, logical_date
      FROM hr.employees
     WHERE $3 OR (hire_date >= $1 AND hire_date < $2)
     ORDER BY employee_id";

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

async fn sync(ctx: &Context, event: SyncEvent) -> Result<SyncOutput, StageError> {
    let date = event.logical_date;
    let next = date.next().ok_or_else(|| {
        StageError::invalid_input(format!("{date} has no following day in range"))
    })?;
    let es = ctx.elasticsearch()?;
    let index = ctx.index_name(EMPLOYEES.name);
    ensure_index(es, &index, &EMPLOYEES).await?;

    let client = ctx.postgres().await?;
    let (start, end) = (date.date(), next.date());
    let params: [&(dyn ToSql + Sync); 3] = [&start, &end, &event.full];
    let rows = client
        .query_raw(SELECT, params.iter().copied())
        .await
        .map_err(StageError::postgres)?;
    pin_mut!(rows);

    let mut sink = BulkSink::new(es, &index, BulkConfig::default());
    let mut selected = 0u64;
    while let Some(row) = rows.try_next().await.map_err(StageError::postgres)? {
        let doc = EmployeeDoc {
            employee_id: row.get(0),
            full_name: row.get(1),
            job_title: row.get(2),
            department: row.get(3),
            email: row.get(4),
            salary: row.get(5),
            hire_date: row.get(6),
            logical_date: row.get(7),
        };
        selected += 1;
        sink.push(doc.employee_id.to_string(), &doc).await?;
    }
    let report = sink.finish().await?;
    refresh(es, &index).await?;

    for failure in &report.failures {
        tracing::warn!(id = %failure.id, status = failure.status, reason = %failure.reason, "document not indexed");
    }
    tracing::info!(
        selected,
        indexed = report.indexed,
        failed = report.failed,
        retried = report.retried,
        "employees synced"
    );
    Ok(SyncOutput {
        logical_date: date,
        index,
        full: event.full,
        selected,
        indexed: report.indexed,
        failed: report.failed,
        retried: report.retried,
        failures: report.failures,
    })
}
