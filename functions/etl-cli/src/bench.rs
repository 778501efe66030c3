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

fn bench_date() -> Result<LogicalDate, StageError> {
    BENCH_DATE
        .parse()
        .map_err(|e: etl_core::logical_date::LogicalDateError| StageError::Internal(e.to_string()))
}

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
    let date = bench_date()?;
    hr_schema::run(ctx, SchemaEvent::default()).await?;
    // Start from nothing for this date, so the load really inserts every row.
    let client = ctx.postgres().await?;
    for delete in [
        "DELETE FROM hr.employees WHERE logical_date = $1",
        "DELETE FROM hr.employee_rejects WHERE logical_date = $1",
        "DELETE FROM etl.runs WHERE logical_date = $1",
    ] {
        client
            .execute(delete, &[&date.date()])
            .await
            .map_err(StageError::postgres)?;
    }
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

/// `etl bench clickstream`: simulate → bulk-index `events` events, then the server's own
/// ceiling for the same documents: pre-built NDJSON bodies of the same size, posted by the
/// same HTTP client, one request at a time like the sink.
pub async fn clickstream(ctx: &Context, events: u64) -> Result<Vec<Phase>, StageError> {
    use etl_core::clickstream::simulate::{interval, Simulation};
    use etl_core::search::bulk::{append_index_action, post_bulk};
    use etl_core::search::index::CLICKSTREAM;
    use etl_core::search::{ensure_index, refresh, BulkConfig, BulkSink};

    let es = ctx.elasticsearch()?;
    let index = ctx.index_name(&format!("bench_{}", CLICKSTREAM.name));
    let _ = call(es, Method::Delete, &format!("/{index}"), None).await;
    ensure_index(es, &index, &CLICKSTREAM).await?;
    let date = bench_date()?;
    let (start, end) =
        interval(date.date(), None).ok_or_else(|| StageError::Internal("interval".into()))?;
    let simulation = Simulation {
        start,
        end,
        seed: 0,
        users: 50_000,
    };

    let pipeline = timed(
        "simulate + bulk index (the stage's path)",
        |n: &u64| *n,
        async {
            let mut sink = BulkSink::new(es, &index, BulkConfig::default());
            let mut sent = 0u64;
            let mut session = 0u32;
            while sent < events {
                for e in simulation.session(session) {
                    sink.push(e.event_id.clone(), &e).await?;
                    sent += 1;
                }
                session += 1;
            }
            let report = sink.finish().await?;
            refresh(es, &index).await?;
            Ok(report.indexed)
        },
    )
    .await?;

    // The ceiling: the same documents, serialised beforehand, into a fresh index.
    let ceiling_index = format!("{index}_ceiling");
    let _ = call(es, Method::Delete, &format!("/{ceiling_index}"), None).await;
    ensure_index(es, &ceiling_index, &CLICKSTREAM).await?;
    let per_request = BulkConfig::default().max_docs;
    let mut bodies = Vec::new();
    let mut body = Vec::new();
    let (mut in_body, mut total, mut session) = (0usize, 0u64, 0u32);
    while total < events {
        for e in simulation.session(session) {
            let source =
                serde_json::to_vec(&e).map_err(|err| StageError::Internal(err.to_string()))?;
            append_index_action(&mut body, &ceiling_index, &e.event_id, &source);
            in_body += 1;
            total += 1;
            if in_body == per_request {
                bodies.push((std::mem::take(&mut body), in_body));
                in_body = 0;
            }
        }
        session += 1;
    }
    if in_body > 0 {
        bodies.push((body, in_body));
    }
    let ceiling = timed(
        "server ceiling (pre-built NDJSON, same client)",
        |n: &u64| *n,
        async {
            let mut indexed = 0u64;
            for (body, docs) in bodies {
                let (status, _) = post_bulk(es, body).await?;
                if !(200..300).contains(&status) {
                    return Err(StageError::elasticsearch_status(status, "bulk"));
                }
                indexed += docs as u64;
            }
            refresh(es, &ceiling_index).await?;
            Ok(indexed)
        },
    )
    .await?;
    let _ = call(es, Method::Delete, &format!("/{index}"), None).await;
    let _ = call(es, Method::Delete, &format!("/{ceiling_index}"), None).await;
    Ok(vec![pipeline, ceiling])
}
