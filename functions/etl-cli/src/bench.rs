//! `etl bench <target>`: times a pipeline's phases against the ceiling of the service they
//! use, reading the process's peak memory, and sums each workload up as one line: ours, the
//! ceiling, and their ratio ([`WORKLOADS`]).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use elasticsearch::http::Method;
use etl_core::hr::binary_copy::COLUMNS;
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
    /// How the phase was measured, when that varies (the hire ceiling's client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// PostgreSQL WAL written during the phase, MiB: the whole cluster's, so anything else
    /// running on it counts too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_mib: Option<f64>,
    /// CPU time this process spent in the phase, user + sys, seconds (`getrusage`): what
    /// Lambda bills. Servers the phase talks to (moto, PostgreSQL) are other processes and
    /// are not in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
}

/// The rows CPU time is quoted per: the seed's daily volume.
pub const CPU_PER_ROWS: u64 = 500_000;

impl Phase {
    /// CPU seconds per [`CPU_PER_ROWS`] rows.
    pub fn cpu_per_rows(&self) -> Option<f64> {
        let cpu = self.cpu_seconds?;
        (self.rows > 0).then(|| cpu * CPU_PER_ROWS as f64 / self.rows as f64)
    }
}

/// User + sys CPU time of this process so far (all its threads), seconds.
fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which is large enough.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: a zero return means the kernel filled the struct.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
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
        )?;
        if let Some(wal) = self.wal_mib {
            write!(f, "  WAL {wal:.0} MiB")?;
        }
        if let Some(cpu) = self.cpu_seconds {
            write!(f, "  CPU {cpu:.2} s")?;
        }
        match &self.note {
            Some(note) => write!(f, "  ({note})"),
            None => Ok(()),
        }
    }
}

/// Told as each timed phase starts and ends (`etl bench`'s progress view), outside the
/// phase's timed span: a phase's measurement pays for nothing it does.
pub trait PhaseWatcher: Send + Sync {
    fn started(&self, phase: &str);
    /// `None`: the phase failed.
    fn ended(&self, phase: &str, measured: Option<&Phase>);
}

/// The process's phase watcher, if one was given.
static WATCHER: OnceLock<Box<dyn PhaseWatcher>> = OnceLock::new();

/// `watcher` is told of every phase this process times from now on; `false` (and it is
/// not) when another already is.
pub fn watch_phases(watcher: Box<dyn PhaseWatcher>) -> bool {
    WATCHER.set(watcher).is_ok()
}

fn phase_started(phase: &str) {
    if let Some(watcher) = WATCHER.get() {
        watcher.started(phase);
    }
}

fn phase_ended(phase: &str, measured: Option<&Phase>) {
    if let Some(watcher) = WATCHER.get() {
        watcher.ended(phase, measured);
    }
}

/// The workload a phase is a side of ([`WORKLOADS`]), if any.
pub fn workload_of(phase: &str) -> Option<&'static str> {
    WORKLOADS
        .iter()
        .find(|w| w.ours == phase || w.ceiling == Some(phase))
        .map(|w| w.name)
}

async fn timed<F, T>(
    name: &'static str,
    rows: impl Fn(&T) -> u64,
    work: F,
) -> Result<Phase, StageError>
where
    F: std::future::Future<Output = Result<T, StageError>>,
{
    phase_started(name);
    reset_peak_rss();
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let output = work.await.inspect_err(|_| phase_ended(name, None))?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| after - before);
    let rows = rows(&output);
    let phase = Phase {
        name: Cow::Borrowed(name),
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        peak_rss_mib: peak_rss_mib(),
        note: None,
        wal_mib: None,
        cpu_seconds,
    };
    phase_ended(name, Some(&phase));
    Ok(phase)
}

/// Phase names. [`WORKLOADS`] pairs them; a child process of `--runs N` reports them back.
pub const HIRE: &str = "hire (generate + clean + COPY, one transaction)";
pub const HIRE_CEILING: &str = "hire ceiling: \\copy of the same rows as CSV";
pub const HIRE_AGAIN: &str = "hire again (a re-run: the batch replaced)";
pub const SYNC: &str = "sync (PostgreSQL → bulk → Elasticsearch)";
pub const SYNC_CEILING: &str = "sync ceiling: raw _bulk of the same documents, pre-built";
pub const CLICKSTREAM_INDEX: &str = "simulate + bulk index (the stage's path)";
pub const CLICKSTREAM_CEILING: &str = "server ceiling (pre-built NDJSON, same client)";
pub const MARKETING_PIPELINE: &str = "pipeline end to end (sum of the stages)";
pub const MARKETING_CEILING: &str = "S3 ceiling for the same bytes (sum)";

