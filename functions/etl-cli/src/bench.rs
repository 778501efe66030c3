//! `etl bench hr`: hires N employees (generate + clean + load) and syncs them to
//! Elasticsearch, timing each phase and reading the process's peak memory.

use std::borrow::Cow;
use std::time::Instant;

use elasticsearch::http::Method;
use etl_core::search::index::{call, EMPLOYEES};
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::stages::hr_sync::{self, SyncEvent};
use etl_core::{Context, LogicalDate, StageError};
use serde::{Deserialize, Serialize};

/// A date no pipeline uses, so the benchmark never mixes with real data.
const BENCH_DATE: &str = "2001-01-01";

fn bench_date() -> Result<LogicalDate, StageError> {
    BENCH_DATE
        .parse()
        .map_err(|e: etl_core::logical_date::LogicalDateError| StageError::Internal(e.to_string()))
}

/// One timed phase of a benchmark run. Deserialisable: `--runs N` runs each in a process of
/// its own and reads its phases back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub name: Cow<'static, str>,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// Peak resident memory during the phase, MiB (Linux `VmHWM`, reset per phase).
    pub peak_rss_mib: Option<f64>,
}

/// Starts a phase's peak-RSS measurement afresh, best effort: first hands the heap that
/// earlier phases freed back to the OS (glibc keeps it otherwise, and it would count in this
/// phase's peak although a Lambda running only this stage never had it), then resets the
/// peak counter (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the OS; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    peak_rss_mib_in("/proc/self/status")
}

/// A process's peak resident memory (`VmHWM`), MiB, from its `/proc/<pid>/status`.
pub(crate) fn peak_rss_mib_in(status_path: &str) -> Option<f64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A memory figure for the tables, or "?" when it was not measured.
pub(crate) fn mib_or_unknown(mib: Option<f64>, decimals: usize) -> String {
    mib.map_or("?".to_string(), |m| format!("{m:.decimals$} MiB"))
}

/// One line of a run's table.
impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<45} {:>9} rows {:>8.2} s {:>10.0} rows/s  peak RSS {}",
            self.name,
            self.rows,
            self.seconds,
            self.rows_per_second,
            mib_or_unknown(self.peak_rss_mib, 0)
        )
    }
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
        name: Cow::Borrowed(name),
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

/// The state machine's Map runs this many generate tasks at once.
const MAP_CONCURRENCY: usize = 10;

/// `etl bench marketing`: the whole pipeline in one process, stage by stage as the state
/// machine runs it (the generate Map with its concurrency), then the S3 server's ceiling for
/// the same bytes: PUT and GET of objects of the same sizes, with the same concurrency.
pub async fn marketing(ctx: &Context, rows: u64) -> Result<Vec<Phase>, StageError> {
    let date = bench_date()?;
    let stages = marketing_stages(ctx, date, rows).await?;
    let ceiling = s3_ceiling(ctx, date, rows).await?;
    let total = |name: &'static str, phases: &[Phase]| {
        let seconds = phases.iter().map(|p| p.seconds).sum::<f64>();
        Phase {
            name: Cow::Borrowed(name),
            rows,
            seconds,
            rows_per_second: rows as f64 / seconds.max(1e-9),
            peak_rss_mib: None,
        }
    };
    let pipeline_total = total("pipeline end to end (sum of the stages)", &stages);
    let ceiling_total = total("S3 ceiling for the same bytes (sum)", &ceiling);
    Ok(stages
        .into_iter()
        .chain([pipeline_total])
        .chain(ceiling)
        .chain([ceiling_total])
        .collect())
}

