//! The chaos backfill (issue #16): 30 dates of `hr` and `marketing`, run once in a clean
//! environment and once while faults are injected at random — PostgreSQL connections killed,
//! S3 and Elasticsearch answering 500/503/429 through fault-injecting proxies (before the
//! request reaches the server, or after the server did the work), Lambda invokes throttled
//! and timed out — re-run until the ledger says every date succeeded. The chaotic
//! environment must then hold exactly what the clean one holds: the same employee rows, the
//! same S3 objects (keys and bytes), the same Elasticsearch documents, nothing duplicated and
//! nothing lost; and its ledger must tell what happened (attempts, errors, no attempt left
//! `running`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use etl_cli::lambda_limits::{
    InjectedFault, LambdaLimits, RandomFaults, SeededDraws, LAMBDA_THROTTLED,
};
use etl_cli::runner::{run_machine, RunReport, RunSettings};
use etl_core::search::index::call;
use etl_core::{s3, LogicalDate};
use integration_tests::fault_proxy::{FaultPlan, FaultProxy, Flavor, Tally, When};
use integration_tests::{
    connect, download, env_source, in_process, postgres_settings, template, TestEnv, LAKE,
};
use serde_json::{json, Value};

const FROM: &str = "2025-03-01";
const TO: &str = "2025-03-30";
const DAYS: usize = 30;
/// Re-runs of the chaotic backfill before the test gives up: with the rates below a date
/// fails in a round about one time in eight, so a handful of rounds is plenty.
const MAX_ROUNDS: usize = 12;

fn hr_input() -> Value {
    json!({"start_date": FROM, "reprocess": "failed", "params": {"count": 40, "seed": 11}})
}

/// 1,200 rows in three partitions, two generate tasks: every stage of the lake, small.
fn marketing_input() -> Value {
    json!({"params": {"rows": 1200, "partition_rows": 400, "partitions_per_task": 2, "seed": 7}})
}

fn dates() -> Vec<LogicalDate> {
    let first: LogicalDate = FROM.parse().unwrap();
    let mut dates = vec![first];
    while dates.len() < DAYS {
        dates.push(dates[dates.len() - 1].next().unwrap());
    }
    assert_eq!(dates[DAYS - 1].to_string(), TO);
    dates
}

/// A fresh connection to an environment's database: not its pool, whose connections the
/// chaos may have killed.
async fn db(env: &TestEnv) -> tokio_postgres::Client {
    connect(&postgres_settings(&env.env, None)).await.unwrap()
}