/// Who sends the hire ceiling's CSV.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CeilingClient {
    /// psql when it is on PATH, else in process.
    #[default]
    Auto,
    /// `psql -c '\copy … FROM file (FORMAT csv)'`: the issue's ceiling, libpq's COPY loop.
    Psql,
    /// `COPY … FROM STDIN (FORMAT csv)` from this process, over the same kind of connection.
    InProcess,
}

impl std::fmt::Display for CeilingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => Ok(()),
        }
    }
}

/// What `etl bench hr` runs.
#[derive(Debug, Clone)]
pub struct HrOptions {
    pub rows: u64,
    /// Also time the sync to Elasticsearch (slow against osmem: ≈ 2k docs/s).
    pub sync: bool,
    pub ceiling: CeilingClient,
}

/// `etl bench hr`: the hire stage, then the ceiling for the same rows — the rows it loaded,
/// dumped as CSV and loaded again by a plain COPY with no idempotency, no generation and no
/// rejects — then a re-run of the stage over them, then (optionally) the sync. Before each
/// timed load the date's rows are deleted, the table vacuumed and a checkpoint taken, so both
/// sides start from the same table and neither pays for the other's dead rows or WAL.
pub async fn hr(ctx: &Context, options: &HrOptions) -> Result<Vec<Phase>, StageError> {
    let date = bench_date()?;
    hr_schema::run(ctx, SchemaEvent::default()).await?;
    let ceiling_client = resolve_ceiling_client(options.ceiling)?;
    // Start from nothing for this date, so the load really inserts every row.
    let client = ctx.postgres().await?;
    for delete in [
        "DELETE FROM hr.employees WHERE logical_date = $1",
        "DELETE FROM hr.employee_rejects WHERE logical_date = $1",
        "DELETE FROM hr.hire_batches WHERE logical_date = $1",
        "DELETE FROM etl.runs WHERE logical_date = $1",
    ] {
        client
            .execute(delete, &[&date.date()])
            .await
            .map_err(StageError::postgres)?;
    }
    settle(&client).await?;
    let index = ctx.index_name(EMPLOYEES.name);
    if options.sync {
        delete_index(ctx, &index).await?;
    }
    let event = HireEvent {
        logical_date: date,
        count: options.rows,
        locale: None,
        seed: 0,
        execution: Some("bench".into()),
    };
    // Rows stored, on both sides: the ceiling loads what the stage loaded, not its rejects.
    let stored = |o: &hr_hire::HireOutput| o.loaded + o.already_present;

    let wal = wal_position(&client).await?;
    let mut hire = timed(HIRE, stored, hr_hire::run(ctx, event.clone())).await?;
    hire.wal_mib = Some(wal_since(&client, wal).await?);
    let csv = TempCsv::dump(&client, date).await?;
    client
        .execute(
            "DELETE FROM hr.employees WHERE logical_date = $1",
            &[&date.date()],
        )
        .await
        .map_err(StageError::postgres)?;
    settle(&client).await?;
    let wal = wal_position(&client).await?;
    let mut ceiling = copy_ceiling(ctx, &client, &csv.path, &ceiling_client, date).await?;
    ceiling.wal_mib = Some(wal_since(&client, wal).await?);
    settle(&client).await?;
    // The registered batch is still there, so this replaces the ceiling's (identical) rows.
    let wal = wal_position(&client).await?;
    let mut again = timed(HIRE_AGAIN, stored, hr_hire::run(ctx, event)).await?;
    again.wal_mib = Some(wal_since(&client, wal).await?);
    drop(csv);
    let mut phases = vec![hire, ceiling, again];
    if options.sync {
        phases.extend(sync_and_ceiling(ctx, date).await?);
    }
    Ok(phases)
}

