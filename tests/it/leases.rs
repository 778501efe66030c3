//! The (pipeline, logical date) lease against a real PostgreSQL: two executions of one date
//! run one at a time, and an attempt whose process died ends `abandoned`, with its reason,
//! whether the next attempt, its own execution's record-run, a takeover after the lease
//! expired, or `etl runs` finds it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etl_cli::runner::{run_machine, RunSettings};
use etl_core::error::LeaseError;
use etl_core::ledger::{self, Counted, RowCounts};
use etl_core::search::index::EMPLOYEES;
use etl_core::stages::hr_export::{self, ExportEvent};
use etl_core::stages::hr_hire::{self, HireEvent, HireOutput};
use etl_core::stages::record_run::{self, RecordEvent};
use etl_core::{lease, Context, ErrorKind, Service, StageError};
use integration_tests::{
    cli, connect, context, doc_count, download, in_process, postgres_settings, scalar, template,
    TestEnv, LAKE,
};
use serde_json::json;
use tokio::task::JoinHandle;

const DAY: &str = "2026-11-25";

fn hire_event(date: &str, count: u64, execution: &str) -> HireEvent {
    serde_json::from_value(json!({
        "logical_date": date, "count": count, "seed": 3, "execution": execution
    }))
    .unwrap()
}

/// One ledger row's status and cause, by stage, date and attempt.
async fn attempt(ctx: &Context, stage: &str, date: &str, attempt: i32) -> (String, Option<String>) {
    let row = ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT status, error_cause FROM etl.runs
              WHERE pipeline = 'hr' AND stage = $1 AND logical_date = $2::text::date AND attempt = $3",
            &[&stage, &date, &attempt],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Starts a big hire and kills it once its COPY runs, as a Lambda timeout or a crash would:
/// the stage runs on clients of its own (its own process and pool), the task is dropped
/// mid-flight (no ledger write, no lease release, no more renewals) and its session is
/// terminated. Leaves its attempt `running`.
async fn kill_mid_hire(env: &TestEnv, date: &str, execution: &str) {
    let doomed = Arc::new(context(&env.env).await);
    let event = hire_event(date, 400_000, execution);
    let stage_ctx = doomed.clone();
    let load: JoinHandle<Result<HireOutput, StageError>> =
        tokio::spawn(async move { hr_hire::run(&stage_ctx, event).await });
    let admin = env.ctx.postgres().await.unwrap();
    let copying = "SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND query LIKE 'COPY hr.employees%'";
    let mut seen = false;
    for _ in 0..300 {
        if admin
            .query_one(copying, &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            > 0
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "never saw the COPY running");
    load.abort();
    assert!(load.await.unwrap_err().is_cancelled());
    drop(doomed);
    // The process is gone, so is its session: nothing may keep holding the staging rows.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'COPY hr.employees%'",
            &[],
        )
        .await
        .unwrap();
}

/// `etl runs --pipeline hr` against this test's database.
fn etl_runs(env: &TestEnv) -> String {
    let args = ["runs", "--pipeline", "hr"];
    let out = cli::output(cli::command(&args).env("DATABASE_URL", &env.db.url));
    cli::stdout_of_success(&args, out)
}

/// The line of `etl runs` for one stage's attempt.
fn line_of<'a>(table: &'a str, stage: &str, attempt: i32) -> &'a str {
    table
        .lines()
        .find(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(2) == Some(&stage) && cols.get(4) == Some(&attempt.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("no {stage} attempt {attempt} in\n{table}"))
}

/// What a run of the date left: employees, their digest, search documents, the export.
async fn outcome(env: &TestEnv) -> (i64, String, u64, Vec<u8>) {
    let digest: String = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT md5(string_agg(employee_id || full_name || email || salary::text, ',' ORDER BY employee_id))
               FROM hr.employees",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (
        scalar(&env.ctx, "SELECT count(*) FROM hr.employees").await,
        digest,
        doc_count(&env.ctx, EMPLOYEES.name).await,
        download(
            &env.ctx,
            &format!("exports/employees/dt={DAY}/employees.csv"),
        )
        .await,
    )
}

fn hr_settings(execution: &str) -> RunSettings {
    RunSettings {
        // A Retry wait of 1 s × 0.01: real, but far shorter than the other run.
        time_scale: 0.01,
        overrides: HashMap::from([("RetryIntervalSeconds".to_string(), "1".to_string())]),
        execution_name: Some(execution.to_string()),
        ..in_process(
            Some(DAY),
            Some(json!({"params": {"count": 5000, "seed": 5}})),
        )
    }
}