async fn texts(env: &TestEnv, sql: &str) -> Vec<String> {
    db(env)
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    db(env)
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The dates of the range whose pipeline never succeeded, as the ledger says.
async fn pending(env: &TestEnv, pipeline: &str) -> Vec<LogicalDate> {
    let done: BTreeSet<String> = db(env)
        .await
        .query(
            "SELECT DISTINCT logical_date::text FROM etl.runs
              WHERE pipeline = $1 AND stage = 'pipeline' AND status = 'succeeded'",
            &[&pipeline],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    dates()
        .into_iter()
        .filter(|d| !done.contains(&d.to_string()))
        .collect()
}

fn settings(
    date: &str,
    input: Value,
    lambda: Option<&RandomFaults>,
    faults: Vec<InjectedFault>,
) -> RunSettings {
    RunSettings {
        // One date at a time, as deployed (the template's default).
        overrides: [("MaxConcurrency".to_string(), "1".to_string())].into(),
        faults,
        lambda_limits: LambdaLimits {
            random_faults: lambda.cloned(),
            ..LambdaLimits::default()
        },
        ..in_process(Some(date), Some(input))
    }
}

/// What the ledger says is still to do: whether `hr` has a date left, and the `marketing`
/// dates.
async fn to_do(env: &TestEnv) -> (bool, Vec<LogicalDate>) {
    (
        !pending(env, "hr").await.is_empty(),
        pending(env, "marketing").await,
    )
}

/// One pass over what is still to do: an `hr` backfill execution over the range (its
/// planner picks the dates that never succeeded), then one `marketing` execution per date
/// not yet done. Returns the executions.
async fn backfill(
    env: &TestEnv,
    (hr, marketing): (bool, Vec<LogicalDate>),
    lambda: Option<&RandomFaults>,
    hr_faults: Vec<InjectedFault>,
) -> Vec<RunReport> {
    let template = template();
    let mut reports = Vec::new();
    if hr {
        let settings = settings(TO, hr_input(), lambda, hr_faults);
        reports.push(
            run_machine(&env.ctx, &template, "hr", &settings)
                .await
                .unwrap(),
        );
    }
    for date in marketing {
        let settings = settings(&date.to_string(), marketing_input(), lambda, Vec::new());
        reports.push(
            run_machine(&env.ctx, &template, "marketing", &settings)
                .await
                .unwrap(),
        );
    }
    reports
}

/// Kills every connection to one database at random moments, from an admin connection to
/// another database.
struct ConnectionKiller {
    paused: Arc<AtomicBool>,
    killed: Arc<AtomicU64>,
    rounds: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionKiller {
    async fn start(database: &str, seed: u64, between: (Duration, Duration)) -> Self {
        let admin = connect(&postgres_settings(&env_source(), None))
            .await
            .unwrap();
        let (paused, killed, rounds) = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (p, k, r) = (
            Arc::clone(&paused),
            Arc::clone(&killed),
            Arc::clone(&rounds),
        );
        let database = database.to_string();
        let draws = SeededDraws::new(seed);
        let task = tokio::spawn(async move {
            loop {
                let (least, most) = between;
                tokio::time::sleep(least + (most - least).mul_f64(draws.next())).await;
                if p.load(Ordering::SeqCst) {
                    continue;
                }
                match admin
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                          WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&database],
                    )
                    .await
                {
                    Ok(rows) => {
                        let n = rows.iter().filter(|row| row.get::<_, bool>(0)).count();
                        k.fetch_add(n as u64, Ordering::Relaxed);
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => eprintln!("the connection killer failed: {err}"),
                }
            }
        });
        Self {
            paused,
            killed,
            rounds,
            task,
        }
    }

    fn set_enabled(&self, enabled: bool) {
        self.paused.store(!enabled, Ordering::SeqCst);
    }
}

impl Drop for ConnectionKiller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Everything that makes the environment chaotic, switched on and off together.
struct Chaos<'p> {
    s3: &'p FaultProxy,
    elasticsearch: &'p FaultProxy,
    postgres: ConnectionKiller,
    lambda: RandomFaults,
}

impl Chaos<'_> {
    /// During the runs only: setting up and checking go through the same proxies and
    /// database.
    fn set_enabled(&self, enabled: bool) {
        self.s3.set_enabled(enabled);
        self.elasticsearch.set_enabled(enabled);
        self.postgres.set_enabled(enabled);
    }

    fn report(&self) -> String {
        let lambda = self.lambda.counts();
        let refused: Vec<String> = lambda
            .refused
            .iter()
            .map(|(error, n)| format!("{n} × {error}"))
            .collect();
        format!(
            "faults survived\n  S3 (through the proxy): {}\n  Elasticsearch (through the proxy): {}\n  \
             PostgreSQL: {} connections killed in {} rounds of pg_terminate_backend\n  \
             Lambda: {} invokes; refused: {}; timed out: {} cut short, {} after the work; \
             and the 5th Hire of round 1 refused with Lambda.EC2ThrottledException",
            self.s3.tally(),
            self.elasticsearch.tally(),
            self.postgres.killed.load(Ordering::Relaxed),
            self.postgres.rounds.load(Ordering::Relaxed),
            lambda.invokes,
            refused.join(", "),
            lambda.timeouts_cut_short,
            lambda.timeouts_after_work,
        )
    }
}

/// What an environment holds at the end, with what legitimately differs between two
/// databases normalised away (see [`natural_keys`]).
#[derive(Debug, PartialEq)]
struct Snapshot {
    employees: Vec<String>,
    rejects: Vec<String>,
    objects: BTreeMap<String, Vec<u8>>,
    /// Index (without the environment's prefix) → document id → source.
    documents: BTreeMap<String, BTreeMap<String, Value>>,
}