/// The sync of the date's rows into a fresh index, then the cluster's ceiling for the same
/// documents: the NDJSON the sync sends, built beforehand (untimed) from the same rows by
/// the same code, posted raw with the same request size, concurrency and encoding into
/// another fresh index. Each index is deleted once timed, so the local stand-in holds one
/// copy at a time.
async fn sync_and_ceiling(ctx: &Context, date: LogicalDate) -> Result<Vec<Phase>, StageError> {
    let es = ctx.elasticsearch()?;
    let index = ctx.index_name(EMPLOYEES.name);
    let event = SyncEvent {
        max_docs: Some(u64::MAX / 2),
        ..SyncEvent::for_date(date, Some("bench".into()))
    };
    let config = event.bulk_config(ctx, es);
    let note = format!(
        "{} in flight, {} KiB requests, gzip {}",
        config.concurrency,
        config.max_bytes / 1024,
        if config.gzip { "on" } else { "off" }
    );
    let mut ours = timed(
        SYNC,
        |o: &hr_sync::SyncOutput| o.indexed,
        hr_sync::run(ctx, event.clone()),
    )
    .await?;
    ours.note = Some(note.clone());
    delete_index(ctx, &index).await?;

    let ceiling_index = ctx.index_name("bench_sync_ceiling");
    delete_index(ctx, &ceiling_index).await?;
    etl_core::search::ensure_index(es, &ceiling_index, &EMPLOYEES).await?;
    let bodies = prebuilt_sync_bodies(ctx, &event, &ceiling_index, &config).await?;
    let mut ceiling = timed(SYNC_CEILING, |n: &u64| *n, async {
        use futures::{StreamExt, TryStreamExt};
        let sent: Vec<u64> = futures::stream::iter(bodies.iter())
            .map(|(body, docs)| async move {
                let (status, answer) =
                    etl_core::search::bulk::post_bulk_encoded(es, body, config.gzip).await?;
                let head = &answer[..answer.len().min(64)];
                if !(200..300).contains(&status) || !contains(head, br#""errors":false"#) {
                    return Err(StageError::elasticsearch_status(
                        status,
                        &String::from_utf8_lossy(head),
                    ));
                }
                Ok(*docs)
            })
            .buffer_unordered(config.concurrency)
            .try_collect()
            .await?;
        etl_core::search::refresh(es, &ceiling_index).await?;
        Ok(sent.iter().sum())
    })
    .await?;
    ceiling.note = Some(note);
    delete_index(ctx, &ceiling_index).await?;
    Ok(vec![ours, ceiling])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Deletes an index; a missing one is fine.
async fn delete_index(ctx: &Context, index: &str) -> Result<(), StageError> {
    let _ = call(
        ctx.elasticsearch()?,
        Method::Delete,
        &format!("/{index}"),
        None,
    )
    .await;
    Ok(())
}

/// The bodies the sync sends for `event`, addressed to `index`: the same query, document
/// type and batching, gzipped beforehand when the sync gzips. Each with its document count.
async fn prebuilt_sync_bodies(
    ctx: &Context,
    event: &SyncEvent,
    index: &str,
    config: &etl_core::search::BulkConfig,
) -> Result<Vec<(Vec<u8>, u64)>, StageError> {
    use etl_core::search::bulk::{action_prefix, gzip, Batch};
    use futures::TryStreamExt;

    let client = ctx.postgres().await?;
    let rows = hr_sync::select_rows(&client, event, event.limit()?).await?;
    futures::pin_mut!(rows);
    let prefix = action_prefix(index);
    let mut batch = Batch::with_capacity(config.max_bytes);
    let mut batches = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(StageError::postgres)? {
        let doc = hr_sync::EmployeeDoc::from_row(&row)?;
        batch
            .push(&prefix, &doc.employee_id, &doc)
            .map_err(|e| StageError::Internal(e.to_string()))?;
        batches.extend(batch.take_full(config));
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    Ok(batches
        .into_iter()
        .map(|b| {
            let docs = b.len() as u64;
            let body = if config.gzip {
                gzip(b.body())
            } else {
                b.into_body()
            };
            (body, docs)
        })
        .collect())
}

/// Puts the table in the same state before each timed load: dead rows gone, a fresh
/// checkpoint (otherwise one started by the previous load's WAL lands in the next load).
/// CHECKPOINT needs superuser or `pg_checkpoint`; without either it is skipped.
async fn settle(client: &etl_core::clients::PgClient) -> Result<(), StageError> {
    client
        .batch_execute("VACUUM hr.employees")
        .await
        .map_err(StageError::postgres)?;
    if let Err(err) = client.batch_execute("CHECKPOINT").await {
        tracing::debug!(error = %err, "no checkpoint before the timed load");
    }
    Ok(())
}

/// Where the WAL is now.
async fn wal_position(client: &etl_core::clients::PgClient) -> Result<String, StageError> {
    Ok(client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(StageError::postgres)?
        .get(0))
}

/// WAL written since `from`, MiB.
async fn wal_since(client: &etl_core::clients::PgClient, from: String) -> Result<f64, StageError> {
    let bytes: f64 = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::float8",
            &[&from],
        )
        .await
        .map_err(StageError::postgres)?
        .get(0);
    Ok(bytes / (1024.0 * 1024.0))
}

/// The hire ceiling's client, resolved.
#[derive(Debug, Clone)]
enum ResolvedCeiling {
    Psql(PathBuf),
    InProcess,
}

fn resolve_ceiling_client(wanted: CeilingClient) -> Result<ResolvedCeiling, StageError> {
    let psql = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("psql"))
                .find(|candidate| candidate.is_file())
        })
    };
    match wanted {
        CeilingClient::InProcess => Ok(ResolvedCeiling::InProcess),
        CeilingClient::Auto => Ok(psql().map_or(ResolvedCeiling::InProcess, ResolvedCeiling::Psql)),
        CeilingClient::Psql => psql()
            .map(ResolvedCeiling::Psql)
            .ok_or_else(|| StageError::Internal("--ceiling-client psql: no psql on PATH".into())),
    }
}