#[tokio::test]
async fn two_executions_of_one_date_run_one_at_a_time() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let template = template();
    let (a, b) = (hr_settings("hr-dup-a"), hr_settings("hr-dup-b"));
    let (first, second) = tokio::join!(
        run_machine(&env.ctx, &template, "hr", &a),
        run_machine(&env.ctx, &template, "hr", &b),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let (winner, loser) = match (&first.output, &second.output) {
        (Ok(_), Err(_)) => (&first, &second),
        (Err(_), Ok(_)) => (&second, &first),
        _ => panic!(
            "exactly one execution must win: {:?} / {:?}",
            first.output, second.output
        ),
    };
    // The loser was refused at its first stage of the date, retried after the wait, refused
    // again, and its date failed with the typed error naming the holder (in the ledger); the
    // execution then failed naming the date.
    let failure = loser.output.as_ref().unwrap_err();
    assert_eq!(failure.error, "DatesFailed", "{failure:?}");
    assert!(
        failure.cause.contains(DAY) && failure.cause.contains("Retryable"),
        "{failure:?}"
    );
    let client = env.ctx.postgres().await.unwrap();
    let cause: String = client
        .query_one(
            "SELECT error_cause FROM etl.runs WHERE stage = 'pipeline' AND status = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let holder = format!("is being run by execution {}", winner.execution_name);
    assert!(cause.contains(&holder), "{cause}");

    let ledger = |sql: &'static str| scalar(&env.ctx, sql);
    assert_eq!(
        ledger("SELECT count(*) FROM etl.runs WHERE stage = 'pipeline' AND status = 'succeeded'")
            .await,
        1
    );
    assert_eq!(
        ledger("SELECT count(*) FROM etl.runs WHERE stage = 'pipeline' AND status = 'failed'")
            .await,
        1
    );
    assert_eq!(
        ledger("SELECT count(*) FROM etl.runs WHERE stage = 'hire'").await,
        1,
        "the loser never started a hire"
    );
    assert_eq!(
        ledger("SELECT count(*) FROM etl.runs WHERE status = 'running'").await,
        0
    );
    assert_eq!(
        ledger("SELECT count(*) FROM etl.leases WHERE released_at IS NULL").await,
        0
    );

    // The same rows, documents and export as one clean run of the date.
    let clean = TestEnv::with_lake(LAKE).await.with_schema().await;
    run_machine(&clean.ctx, &template, "hr", &hr_settings("hr-clean"))
        .await
        .unwrap()
        .output
        .unwrap();
    assert_eq!(outcome(&env).await, outcome(&clean).await);
}

#[tokio::test]
async fn a_killed_attempt_is_abandoned_by_the_next_attempt_and_listed_so() {
    let env = TestEnv::new(&[Service::Postgres]).await.with_schema().await;
    kill_mid_hire(&env, DAY, "hr-killed").await;
    assert_eq!(attempt(&env.ctx, "hire", DAY, 1).await.0, "running");

    // Step Functions' retry: the same execution, so its lease is renewed, not refused.
    let retry = hr_hire::run(&env.ctx, hire_event(DAY, 1000, "hr-killed"))
        .await
        .unwrap();
    assert_eq!(retry.loaded + retry.rejected, 1000);
    let (status, cause) = attempt(&env.ctx, "hire", DAY, 1).await;
    assert_eq!(status, "abandoned");
    assert_eq!(
        cause.as_deref(),
        Some("superseded by attempt 2 of execution hr-killed")
    );
    assert_eq!(attempt(&env.ctx, "hire", DAY, 2).await.0, "succeeded");

    let table = etl_runs(&env);
    let line = line_of(&table, "hire", 1);
    assert!(
        line.contains(" abandoned ")
            && line.ends_with("superseded by attempt 2 of execution hr-killed"),
        "{table}"
    );
}

#[tokio::test]
async fn record_run_abandons_what_its_execution_left_running_and_releases_the_lease() {
    let env = TestEnv::new(&[Service::Postgres]).await.with_schema().await;
    kill_mid_hire(&env, DAY, "hr-timed-out").await;
    // The state machine's Catch (a Lambda timeout, say) records the date's failure.
    let event: RecordEvent = serde_json::from_value(json!({
        "pipeline": "hr", "logical_date": DAY, "execution": "hr-timed-out",
        "error": {"Error": "States.Timeout", "Cause": "Task timed out"}
    }))
    .unwrap();
    record_run::run(&env.ctx, event).await.unwrap();
    let (status, cause) = attempt(&env.ctx, "hire", DAY, 1).await;
    assert_eq!(status, "abandoned");
    assert_eq!(
        cause.as_deref(),
        Some("execution hr-timed-out ended the date while this attempt was still running")
    );
    assert_eq!(
        scalar(
            &env.ctx,
            "SELECT count(*) FROM etl.leases WHERE released_at IS NOT NULL"
        )
        .await,
        1
    );
    // Released: another execution may run the date at once.
    hr_hire::run(&env.ctx, hire_event(DAY, 100, "hr-next"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_lone_zombie_is_reaped() {
    let env = TestEnv::new(&[Service::Postgres]).await.with_schema().await;
    // The expiry is the database's lease policy, read by every stage at each renewal.
    env.ctx
        .postgres()
        .await
        .unwrap()
        .batch_execute("UPDATE etl.lease_policy SET ttl = interval '2 s'")
        .await
        .unwrap();
    let ctx = env.ctx.clone();

    kill_mid_hire(&env, DAY, "hr-a").await;
    // Still within its lease: refused, typed and retryable, naming the holder.
    let err = hr_hire::run(&ctx, hire_event(DAY, 100, "hr-b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(
        matches!(&err, StageError::Lease(LeaseError::Held { holder, .. }) if holder == "execution hr-a"),
        "{err:?}"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    hr_hire::run(&ctx, hire_event(DAY, 100, "hr-b"))
        .await
        .unwrap();
    let (status, cause) = attempt(&ctx, "hire", DAY, 1).await;
    assert_eq!(status, "abandoned");
    let cause = cause.unwrap();
    assert!(
        cause.starts_with("lease expired at ")
            && cause.ends_with("(held by execution hr-a); taken over by execution hr-b"),
        "{cause}"
    );
    assert_eq!(attempt(&ctx, "hire", DAY, 2).await.0, "succeeded");
    let owner: String = ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT owner FROM etl.leases WHERE logical_date = $1::text::date",
            &[&DAY],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "hr-b");

    // A process that died with nobody after it: `etl runs` finds its lease expired.
    let other_day = "2026-11-26";
    kill_mid_hire(&env, other_day, "hr-c").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let table = etl_runs(&env);
    let line = table
        .lines()
        .find(|l| l.contains(other_day))
        .unwrap_or_else(|| panic!("no {other_day} in\n{table}"));
    assert!(
        line.contains(" abandoned ")
            && line.contains("lease expired at ")
            && line.ends_with("its process died"),
        "{table}"
    );
    assert_eq!(attempt(&ctx, "hire", other_day, 1).await.0, "abandoned");
}

/// The run ledger's error for a refused execution reads as the operator needs it.
#[test]
fn a_refusal_names_the_date_the_holder_and_the_rule() {
    let err = StageError::from(LeaseError::Held {
        pipeline: "hr".into(),
        date: DAY.parse().unwrap(),
        holder: "execution hr-manual".into(),
        expires_at: "2026-11-25T01:30:00Z".parse().unwrap(),
    });
    assert_eq!(err.kind().as_str(), "Retryable");
    assert_eq!(
        err.to_string(),
        "hr 2026-11-25 is being run by execution hr-manual (lease until 2026-11-25 01:30:00 UTC); \
         one run per pipeline and date at a time"
    );
}

/// The sessions of this test's database waiting for a lock another one holds.
const WAITING_ON_A_LOCK: &str = "SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'";

/// Waits until `sql` counts a row (at most 30 s).
async fn until_counted(ctx: &Context, sql: &str, what: &str) {
    for _ in 0..3000 {
        if scalar(ctx, sql).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {what}");
}

/// Ends a stage held up on a lock as a Lambda timeout ends an invocation: its task dropped,
/// its sessions terminated (the process is gone, its statements with it).
async fn end_blocked_stage<O: std::fmt::Debug>(
    ctx: &Context,
    stage: JoinHandle<Result<O, StageError>>,
    doomed: Arc<Context>,
) {
    stage.abort();
    assert!(stage.await.unwrap_err().is_cancelled());
    drop(doomed);
    ctx.postgres()
        .await
        .unwrap()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap();
}

/// A date's lease: its owner, and whether it was given back.
async fn lease_of(ctx: &Context, date: &str) -> (String, bool) {
    let row = ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT owner, released_at IS NOT NULL FROM etl.leases
              WHERE pipeline = 'hr' AND logical_date = $1::text::date",
            &[&date],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn export_event(date: &str, execution: &str) -> ExportEvent {
    serde_json::from_value(json!({"logical_date": date, "execution": execution})).unwrap()
}

/// hr-export writes again the snapshots of later dates that an earlier date loaded late made
/// stale, each under the later date's lease, for that refresh only. An export ended in the
/// middle of one (a Lambda timeout; here, after taking the lease, before its ledger row)
/// leaves that lease held until it expires. The same export retried by the same execution
/// (the Task's Retry, or the hr machine's RetryFailedDates) must take it back and finish,
/// not be refused by its own dead attempt; another execution is refused, told whose it is.
#[tokio::test]
async fn an_export_ended_mid_refresh_is_retried_by_its_execution_not_refused() {
    const EARLIER: &str = "2026-11-24";
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let ctx = env.ctx.clone();
    hr_hire::run(&ctx, hire_event(DAY, 200, "hr-a"))
        .await
        .unwrap();
    hr_export::run(&ctx, export_event(DAY, "hr-a"))
        .await
        .unwrap();
    let done: RecordEvent =
        serde_json::from_value(json!({"pipeline": "hr", "logical_date": DAY, "execution": "hr-a"}))
            .unwrap();
    record_run::run(&ctx, done).await.unwrap();
    hr_hire::run(&ctx, hire_event(EARLIER, 100, "hr-b"))
        .await
        .unwrap();

    // An uncommitted attempt 2 of DAY's export holds up the refresh's ledger row, after its
    // lease is taken.
    let blocker = connect(&postgres_settings(&env.env, None)).await.unwrap();
    blocker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO etl.runs (pipeline, stage, logical_date, attempt, status)
                    VALUES ('hr', 'export', '{DAY}', 2, 'running')"
        ))
        .await
        .unwrap();
    let doomed = Arc::new(context(&env.env).await);
    let stage_ctx = doomed.clone();
    let export =
        tokio::spawn(
            async move { hr_export::run(&stage_ctx, export_event(EARLIER, "hr-b")).await },
        );
    until_counted(&ctx, WAITING_ON_A_LOCK, "the refresh held up").await;
    end_blocked_stage(&ctx, export, doomed).await;
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let label = "a refresh from 2026-11-24 for execution hr-b";
    assert_eq!(lease_of(&ctx, DAY).await, (label.to_string(), false));

    let err = lease::acquire(&ctx, "hr", DAY.parse().unwrap(), Some("hr-c"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StageError::Lease(LeaseError::Held { holder, .. }) if holder == label),
        "{err:?}"
    );

    let retry = hr_export::run(&ctx, export_event(EARLIER, "hr-b"))
        .await
        .unwrap();
    assert_eq!(retry.refreshed, vec![DAY.parse().unwrap()]);
    assert_eq!(lease_of(&ctx, DAY).await, (label.to_string(), true));
    assert_eq!(attempt(&ctx, "export", DAY, 2).await.0, "succeeded");
    let (exported, hired) = (
        scalar(
            &ctx,
            &format!(
                "SELECT rows_out FROM etl.runs
                  WHERE stage = 'export' AND logical_date = '{DAY}' AND attempt = 2"
            ),
        )
        .await,
        scalar(
            &ctx,
            &format!("SELECT count(*) FROM hr.employees WHERE hire_date <= '{DAY}'"),
        )
        .await,
    );
    assert_eq!(exported, hired, "DAY's snapshot holds both dates' hires");
}

/// What a stage whose work is only waited for counts: nothing.
#[derive(Debug)]
struct Waited;

impl Counted for Waited {
    fn counts(&self) -> RowCounts {
        RowCounts::default()
    }
}

/// A direct attempt gives its lease back in the statement that closes its ledger row. Were
/// they two statements, an invocation ended between them (a Lambda timeout, a killed
/// connection; here, held up by a lock on the lease row, then ended) would leave the attempt
/// finished and its lease held, which nothing releases: a refreshed snapshot's date is done,
/// no later run takes it over. Both happen or neither: here the attempt is still `running`,
/// covered by the lease until it expires, then abandoned by whoever comes next.
#[tokio::test]
async fn a_direct_attempt_ended_while_finishing_leaves_its_row_and_lease_agreeing() {
    let env = TestEnv::new(&[Service::Postgres]).await.with_schema().await;
    let ctx = env.ctx.clone();
    let doomed = Arc::new(context(&env.env).await);
    let (end_work, work_ends) = tokio::sync::oneshot::channel::<()>();
    let stage_ctx = doomed.clone();
    let stage = tokio::spawn(async move {
        let work = async move {
            work_ends.await.ok();
            Ok(Waited)
        };
        ledger::tracked(&stage_ctx, "hr", "export", DAY.parse().unwrap(), None, work).await
    });
    until_counted(
        &ctx,
        "SELECT count(*) FROM etl.runs WHERE status = 'running'",
        "the attempt begun",
    )
    .await;
    let locker = connect(&postgres_settings(&env.env, None)).await.unwrap();
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM etl.leases WHERE pipeline = 'hr' AND logical_date = '{DAY}'
                     FOR UPDATE"
        ))
        .await
        .unwrap();
    end_work.send(()).unwrap();
    until_counted(&ctx, WAITING_ON_A_LOCK, "the stage finishing held up").await;
    end_blocked_stage(&ctx, stage, doomed).await;
    locker.batch_execute("ROLLBACK").await.unwrap();

    let (status, _) = attempt(&ctx, "export", DAY, 1).await;
    let (owner, released) = lease_of(&ctx, DAY).await;
    assert!(owner.starts_with("direct-"), "{owner}");
    assert_eq!(
        (status.as_str(), released),
        ("running", false),
        "the attempt's row and its lease must end together"
    );
}
