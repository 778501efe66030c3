//! `etl bench hr`: hires N employees (generate + clean + load) and syncs them to
//! Elasticsearch, timing each phase and reading the process's peak memory.

use std::time::Instant;

use elasticsearch::http::Method;
use etl_core::search::index::{call, EMPLOYEES};
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::stages::hr_sync::{self, SyncEvent};
use etl_core::{Context, LogicalDate, StageError};
use serde::Serialize;

/// A date no pipeline uses, so the benchmark never mixes with real data.
const BENCH_DATE: &str = "2001-01-01";

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// Peak resident memory during the phase, MiB (Linux `VmHWM`, reset per phase).
    pub peak_rss_mib: Option<f64>,
}

/// Resets the peak-RSS counter (Linux: writing 5 to clear_refs), best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn timed<F, T>(
    name: &'static str,
    rows: impl Fn(&T) -> u64,
    work: F,
) -> Result<Phase, StageError>
where
    F: std::future::Future<Output = Result<T, StageError>>,
{
    reset_peak_rss();
    let started = Instant::now();
    let output = work.await?;
    let seconds = started.elapsed().as_secs_f64();
    let rows = rows(&output);
    Ok(Phase {
        name,
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        peak_rss_mib: peak_rss_mib(),
    })
}

pub async fn hr(ctx: &Context, rows: u64) -> Result<Vec<Phase>, StageError> {
    let date: LogicalDate =
        BENCH_DATE
            .parse()
            .map_err(|e: etl_core::logical_date::LogicalDateError| {
                StageError::Internal(e.to_string())
            })?;
    hr_schema::run(ctx, SchemaEvent::default()).await?;
    // Start from nothing for this date, so the load really inserts every row.
    let client = ctx.postgres().await?;
    client
        .execute(
            "DELETE FROM hr.employees WHERE logical_date = $1",
            &[&date.date()],
        )
        .await
        .map_err(StageError::postgres)?;
    client
        .execute(
            "DELETE FROM hr.employee_rejects WHERE logical_date = $1",
            &[&date.date()],
        )
        .await
        .map_err(StageError::postgres)?;
    client
        .execute(
            "DELETE FROM etl.runs WHERE logical_date = $1",
            &[&date.date()],
        )
        .await
        .map_err(StageError::postgres)?;
    drop(client);
    let index = ctx.index_name(EMPLOYEES.name);
    // A missing index is fine: there is nothing to delete.
    let _ = call(
        ctx.elasticsearch()?,
        Method::Delete,
        &format!("/{index}"),
        None,
    )
    .await;

    let hire = timed(
        "hire (generate + clean + COPY + merge)",
        |o: &hr_hire::HireOutput| o.generated,
        hr_hire::run(
            ctx,
            HireEvent {
                logical_date: date,
                count: rows,
                locale: None,
                seed: 0,
                execution: Some("bench".into()),
            },
        ),
    )
    .await?;
    let sync = timed(
        "sync (PostgreSQL → bulk → Elasticsearch)",
        |o: &hr_sync::SyncOutput| o.indexed,
        hr_sync::run(
            ctx,
            SyncEvent {
                logical_date: date,
                full: false,
                execution: Some("bench".into()),
            },
        ),
    )
    .await?;
    Ok(vec![hire, sync])
}