/// The date's rows as CSV in a temporary file, removed when dropped.
struct TempCsv {
    path: PathBuf,
}

impl TempCsv {
    async fn dump(
        client: &etl_core::clients::PgClient,
        date: LogicalDate,
    ) -> Result<Self, StageError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncWriteExt;

        let csv = Self {
            path: std::env::temp_dir().join(format!("etl-bench-hire-{}.csv", std::process::id())),
        };
        let io = |e: std::io::Error| {
            StageError::Internal(format!("writing {}: {e}", csv.path.display()))
        };
        // COPY takes no parameters; the date is formatted by us, from a validated LogicalDate.
        let sql = format!(
            "COPY (SELECT {COLUMNS} FROM hr.employees WHERE logical_date = DATE '{}'
                    ORDER BY employee_id) TO STDOUT (FORMAT csv)",
            date.date()
        );
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(StageError::postgres)?;
        futures::pin_mut!(stream);
        let mut file =
            tokio::io::BufWriter::new(tokio::fs::File::create(&csv.path).await.map_err(io)?);
        while let Some(bytes) = stream.try_next().await.map_err(StageError::postgres)? {
            file.write_all(&bytes).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(csv)
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The ceiling: the CSV into `hr.employees` by one plain COPY (autocommit), timed from the
/// start of the client to the end of the COPY; the rows are counted afterwards.
async fn copy_ceiling(
    ctx: &Context,
    client: &etl_core::clients::PgClient,
    csv: &Path,
    how: &ResolvedCeiling,
    date: LogicalDate,
) -> Result<Phase, StageError> {
    phase_started(HIRE_CEILING);
    let phase = measure_copy_ceiling(ctx, client, csv, how, date).await;
    phase_ended(HIRE_CEILING, phase.as_ref().ok());
    phase
}

async fn measure_copy_ceiling(
    ctx: &Context,
    client: &etl_core::clients::PgClient,
    csv: &Path,
    how: &ResolvedCeiling,
    date: LogicalDate,
) -> Result<Phase, StageError> {
    reset_peak_rss();
    let started = Instant::now();
    let (note, peak) = match how {
        ResolvedCeiling::Psql(psql) => {
            run_psql_copy(ctx, psql, csv).await?;
            // psql's memory is its own; ours does not measure it.
            ("psql \\copy".to_string(), None)
        }
        ResolvedCeiling::InProcess => {
            copy_csv_in_process(client, csv).await?;
            (
                "COPY FROM STDIN (FORMAT csv), in process".to_string(),
                peak_rss_mib(),
            )
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE logical_date = $1",
            &[&date.date()],
        )
        .await
        .map_err(StageError::postgres)?
        .get(0);
    let rows = rows as u64;
    Ok(Phase {
        name: Cow::Borrowed(HIRE_CEILING),
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        peak_rss_mib: peak,
        note: Some(note),
        wal_mib: None,
        cpu_seconds: None,
    })
}

/// `psql \copy` with the connection settings of `ctx`, passed in libpq's environment
/// variables (the password never on a command line).
async fn run_psql_copy(ctx: &Context, psql: &Path, csv: &Path) -> Result<(), StageError> {
    use tokio_postgres::config::Host;

    let csv_path = csv.to_string_lossy();
    if csv_path.contains('\'') {
        return Err(StageError::Internal(format!(
            "{csv_path}: a quote in the temporary path"
        )));
    }
    let pg = &ctx.config.postgres;
    let mut command = std::process::Command::new(psql);
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "\\copy hr.employees ({COLUMNS}) FROM '{csv_path}' (FORMAT csv)"
        ))
        .env("PGAPPNAME", "etl-bench-ceiling")
        .env("PGSSLMODE", pg.tls.mode.as_str())
        .stdin(std::process::Stdio::null());
    match pg.config.get_hosts().first() {
        Some(Host::Tcp(host)) => command.env("PGHOST", host),
        Some(Host::Unix(dir)) => command.env("PGHOST", dir),
        None => &mut command,
    };
    if let Some(port) = pg.config.get_ports().first() {
        command.env("PGPORT", port.to_string());
    }
    if let Some(user) = pg.config.get_user() {
        command.env("PGUSER", user);
    }
    if let Some(dbname) = pg.config.get_dbname() {
        command.env("PGDATABASE", dbname);
    }
    if let Some(password) = pg.config.get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    if let Some(ca) = pg.tls.ca_files.first() {
        command.env("PGSSLROOTCERT", &ca.path);
    }
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .map_err(|e| StageError::Internal(format!("psql: {e}")))?
        .map_err(|e| StageError::Internal(format!("starting psql: {e}")))?;
    if !status.success() {
        return Err(StageError::Internal(format!(
            "psql \\copy failed ({status}): see its error above"
        )));
    }
    Ok(())
}