/// The marketing stages, timed one by one: generate, unify, report.
async fn marketing_stages(
    ctx: &Context,
    date: LogicalDate,
    rows: u64,
) -> Result<Vec<Phase>, StageError> {
    use futures::{StreamExt, TryStreamExt};
    use marketing::stages::plan::{self, PlanEvent};
    use marketing::stages::{generate, report, unify};

    let planned = plan::run(
        ctx,
        PlanEvent {
            logical_date: date,
            rows: Some(rows),
            partition_rows: None,
            partitions_per_task: None,
            seed: None,
            execution: None,
        },
    )
    .await?;
    let tasks = planned.tasks;
    let generated = timed(
        "generate (Map of tasks, 10 at once) → S3",
        |n: &u64| *n,
        async {
            let outputs: Vec<generate::GenerateOutput> = futures::stream::iter(tasks)
                .map(|task| generate::run(ctx, task))
                .buffer_unordered(MAP_CONCURRENCY)
                .try_collect()
                .await?;
            Ok(outputs.iter().map(|o| o.rows).sum())
        },
    )
    .await?;
    let unified = timed("unify (polars) → Parquet + CSV → S3", |n: &u64| *n, async {
        let out = unify::run(
            ctx,
            unify::UnifyEvent {
                logical_date: date,
                execution: None,
                local_dir: None,
            },
        )
        .await?;
        Ok(out.rows_out)
    })
    .await?;
    let reported = timed(
        "report (polars aggregations, charts) → S3",
        |n: &u64| *n,
        async {
            let out = report::run(
                ctx,
                report::ReportEvent {
                    logical_date: date,
                    execution: None,
                },
            )
            .await?;
            Ok(out.rows)
        },
    )
    .await?;
    Ok(vec![generated, unified, reported])
}

/// The S3 server's ceiling: the bytes the stages wrote for `date`, moved without any of the
/// pipeline's work (each phase counts the pipeline's `rows`, for comparable rates).
async fn s3_ceiling(ctx: &Context, date: LogicalDate, rows: u64) -> Result<Vec<Phase>, StageError> {
    use etl_core::s3;
    use futures::{StreamExt, TryStreamExt};
    use marketing::stages::unify;

    let bucket: &str = &ctx.config.bucket;
    let raw = s3::list(ctx, bucket, &marketing::dataset::raw_prefix(date)).await?;
    let bodies: Vec<(String, bytes::Bytes)> = futures::stream::iter(raw)
        .map(|entry| async move {
            let body = s3::get(ctx, bucket, &entry.key).await?;
            Ok::<_, StageError>((format!("bench-ceiling/{}", entry.key), body))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let (parquet_key, csv_key) = unify::master_keys(date);
    let curated = [
        s3::get(ctx, bucket, &parquet_key).await?,
        s3::get(ctx, bucket, &csv_key).await?,
    ];
    let raw_put = timed(
        "S3 ceiling: PUT the raw partitions' bytes",
        |n: &u64| *n,
        async {
            futures::stream::iter(bodies.clone())
                .map(
                    |(key, body)| async move { s3::put(ctx, bucket, &key, "text/csv", body).await },
                )
                .buffer_unordered(MAP_CONCURRENCY * 4)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(rows)
        },
    )
    .await?;
    let raw_get = timed(
        "S3 ceiling: GET them back (8 at once)",
        |n: &u64| *n,
        async {
            futures::stream::iter(bodies.iter().map(|(key, _)| key.clone()))
                .map(|key| async move { s3::get(ctx, bucket, &key).await })
                .buffered(8)
                .try_collect::<Vec<_>>()
                .await?;
            Ok(rows)
        },
    )
    .await?;
    let curated_io = timed(
        "S3 ceiling: PUT master Parquet + CSV (both at once), GET Parquet",
        |n: &u64| *n,
        async {
            // Both at once, as unify streams them.
            futures::future::try_join_all(curated.iter().enumerate().map(|(i, body)| async move {
                let key = format!("bench-ceiling/curated-{i}");
                let mut writer =
                    s3::ObjectWriter::new(ctx, bucket, &key, "application/octet-stream");
                writer.write(body).await?;
                writer.finish().await
            }))
            .await?;
            s3::get(ctx, bucket, "bench-ceiling/curated-0").await?;
            Ok(rows)
        },
    )
    .await?;
    s3::delete_prefix(ctx, bucket, "bench-ceiling/").await?;
    Ok(vec![raw_put, raw_get, curated_io])
}

/// A run's table: a line per phase.
pub struct PhaseTable<'a>(pub &'a [Phase]);

impl std::fmt::Display for PhaseTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_lines(f, self.0)
    }
}

fn write_lines<T: std::fmt::Display>(
    f: &mut std::fmt::Formatter<'_>,
    lines: &[T],
) -> std::fmt::Result {
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            writeln!(f)?;
        }
        write!(f, "{line}")?;
    }
    Ok(())
}

/// One phase over several runs of a benchmark: on a shared machine a single run says little,
/// the median of several does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSummary {
    pub name: Cow<'static, str>,
    pub runs: usize,
    pub seconds_min: f64,
    pub seconds_median: f64,
    pub seconds_max: f64,
    pub peak_rss_mib_max: Option<f64>,
}