/// `employee_id` is an identity column: its values follow the order rows were inserted in,
/// and every rolled-back insert (a killed connection mid-load) uses some up, so the same
/// employee has different ids in two databases. The natural key `(logical_date, batch_seed,
/// batch_index)` is what makes a row the same row; this maps one to the other.
async fn natural_keys(env: &TestEnv) -> BTreeMap<i64, String> {
    db(env)
        .await
        .query(
            "SELECT employee_id, logical_date::text || '/' || batch_seed || '/' || lpad(batch_index::text, 6, '0')
               FROM hr.employees",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// An export CSV with each `employee_id` (the first column) replaced by the natural key, the
/// rows in natural-key order: the export is ordered by `employee_id`, that is by load order
/// (see [`natural_keys`]).
fn normalise_export(csv: &[u8], keys: &BTreeMap<i64, String>) -> Vec<u8> {
    let text = std::str::from_utf8(csv).expect("the export is UTF-8");
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<String> = lines
        .map(|line| {
            let (id, rest) = line.split_once(',').expect("an export row has columns");
            let id: i64 = id.parse().unwrap_or_else(|_| panic!("employee_id {id:?}"));
            let key = keys.get(&id).unwrap_or_else(|| {
                panic!("the export names employee {id}, who is not in the table")
            });
            format!("{key},{rest}")
        })
        .collect();
    rows.sort();
    let mut out = header;
    for row in rows {
        out.push('\n');
        out.push_str(&row);
    }
    out.push('\n');
    out.into_bytes()
}

async fn snapshot(env: &TestEnv) -> Snapshot {
    let keys = natural_keys(env).await;
    let employees = texts(
        env,
        "SELECT (to_jsonb(e) - 'employee_id' - 'loaded_at')::text FROM hr.employees e
          ORDER BY logical_date, batch_seed, batch_index",
    )
    .await;
    let rejects = texts(
        env,
        "SELECT (to_jsonb(r) - 'rejected_at')::text FROM hr.employee_rejects r
          ORDER BY logical_date, batch_seed, batch_index",
    )
    .await;

    let mut objects = BTreeMap::new();
    for entry in s3::list(&env.ctx, &env.ctx.config.bucket, "")
        .await
        .unwrap()
    {
        let mut body = download(&env.ctx, &entry.key).await;
        if entry.key.starts_with("exports/employees/") {
            body = normalise_export(&body, &keys);
        }
        objects.insert(entry.key, body);
    }

    let prefix = env.ctx.config.index_prefix.clone();
    let search = json!({"size": 10000, "query": {"match_all": {}}}).to_string();
    let found: Value = call(
        env.ctx.elasticsearch().unwrap(),
        Method::Post,
        &format!("/{prefix}*/_search"),
        Some(&search),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let hits = found["hits"]["hits"].as_array().expect("search hits");
    assert!(hits.len() < 10000, "more documents than one search returns");
    let mut documents: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for hit in hits {
        let index = hit["_index"].as_str().unwrap();
        let index = index.strip_prefix(&prefix).unwrap_or(index).to_string();
        let (mut id, mut source) = (
            hit["_id"].as_str().unwrap().to_string(),
            hit["_source"].clone(),
        );
        // The employee id again (see `natural_keys`): the document's `_id` and its field.
        if let Some(employee) = source.get("employee_id").and_then(Value::as_i64) {
            let key = keys.get(&employee).unwrap_or_else(|| {
                panic!("document {id} names employee {employee}, who is not in the table")
            });
            assert_eq!(
                id,
                employee.to_string(),
                "a document's _id is its employee id"
            );
            id.clone_from(key);
            source["employee_id"] = Value::String(key.clone());
        }
        let previous = documents
            .entry(index)
            .or_default()
            .insert(id.clone(), source);
        assert!(previous.is_none(), "document {id} found twice");
    }
    Snapshot {
        employees,
        rejects,
        objects,
        documents,
    }
}

/// Every difference between the two, named without printing whole objects.
fn differences(clean: &Snapshot, chaotic: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    let rows = |s: &Snapshot| s.employees.iter().cloned().collect::<BTreeSet<_>>();
    let (clean_rows, chaotic_rows) = (rows(clean), rows(chaotic));
    if clean_rows.len() != clean.employees.len() {
        found.push("the clean run has duplicate employees".to_string());
    }
    if clean.employees != chaotic.employees {
        found.push(format!(
            "hr.employees differ: {} rows clean, {} chaotic; lost: {:?}; extra or changed: {:?}",
            clean.employees.len(),
            chaotic.employees.len(),
            clean_rows
                .difference(&chaotic_rows)
                .take(3)
                .collect::<Vec<_>>(),
            chaotic_rows
                .difference(&clean_rows)
                .take(3)
                .collect::<Vec<_>>(),
        ));
    }
    if clean.rejects != chaotic.rejects {
        found.push(format!(
            "hr.employee_rejects differ: {} clean, {} chaotic",
            clean.rejects.len(),
            chaotic.rejects.len()
        ));
    }

    let keys = |s: &Snapshot| s.objects.keys().cloned().collect::<BTreeSet<_>>();
    let (clean_keys, chaotic_keys) = (keys(clean), keys(chaotic));
    if clean_keys != chaotic_keys {
        found.push(format!(
            "S3 keys differ; missing after the chaos: {:?}; extra: {:?}",
            clean_keys.difference(&chaotic_keys).collect::<Vec<_>>(),
            chaotic_keys.difference(&clean_keys).collect::<Vec<_>>(),
        ));
    }
    for (key, bytes) in &clean.objects {
        match chaotic.objects.get(key) {
            Some(other) if other != bytes => found.push(format!(
                "s3 {key}: {} bytes clean, {} chaotic{}",
                bytes.len(),
                other.len(),
                row_difference(bytes, other)
            )),
            _ => {}
        }
    }

    let indices = |s: &Snapshot| s.documents.keys().cloned().collect::<Vec<_>>();
    if indices(clean) != indices(chaotic) {
        found.push(format!(
            "Elasticsearch indices differ: {:?} clean, {:?} chaotic",
            indices(clean),
            indices(chaotic)
        ));
    }
    let none = BTreeMap::new();
    for (index, docs) in &clean.documents {
        let other = chaotic.documents.get(index).unwrap_or(&none);
        let ids = |d: &BTreeMap<String, Value>| d.keys().cloned().collect::<BTreeSet<_>>();
        let (clean_ids, chaotic_ids) = (ids(docs), ids(other));
        if clean_ids != chaotic_ids {
            found.push(format!(
                "{index}: {} documents clean, {} chaotic; lost: {:?}; extra: {:?}",
                docs.len(),
                other.len(),
                clean_ids
                    .difference(&chaotic_ids)
                    .take(5)
                    .collect::<Vec<_>>(),
                chaotic_ids
                    .difference(&clean_ids)
                    .take(5)
                    .collect::<Vec<_>>(),
            ));
        }
        let changed: Vec<&String> = docs
            .iter()
            .filter(|(id, source)| other.get(*id).is_some_and(|o| o != *source))
            .map(|(id, _)| id)
            .collect();
        if !changed.is_empty() {
            found.push(format!("{index}: documents differ: {changed:?}"));
        }
    }
    found
}

/// For two versions of a normalised export: the rows one lacks, counted by the date they
/// were hired for (the first part of the natural key).
fn row_difference(clean: &[u8], chaotic: &[u8]) -> String {
    let rows = |bytes: &[u8]| -> BTreeSet<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let (clean, chaotic) = (rows(clean), rows(chaotic));
    let by_date = |rows: Vec<&String>| -> BTreeMap<String, usize> {
        let mut dates = BTreeMap::new();
        for row in rows {
            let date = row.split('/').next().unwrap_or_default().to_string();
            *dates.entry(date).or_insert(0) += 1;
        }
        dates
    };
    let lost = by_date(clean.difference(&chaotic).collect());
    let extra = by_date(chaotic.difference(&clean).collect());
    if lost.is_empty() && extra.is_empty() {
        return String::new();
    }
    format!(": rows missing, by hire date {lost:?}; rows extra {extra:?}")
}

/// The ledger's account of a run: attempts and outcomes per stage, and the errors met.
async fn ledger_story(env: &TestEnv) -> String {
    let stages = texts(
        env,
        "SELECT format('%-10s %-9s %-10s %5s rows, attempts up to %s', pipeline, stage, status, count(*), max(attempt))
           FROM etl.runs GROUP BY pipeline, stage, status ORDER BY pipeline, stage, status",
    )
    .await;
    let errors = texts(
        env,
        "SELECT format('%5s × %s', count(*), COALESCE(error_name, '(none: ' || status || ')'))
           FROM etl.runs WHERE status IN ('failed', 'abandoned')
          GROUP BY error_name, status ORDER BY count(*) DESC",
    )
    .await;
    format!(
        "  {}\n  errors and abandoned attempts:\n  {}",
        stages.join("\n  "),
        errors.join("\n  ")
    )
}

/// The clean run: every execution must succeed at once.
async fn clean_run() -> TestEnv {
    let clean = TestEnv::with_lake(LAKE).await.with_schema().await;
    for report in backfill(&clean, to_do(&clean).await, None, Vec::new()).await {
        assert!(
            report.succeeded(),
            "a clean run failed: {:?}",
            report.failure()
        );
    }
    for pipeline in ["hr", "marketing"] {
        assert!(
            pending(&clean, pipeline).await.is_empty(),
            "clean {pipeline} not done"
        );
    }
    clean
}

/// The fault proxies in front of the local S3 and Elasticsearch servers, faults off.
async fn proxies() -> (FaultProxy, FaultProxy) {
    let services = env_source();
    let upstream = |var: &str| {
        services
            .get(var)
            .unwrap_or_else(|| panic!("{var}"))
            .to_string()
    };
    let s3 = FaultPlan {
        flavor: Flavor::S3,
        rate: 0.06,
        after_share: 0.4,
        seed: 0xC4A0_5001,
    };
    let elasticsearch = FaultPlan {
        flavor: Flavor::Elasticsearch,
        rate: 0.12,
        after_share: 0.4,
        seed: 0xC4A0_5002,
    };
    (
        FaultProxy::start(&upstream("AWS_ENDPOINT_URL"), s3).await,
        FaultProxy::start(&upstream("ELASTICSEARCH_URL"), elasticsearch).await,
    )
}

/// An environment whose S3 and Elasticsearch are behind the proxies.
async fn chaotic_env((s3, elasticsearch): &(FaultProxy, FaultProxy)) -> TestEnv {
    let env = TestEnv::with_lake_and(
        LAKE,
        &[
            ("AWS_ENDPOINT_URL", &s3.url),
            ("ELASTICSEARCH_URL", &elasticsearch.url),
        ],
    )
    .await
    .with_schema()
    .await;
    // A date's lease outlives an execution that failed without recording the date (a
    // record-run cut short, a step without a Catch) by its expiry, 30 minutes by default:
    // "longer than the longest wait between two stages". Retry waits are scaled to nothing
    // here (time_scale 0), so the expiry is scaled down with them, as an operator may
    // (etl.lease_policy); otherwise the next round could not take such a date over.
    db(&env)
        .await
        .batch_execute("UPDATE etl.lease_policy SET ttl = interval '2 s'")
        .await
        .unwrap();
    env
}

/// Prints the end of an `hr` execution that failed in a step of its own, not as
/// `DatesFailed`, and a round's failures.
fn print_round(round: usize, reports: &[RunReport], left: (usize, usize)) {
    for report in reports {
        if report.machine == "hr" && report.failure().is_some_and(|f| f.error != "DatesFailed") {
            let tail = report.history.len().saturating_sub(30);
            eprintln!(
                "{} failed outside its dates; its last events:",
                report.execution_name
            );
            for event in &report.history[tail..] {
                eprintln!("  {event:?}");
            }
        }
    }
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.failure().map(|f| {
                let cause: String = f.cause.chars().take(300).collect();
                format!("{} {}: {cause}", f.name, f.error)
            })
        })
        .collect();
    eprintln!(
        "chaos round {round}: {} executions, {} failed {failed:#?}; dates left: hr {}, marketing {}",
        reports.len(),
        failed.len(),
        left.0,
        left.1
    );
}

/// Runs the chaotic backfill again and again, a new execution each time, until the ledger
/// says every date of both pipelines succeeded. Returns (rounds, executions).
async fn until_done(env: &TestEnv, chaos: &Chaos<'_>) -> (usize, usize) {
    let mut executions = 0;
    for round in 1..=MAX_ROUNDS {
        let work = to_do(env).await;
        // Besides the random faults, the first round's 5th Hire invoke fails with an error no
        // Retry matches (EC2 throttling a VPC function's start-up, before it runs): whatever
        // the dice say, one date is loaded after later dates ran.
        let late_hire = if round == 1 {
            vec![InjectedFault {
                state: "Hire".into(),
                nth: 5,
                error: "Lambda.EC2ThrottledException".into(),
            }]
        } else {
            Vec::new()
        };
        chaos.set_enabled(true);
        let reports = backfill(env, work, Some(&chaos.lambda), late_hire).await;
        chaos.set_enabled(false);
        executions += reports.len();
        let left = (
            pending(env, "hr").await.len(),
            pending(env, "marketing").await.len(),
        );
        print_round(round, &reports, left);
        if left == (0, 0) {
            return (round, executions);
        }
    }
    panic!(
        "still not done after {MAX_ROUNDS} rounds: hr {:?}, marketing {:?}\n{}\n{}",
        pending(env, "hr").await,
        pending(env, "marketing").await,
        chaos.report(),
        ledger_story(env).await,
    );
}

/// Every lease not released, each with its date's ledger rows: what a failure of the "no
/// lease left held" check needs to be debugged.
async fn held_leases(env: &TestEnv) -> Vec<String> {
    let client = db(env).await;
    let leases = client
        .query(
            "SELECT pipeline, logical_date, format('%s %s: owner %s, execution %s, acquired %s, \
                    renewed %s, expires %s (now %s)', pipeline, logical_date, owner, \
                    COALESCE(execution, '(none: held for one stage)'), acquired_at, renewed_at, \
                    expires_at, now())
               FROM etl.leases WHERE released_at IS NULL ORDER BY pipeline, logical_date",
            &[],
        )
        .await
        .unwrap();
    let mut held = Vec::new();
    for lease in leases {
        let (pipeline, date): (String, chrono::NaiveDate) = (lease.get(0), lease.get(1));
        held.push(lease.get(2));
        for run in client
            .query(
                "SELECT format('    run %s %-8s %-9s attempt %s, execution %s, %s .. %s: %s', \
                        run_id, stage, status, attempt, execution, started_at, finished_at, \
                        left(error_cause, 300))
                   FROM etl.runs WHERE pipeline = $1 AND logical_date = $2 ORDER BY run_id",
                &[&pipeline, &date],
            )
            .await
            .unwrap()
        {
            held.push(run.get(0));
        }
    }
    held
}

/// The ledger tells the story: no attempt left running, no lease left held; in the chaotic
/// run, retries and their errors recorded; in the clean run, none.
async fn check_ledgers(clean: &TestEnv, chaotic: &TestEnv) {
    for env in [clean, chaotic] {
        let running = "SELECT count(*) FROM etl.runs WHERE status = 'running'";
        assert_eq!(count(env, running).await, 0, "an attempt is left running");
        let held = held_leases(env).await;
        assert!(
            held.is_empty(),
            "a lease is still held:\n{}",
            held.join("\n")
        );
    }
    let faulty = "SELECT count(*) FROM etl.runs WHERE status <> 'succeeded' OR attempt > 1";
    assert_eq!(
        count(clean, faulty).await,
        0,
        "the clean run met a fault:\n{}",
        ledger_story(clean).await
    );
    for (what, sql) in [
        (
            "a stage's second attempt",
            "SELECT count(*) FROM etl.runs WHERE stage <> 'pipeline' AND attempt > 1",
        ),
        (
            "a failed stage with its error",
            "SELECT count(*) FROM etl.runs WHERE status = 'failed' AND error_name IS NOT NULL",
        ),
        (
            "a failed date",
            "SELECT count(*) FROM etl.runs WHERE stage = 'pipeline' AND status = 'failed'",
        ),
    ] {
        assert!(count(chaotic, sql).await > 0, "the ledger shows no {what}");
    }
}

/// Every kind of fault fired at least once: the run survived each.
fn check_every_fault_fired(chaos: &Chaos<'_>) {
    let (s3, es): (Tally, Tally) = (chaos.s3.tally(), chaos.elasticsearch.tally());
    for (service, tally) in [("S3", &s3), ("Elasticsearch", &es)] {
        for status in [500, 503, 429] {
            assert!(
                tally.with_status(status) > 0,
                "{service} never answered {status}: {tally}"
            );
        }
        for when in [When::Before, When::After] {
            assert!(
                tally.when(when) > 0,
                "{service}: no fault {when:?} forwarding: {tally}"
            );
        }
    }
    assert!(
        chaos.postgres.killed.load(Ordering::Relaxed) > 0,
        "no connection killed"
    );
    let lambda = chaos.lambda.counts();
    assert!(
        lambda.refused.get(LAMBDA_THROTTLED).is_some_and(|n| *n > 0),
        "no throttle"
    );
    assert!(
        lambda.timeouts_cut_short > 0,
        "no timeout cut a function short"
    );
    assert!(lambda.timeouts_after_work > 0, "no timeout after the work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_under_random_faults_ends_exactly_as_a_clean_one() {
    let started = Instant::now();
    let clean = clean_run().await;
    let clean_done = started.elapsed();

    // The proxies are declared before the environment: they outlive the clean-up of its
    // bucket and indices, which goes through them.
    let proxies = proxies().await;
    let chaotic = chaotic_env(&proxies).await;
    let chaos = Chaos {
        s3: &proxies.0,
        elasticsearch: &proxies.1,
        postgres: ConnectionKiller::start(
            &chaotic.db.name,
            0xC4A0_5003,
            (Duration::from_millis(300), Duration::from_millis(1500)),
        )
        .await,
        // Most stages take 5-100 ms here: some timeouts end one mid-way, others after it.
        lambda: RandomFaults::throttles_and_timeouts(0xC4A0_5004, 0.04, 0.04)
            .unwrap()
            .with_longest_run(Duration::from_millis(50)),
    };
    let (rounds, executions) = until_done(&chaotic, &chaos).await;
    let chaos_done = started.elapsed();
    eprintln!(
        "{}\nledger of the chaotic run ({rounds} rounds, {executions} executions):\n{}",
        chaos.report(),
        ledger_story(&chaotic).await
    );
    check_ledgers(&clean, &chaotic).await;
    check_every_fault_fired(&chaos);

    // Same data, nothing lost, nothing twice.
    let (clean_snapshot, chaotic_snapshot) = (snapshot(&clean).await, snapshot(&chaotic).await);
    eprintln!(
        "chaos backfill: clean run {:.1} s, chaotic run {:.1} s ({rounds} rounds), \
         snapshots {:.1} s",
        clean_done.as_secs_f64(),
        (chaos_done - clean_done).as_secs_f64(),
        (started.elapsed() - chaos_done).as_secs_f64()
    );
    assert_eq!(
        clean_snapshot.employees.len(),
        DAYS * 40 - clean_snapshot.rejects.len()
    );
    assert_eq!(
        clean_snapshot
            .documents
            .values()
            .map(BTreeMap::len)
            .sum::<usize>(),
        clean_snapshot.employees.len()
    );
    let differences = differences(&clean_snapshot, &chaotic_snapshot);
    assert!(
        differences.is_empty(),
        "the chaotic run does not end as the clean one ({} differences; an export also says \
         which rows it lacks, by hire date):\n{}",
        differences.len(),
        differences.join("\n")
    );
}