/// The same COPY from this process: the file read in 1 MiB pieces, as psql streams it.
async fn copy_csv_in_process(
    client: &etl_core::clients::PgClient,
    csv: &Path,
) -> Result<(), StageError> {
    use futures::SinkExt;
    use tokio::io::AsyncReadExt;

    let io = |e: std::io::Error| StageError::Internal(format!("reading {}: {e}", csv.display()));
    let sql = format!("COPY hr.employees ({COLUMNS}) FROM STDIN (FORMAT csv)");
    let sink = client
        .copy_in::<_, bytes::Bytes>(sql.as_str())
        .await
        .map_err(StageError::postgres)?;
    futures::pin_mut!(sink);
    let mut file = tokio::fs::File::open(csv).await.map_err(io)?;
    loop {
        let mut buf = Vec::with_capacity(1 << 20);
        let read = (&mut file)
            .take(1 << 20)
            .read_to_end(&mut buf)
            .await
            .map_err(io)?;
        if read == 0 {
            break;
        }
        sink.send(bytes::Bytes::from(buf))
            .await
            .map_err(StageError::postgres)?;
    }
    sink.as_mut().finish().await.map_err(StageError::postgres)?;
    Ok(())
}

/// `etl bench clickstream`: simulate → bulk-index `events` events, then the server's own
/// ceiling for the same documents: pre-built NDJSON bodies of the same size, posted by the
/// same HTTP client, as many in flight as the sink sends.
pub async fn clickstream(ctx: &Context, events: u64) -> Result<Vec<Phase>, StageError> {
    use etl_core::clickstream::simulate::{interval, Simulation};
    use etl_core::search::bulk::{action_prefix, post_bulk, Batch};
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

    let pipeline = timed(CLICKSTREAM_INDEX, |n: &u64| *n, async {
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
    })
    .await?;

    // The ceiling: the same documents, serialised beforehand, into a fresh index.
    let ceiling_index = format!("{index}_ceiling");
    let _ = call(es, Method::Delete, &format!("/{ceiling_index}"), None).await;
    ensure_index(es, &ceiling_index, &CLICKSTREAM).await?;
    // Batched and sent as the sink does: requests of the same size, as many in flight.
    let config = BulkConfig::default();
    let prefix = action_prefix(&ceiling_index);
    let mut batch = Batch::with_capacity(config.max_bytes);
    let mut bodies = Vec::new();
    let (mut total, mut session) = (0u64, 0u32);
    while total < events {
        for e in simulation.session(session) {
            batch
                .push(&prefix, &e.event_id, &e)
                .map_err(|err| StageError::Internal(err.to_string()))?;
            total += 1;
            bodies.extend(batch.take_full(&config));
        }
        session += 1;
    }
    if !batch.is_empty() {
        bodies.push(batch);
    }
    let ceiling = timed(CLICKSTREAM_CEILING, |n: &u64| *n, async {
        use futures::{StreamExt, TryStreamExt};
        let sent: Vec<u64> = futures::stream::iter(bodies.iter())
            .map(|batch| async move {
                let (status, _) = post_bulk(es, batch.body(), false).await?;
                if !(200..300).contains(&status) {
                    return Err(StageError::elasticsearch_status(status, "bulk"));
                }
                Ok(batch.len() as u64)
            })
            .buffer_unordered(config.concurrency)
            .try_collect()
            .await?;
        refresh(es, &ceiling_index).await?;
        Ok(sent.iter().sum())
    })
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
            note: None,
            wal_mib: None,
            cpu_seconds: phases.iter().map(|p| p.cpu_seconds).sum(),
        }
    };
    let pipeline_total = total(MARKETING_PIPELINE, &stages);
    let ceiling_total = total(MARKETING_CEILING, &ceiling);
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
    /// Median CPU seconds (user + sys, this process), and the same per [`CPU_PER_ROWS`] rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_per_500k_rows_median: Option<f64>,
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
        )?;
        if let (Some(cpu), Some(per_rows)) = (
            self.cpu_seconds_median,
            self.cpu_seconds_per_500k_rows_median,
        ) {
            write!(f, "  CPU {cpu:.2} s ({per_rows:.2} s per 500k rows)")?;
        }
        Ok(())
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
                cpu_seconds_median: median_of(same.iter().filter_map(|p| p.cpu_seconds)),
                cpu_seconds_per_500k_rows_median: median_of(
                    same.iter().filter_map(|p| p.cpu_per_rows()),
                ),
            }
        })
        .collect()
}