/// One line of the summary table: min / median / max.
impl std::fmt::Display for PhaseSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<45} {:>6.2} / {:>6.2} / {:>6.2} s  peak RSS {}",
            self.name,
            self.seconds_min,
            self.seconds_median,
            self.seconds_max,
            mib_or_unknown(self.peak_rss_mib_max, 0)
        )
    }
}

/// The table of `--runs N`: what it summarises, then a line per phase.
pub struct SummaryTable<'a> {
    pub runs: usize,
    pub phases: &'a [PhaseSummary],
}

impl std::fmt::Display for SummaryTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "over {} runs, each in a fresh process (min / median / max):",
            self.runs
        )?;
        write_lines(f, self.phases)
    }
}

/// Summarises runs phase by phase, in the first run's phase order; a phase missing from some
/// run is summarised over the runs that have it.
pub fn summarise(runs: &[Vec<Phase>]) -> Vec<PhaseSummary> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|phase| {
            let same: Vec<&Phase> = runs
                .iter()
                .filter_map(|run| run.iter().find(|p| p.name == phase.name))
                .collect();
            let mut seconds: Vec<f64> = same.iter().map(|p| p.seconds).collect();
            seconds.sort_by(f64::total_cmp);
            PhaseSummary {
                name: phase.name.clone(),
                runs: seconds.len(),
                seconds_min: seconds[0],
                seconds_median: crate::stats::median(&seconds),
                seconds_max: seconds[seconds.len() - 1],
                peak_rss_mib_max: same
                    .iter()
                    .filter_map(|p| p.peak_rss_mib)
                    .max_by(f64::total_cmp),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &'static str, seconds: f64, rss: Option<f64>) -> Phase {
        Phase {
            name: Cow::Borrowed(name),
            rows: 10,
            seconds,
            rows_per_second: 10.0 / seconds,
            peak_rss_mib: rss,
        }
    }

    #[test]
    fn table_lines_show_seconds_and_an_unmeasured_peak_as_a_question_mark() {
        let line = phase("unify", 1.234, None).to_string();
        assert!(
            line.starts_with("unify ") && line.contains(" 1.23 s "),
            "{line}"
        );
        assert!(line.ends_with("peak RSS ?"), "{line}");
        let summary = summarise(&[vec![phase("unify", 1.0, Some(171.4))]]);
        let line = summary[0].to_string();
        assert!(line.contains("1.00 /   1.00 /   1.00 s"), "{line}");
        assert!(line.ends_with("peak RSS 171 MiB"), "{line}");
    }

    #[test]
    fn tables_have_a_line_per_phase() {
        let phases = [phase("hire", 2.0, Some(99.6)), phase("sync", 0.5, None)];
        assert_eq!(
            PhaseTable(&phases).to_string(),
            "hire                                                 10 rows     2.00 s          5 rows/s  peak RSS 100 MiB\n\
             sync                                                 10 rows     0.50 s         20 rows/s  peak RSS ?"
        );
        let runs = [phases.to_vec(), vec![phase("hire", 4.0, Some(120.0))]];
        let summary = summarise(&runs);
        assert_eq!(
            SummaryTable { runs: 2, phases: &summary }.to_string(),
            "over 2 runs, each in a fresh process (min / median / max):\n\
             hire                                            2.00 /   3.00 /   4.00 s  peak RSS 120 MiB\n\
             sync                                            0.50 /   0.50 /   0.50 s  peak RSS ?"
        );
    }

    #[test]
    fn runs_are_summarised_phase_by_phase() {
        let runs = vec![
            vec![phase("a", 3.0, Some(10.0)), phase("b", 1.0, None)],
            vec![phase("a", 1.0, Some(30.0)), phase("b", 2.0, None)],
            vec![phase("a", 2.0, Some(20.0))],
            vec![phase("a", 9.0, None)],
        ];
        let summary = summarise(&runs);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].name, "a");
        assert_eq!(summary[0].runs, 4);
        assert_eq!(
            (
                summary[0].seconds_min,
                summary[0].seconds_median,
                summary[0].seconds_max
            ),
            (1.0, 2.5, 9.0)
        );
        assert_eq!(summary[0].peak_rss_mib_max, Some(30.0));
        assert_eq!(
            summary[1].runs, 2,
            "a phase missing from a run is not invented"
        );
        assert_eq!(summary[1].seconds_median, 1.5);
        assert_eq!(summary[1].peak_rss_mib_max, None);
        assert!(summarise(&[]).is_empty());
    }
}