fn median_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    Spread::of(values.collect()).map(|spread| spread.median)
}

/// One summary line: our phase against the ceiling for the same work.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub ours: &'static str,
    /// `None` until someone measures one; the line still shows ours.
    pub ceiling: Option<&'static str>,
}

/// Every workload any `etl bench` reports, in the order the lines are printed. A benchmark
/// target reports the workloads whose phases it ran. To add one, time its phases in the
/// target's function and add its line here.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "hr-hire",
        ours: HIRE,
        ceiling: Some(HIRE_CEILING),
    },
    Workload {
        name: "hr-hire-again",
        ours: HIRE_AGAIN,
        ceiling: None,
    },
    Workload {
        name: "hr-sync",
        ours: SYNC,
        ceiling: Some(SYNC_CEILING),
    },
    Workload {
        name: "clickstream",
        ours: CLICKSTREAM_INDEX,
        ceiling: Some(CLICKSTREAM_CEILING),
    },
    Workload {
        name: "marketing",
        ours: MARKETING_PIPELINE,
        ceiling: Some(MARKETING_CEILING),
    },
];

/// Smallest, median and largest of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        Some(Self {
            min: *values.first()?,
            median: crate::stats::median(&values),
            max: *values.last()?,
        })
    }
}

/// One side of a workload over the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub phase: Cow<'static, str>,
    pub runs: usize,
    pub rows: u64,
    pub seconds: Spread,
    pub rows_per_second: Spread,
    /// CPU seconds (user + sys, this process) per [`CPU_PER_ROWS`] rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_per_500k_rows: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Side {
    fn of(name: &'static str, runs: &[Vec<Phase>]) -> Option<Self> {
        let phases: Vec<&Phase> = runs
            .iter()
            .filter_map(|run| run.iter().find(|p| p.name == name))
            .collect();
        let first = phases.first()?;
        Some(Self {
            phase: Cow::Borrowed(name),
            runs: phases.len(),
            rows: first.rows,
            seconds: Spread::of(phases.iter().map(|p| p.seconds).collect())?,
            rows_per_second: Spread::of(phases.iter().map(|p| p.rows_per_second).collect())?,
            cpu_seconds_per_500k_rows: Spread::of(
                phases.iter().filter_map(|p| p.cpu_per_rows()).collect(),
            ),
            note: first.note.clone(),
        })
    }
}

/// A workload over the runs: ours, the ceiling, and ours ÷ ceiling throughput per run (1.0
/// is the ceiling; above it, faster than the ceiling).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadSummary {
    pub workload: &'static str,
    pub ours: Side,
    pub ceiling: Option<Side>,
    pub ratio: Option<Spread>,
}

/// The workloads the runs measured.
pub fn workloads(runs: &[Vec<Phase>]) -> Vec<WorkloadSummary> {
    WORKLOADS
        .iter()
        .filter_map(|w| {
            let ours = Side::of(w.ours, runs)?;
            let ceiling = w.ceiling.and_then(|c| Side::of(c, runs));
            // Per run, so a run on a busier moment compares with its own ceiling.
            let ratios: Vec<f64> = w
                .ceiling
                .map(|c| {
                    runs.iter()
                        .filter_map(|run| {
                            let ours = run.iter().find(|p| p.name == w.ours)?;
                            let ceiling = run.iter().find(|p| p.name == c)?;
                            Some(ours.rows_per_second / ceiling.rows_per_second.max(1e-9))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(WorkloadSummary {
                workload: w.name,
                ours,
                ceiling,
                ratio: Spread::of(ratios),
            })
        })
        .collect()
}

/// The summary lines: `workload ours ceiling ratio`, throughputs as medians over the runs.
pub struct WorkloadTable<'a>(pub &'a [WorkloadSummary]);

impl std::fmt::Display for WorkloadTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<16} {:>16} {:>16}  ratio (ours ÷ ceiling, median, min–max)",
            "workload", "ours rows/s", "ceiling rows/s"
        )?;
        for w in self.0 {
            let ceiling = w
                .ceiling
                .as_ref()
                .map_or("-".to_string(), |c| thousands(c.rows_per_second.median));
            let ratio = w.ratio.map_or("-".to_string(), |r| {
                let runs = w.ours.runs.min(w.ceiling.as_ref().map_or(0, |c| c.runs));
                let plural = if runs == 1 { "" } else { "s" };
                format!(
                    "{:.2} ({:.2}–{:.2}, {runs} run{plural})",
                    r.median, r.min, r.max
                )
            });
            write!(
                f,
                "\n{:<16} {:>16} {:>16}  {ratio}",
                w.workload,
                thousands(w.ours.rows_per_second.median),
                ceiling
            )?;
            if let Some(cpu) = w.ours.cpu_seconds_per_500k_rows {
                write!(
                    f,
                    "  CPU {:.2} s per 500k rows ({:.2}–{:.2})",
                    cpu.median, cpu.min, cpu.max
                )?;
            }
        }
        Ok(())
    }
}

/// 1234567.8 → "1,234,568".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything one `etl bench` measured: what `--json` writes, and what `--runs N` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub rows: u64,
    pub runs: Vec<Vec<Phase>>,
    pub summary: Vec<PhaseSummary>,
    pub workloads: Vec<WorkloadSummary>,
}

impl Report {
    pub fn new(target: String, rows: u64, runs: Vec<Vec<Phase>>) -> Self {
        Self {
            target,
            rows,
            summary: summarise(&runs),
            workloads: workloads(&runs),
            runs,
        }
    }
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
            note: None,
            wal_mib: None,
            cpu_seconds: None,
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

    fn named(name: &'static str, rows: u64, seconds: f64) -> Phase {
        Phase {
            name: Cow::Borrowed(name),
            rows,
            seconds,
            rows_per_second: rows as f64 / seconds,
            peak_rss_mib: None,
            note: None,
            wal_mib: None,
            cpu_seconds: None,
        }
    }

    #[test]
    fn workloads_pair_ours_with_the_ceiling_run_by_run() {
        let runs = vec![
            vec![named(HIRE, 1000, 2.0), named(HIRE_CEILING, 1000, 4.0)],
            vec![named(HIRE, 1000, 1.0), named(HIRE_CEILING, 1000, 3.0)],
            vec![
                named(HIRE, 1000, 4.0),
                named(HIRE_CEILING, 1000, 2.0),
                named(SYNC, 10, 1.0),
            ],
        ];
        let summaries = workloads(&runs);
        let names: Vec<&str> = summaries.iter().map(|w| w.workload).collect();
        assert_eq!(names, ["hr-hire", "hr-sync"], "only what the runs measured");
        let hire = &summaries[0];
        // Per run: 2.0, 3.0 and 0.5 times the ceiling's throughput.
        assert_eq!(
            hire.ratio,
            Some(Spread {
                min: 0.5,
                median: 2.0,
                max: 3.0
            })
        );
        assert_eq!(hire.ours.seconds.median, 2.0);
        assert_eq!(hire.ceiling.as_ref().map(|c| c.runs), Some(3));
        assert_eq!(summaries[1].ceiling, None);
        assert_eq!(summaries[1].ratio, None);

        let table = WorkloadTable(&summaries).to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("workload"), "{table}");
        assert!(
            lines[1].starts_with("hr-hire") && lines[1].contains("2.00 (0.50–3.00, 3 runs)"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("hr-sync") && lines[2].ends_with(" -  -"),
            "{table}"
        );

        let json = serde_json::to_value(Report::new("hr".into(), 1000, runs)).unwrap();
        assert_eq!(json["workloads"][0]["workload"], "hr-hire");
        assert_eq!(json["workloads"][0]["ratio"]["median"], 2.0);
        assert_eq!(json["workloads"][1]["ceiling"], serde_json::Value::Null);
        assert_eq!(json["runs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn every_workload_names_distinct_phases() {
        let mut phases: Vec<&str> = WORKLOADS
            .iter()
            .flat_map(|w| std::iter::once(w.ours).chain(w.ceiling))
            .collect();
        let all = phases.len();
        phases.sort_unstable();
        phases.dedup();
        assert_eq!(phases.len(), all);
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
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

    #[test]
    fn cpu_seconds_are_quoted_per_500k_rows_in_the_summary_and_the_workload_line() {
        let with_cpu = |seconds: f64, cpu: f64| Phase {
            cpu_seconds: Some(cpu),
            ..named(MARKETING_PIPELINE, 250_000, seconds)
        };
        let runs = vec![
            vec![with_cpu(2.0, 1.0), named(MARKETING_CEILING, 250_000, 1.0)],
            vec![with_cpu(2.0, 3.0), named(MARKETING_CEILING, 250_000, 1.0)],
            vec![with_cpu(2.0, 2.0), named(MARKETING_CEILING, 250_000, 1.0)],
        ];
        let summary = summarise(&runs);
        assert_eq!(summary[0].cpu_seconds_median, Some(2.0));
        assert_eq!(summary[0].cpu_seconds_per_500k_rows_median, Some(4.0));
        assert!(summary[0]
            .to_string()
            .contains("CPU 2.00 s (4.00 s per 500k rows)"));
        assert_eq!(summary[1].cpu_seconds_median, None, "the ceiling had none");
        let lines = workloads(&runs);
        let cpu = lines[0].ours.cpu_seconds_per_500k_rows.unwrap();
        assert_eq!((cpu.min, cpu.median, cpu.max), (2.0, 4.0, 6.0));
        assert!(WorkloadTable(&lines)
            .to_string()
            .contains("CPU 4.00 s per 500k rows (2.00–6.00)"));
        assert!(with_cpu(1.0, 1.0).to_string().contains("CPU 1.00 s"));
    }
}
