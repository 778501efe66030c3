//! Documented maximums (issue #16 item 10): how many dates one `hr` execution can run inside
//! Step Functions' limits (256 KiB per state, 25,000 history events), measured on the real
//! definition with stand-ins for its functions that answer what the stages answer at their
//! largest; and the planner splitting a longer run into several executions instead of
//! letting it fail at run time.
//!
//! The table in docs/pipelines.md § Maximums comes from
//! `cargo test -p integration-tests --test it -- maximums::the_table --nocapture`.

use std::collections::HashMap;
use std::sync::Arc;

use asl::lambda::{LambdaFunctions, LambdaTasks};
use asl::limits::{json_size, HISTORY_LIMIT_EVENTS, PAYLOAD_LIMIT_BYTES};
use asl::{errors, execute, Execution, Failure, Journal, RunOptions, TaskRequest};
use etl_cli::functions::function_failure;
use etl_cli::runner::load_machine;
use etl_core::error::MAX_ERROR_MESSAGE_BYTES;
use etl_core::ledger;
use etl_core::stages::hr_export::export_key;
use etl_core::stages::hr_hire::MAX_COUNT;
use etl_core::stages::hr_sync;
use etl_core::stages::plan::{
    self, plan_items, PlanDatesEvent, PlanDatesOutput, PlanOutput, Remaining, RunRequest,
    MAX_DATES, MAX_DATES_PER_EXECUTION,
};
use etl_core::LogicalDate;
use futures::future::BoxFuture;
use futures::FutureExt;
use integration_tests::{cli, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

/// What one execution may use of each limit: three quarters, leaving room for what the
/// stand-ins cannot foresee (a stage's output growing, more retries than the worst case
/// below).
const PAYLOAD_MARGIN_BYTES: usize = PAYLOAD_LIMIT_BYTES * 3 / 4;
const HISTORY_MARGIN_EVENTS: u64 = HISTORY_LIMIT_EVENTS * 3 / 4;

/// The first date of every measured range.
const FIRST: &str = "2026-01-01";

/// Step Functions' longest execution name (80 characters): it is in every planned item.
fn execution_name() -> String {
    let name = format!(
        "{:x<80}",
        "hr-backfill-2026-01-01-2026-12-31-rerun-after-the-database-migration-"
    );
    assert_eq!(name.len(), 80);
    name
}

/// S3's longest bucket name (63 characters), in every export's answer.
fn bucket() -> String {
    let bucket = format!(
        "{:x<63}",
        "etl-pipelines-databucket-123456789012-eu-central-1-"
    );
    assert_eq!(bucket.len(), 63);
    bucket
}

/// The heaviest a capped error message can be in a state: every character one that JSON
/// escapes (a quote or a backslash takes two bytes in the Lambda's error document, four once
/// that document is a string inside the state), cut by the same cap the stages apply.
fn heaviest_message() -> String {
    format!("PostgreSQL: {}", "\"\\".repeat(4 * MAX_ERROR_MESSAGE_BYTES))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Every date succeeds at once.
    Succeed,
    /// Every date's Hire fails (`Fatal`, the heaviest message) and fails again in the second
    /// pass: the execution fails at the first date's `HireAgain`, every date's error on board.
    FailTwice,
    /// Every date's Hire fails (`Retryable`, the heaviest message) after its retry, then the
    /// date recovers in the second pass: every error carried to the end, and both passes'
    /// history.
    Recover,
    /// As `Recover`, with every invocation throttled (`Lambda.TooManyRequestsException`)
    /// until the Retry's last attempt: the longest history a date writes.
    Throttled,
    /// As `FailTwice`, and recording each date's failure fails too (`Retryable`, the heaviest
    /// message, after its retries): a second error for every date.
    LedgerFailsToo,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Succeed,
        Scenario::FailTwice,
        Scenario::Recover,
        Scenario::Throttled,
        Scenario::LedgerFailsToo,
    ];

    /// How an execution of this scenario must end when nothing breaks a limit.
    fn expected_end(self) -> &'static str {
        match self {
            Scenario::FailTwice | Scenario::LedgerFailsToo => "Fatal",
            _ => "SUCCEEDED",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Succeed => "all succeed",
            Scenario::FailTwice => "all fail in Hire twice (1 KiB message)",
            Scenario::Recover => "all fail in Hire, recover in the second pass",
            Scenario::Throttled => "as above, every invoke throttled 6 times",
            Scenario::LedgerFailsToo => "all fail in Hire twice, and so does recording it",
        }
    }
}

/// The retries of `Lambda.TooManyRequestsException` every Task of `hr` allows.
const LAMBDA_RETRIES: u32 = 6;

/// The `hr` functions as they answer at their largest: `hr_hire::MAX_COUNT` employees a date
/// (hr-hire's maximum), the longest names, the largest counters.
struct StandIns {
    scenario: Scenario,
    bucket: String,
}

impl LambdaFunctions for StandIns {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        let answer = self.answer(function, &payload, request);
        async move { answer }.boxed()
    }
}

impl StandIns {
    fn answer(
        &self,
        function: &str,
        payload: &Value,
        request: &TaskRequest,
    ) -> Result<Value, Failure> {
        if self.scenario == Scenario::Throttled && request.retry_count < LAMBDA_RETRIES {
            return Err(Failure::new(
                "Lambda.TooManyRequestsException",
                "Rate Exceeded. (Service: Lambda, Status Code: 429, Request ID: 5c8e3f0a-1b2c-4d5e-8f90-a1b2c3d4e5f6)",
            ));
        }
        let date = payload["logical_date"].as_str().unwrap_or("");
        match function {
            "hr-schema" => Ok(json!({"schema_version": 6, "applied": [], "already_applied": 6})),
            "plan-dates" => Ok(plan_every_date(payload)),
            "hr-hire" => {
                let (fails, error) = match self.scenario {
                    Scenario::Succeed => (false, ""),
                    Scenario::FailTwice | Scenario::LedgerFailsToo => (true, "Fatal"),
                    Scenario::Recover | Scenario::Throttled => {
                        (request.state == "Hire", "Retryable")
                    }
                };
                if fails {
                    return Err(function_failure(error, &heaviest_message()));
                }
                Ok(json!({
                    "logical_date": date, "seed": u64::MAX, "locale": "es_ES",
                    "generated": MAX_COUNT, "loaded": MAX_COUNT,
                    "already_present": MAX_COUNT, "rejected": MAX_COUNT
                }))
            }
            "hr-export" => Ok(json!({
                "logical_date": date, "bucket": self.bucket, "key": export_key(date.parse().unwrap()),
                "rows": 732_000_000_u64, "bytes": 99_999_999_999_u64, "parts": 10_000
            })),
            // Hire's 2,000,000 employees at hr-sync's default 700,000 per invocation: the Sync
            // loop invokes it three times, each with the previous one's progress.
            "hr-sync" => {
                let before = payload["sync"]["invocations"].as_u64().unwrap_or(0);
                let invocations = before + 1;
                let per_invocation = hr_sync::DEFAULT_MAX_DOCS_PER_INVOCATION;
                let indexed = (invocations * per_invocation).min(2_000_000);
                Ok(json!({
                    "logical_date": date, "index": "etl-prod-empleados_search", "full": false,
                    "selected": per_invocation, "indexed": per_invocation, "failed": 0,
                    "retried": 999_999, "requests": 999_999, "failures": [],
                    "progress": {"invocations": invocations, "indexed": indexed, "failed": 0,
                                 "more": indexed < 2_000_000, "after_employee_id": i64::MAX}
                }))
            }
            "record-run"
                if self.scenario == Scenario::LedgerFailsToo && payload.get("error").is_some() =>
            {
                Err(function_failure("Retryable", &heaviest_message()))
            }
            "record-run" => Ok(json!({
                "run_id": 9_999_999_999_i64, "pipeline": "hr", "logical_date": date,
                "status": if payload.get("error").is_some() { "failed" } else { "succeeded" }
            })),
            other => Err(Failure::new("Fatal", format!("no stand-in for {other}"))),
        }
    }
}

/// `plan-dates`' answer for a backfill of every date in its range (as `reprocess: all` plans
/// them), not split: the measurement needs executions longer than the maximum.
fn plan_every_date(payload: &Value) -> Value {
    let run: RunRequest = serde_json::from_value(payload["run"].clone()).unwrap();
    let from = run.start_date.unwrap().date();
    let dates: Vec<LogicalDate> = from
        .iter_days()
        .take_while(|d| *d <= run.logical_date.date())
        .map(|d| LogicalDate::new(d).unwrap())
        .collect();
    let items = plan_items(&dates, run.params.as_ref(), payload["execution"].as_str());
    serde_json::to_value(PlanOutput {
        pipeline: "hr".into(),
        count: dates.len(),
        dates,
        items,
        remaining: Remaining::default(),
    })
    .unwrap()
}

/// What one execution of `dates` dates used of the limits.
#[derive(Debug)]
struct Measured {
    dates: usize,
    scenario: Scenario,
    /// The largest state input or output, Task result or inline Map result, in bytes.
    largest: usize,
    /// Where it was (a journal key).
    largest_at: String,
    history_events: u64,
    /// `SUCCEEDED`, or the error the execution failed with.
    ended: String,
}

impl Measured {
    fn within_margins(&self) -> bool {
        self.ended == self.scenario.expected_end()
            && self.largest <= PAYLOAD_MARGIN_BYTES
            && self.history_events <= HISTORY_MARGIN_EVENTS
    }
}

async fn measure(scenario: Scenario, dates: usize) -> Measured {
    let spec = template();
    let machine = load_machine(spec.machine("hr").unwrap(), &HashMap::new()).unwrap();
    let first: LogicalDate = FIRST.parse().unwrap();
    let last = first.date() + chrono::Duration::days(dates as i64 - 1);
    let input = json!({
        "logical_date": last.to_string(),
        "start_date": FIRST,
        "reprocess": "all",
        "params": {"count": MAX_COUNT, "seed": u64::MAX, "locale": "es_ES"}
    });
    let mut options = RunOptions::new("hr", &execution_name());
    options.time_scale = 0.0;
    let stand_ins = StandIns {
        scenario,
        bucket: bucket(),
    };
    let execution = execute(&machine, input, Arc::new(LambdaTasks(stand_ins)), options).await;
    let (largest, largest_at) = largest_payload(&execution);
    Measured {
        dates,
        scenario,
        largest,
        largest_at,
        history_events: execution.service_events.values().sum(),
        ended: match &execution.output {
            Ok(_) => "SUCCEEDED".into(),
            Err(failure) => failure.error.clone(),
        },
    }
}

/// The largest JSON document the execution held: every completed state's output (the next
/// state's input) and every inline Map's result before its ResultSelector (the array of its
/// iterations' outputs, which Step Functions also holds to the 256 KiB limit).
fn largest_payload(execution: &Execution) -> (usize, String) {
    let journal = &execution.journal;
    let mut largest = (0, String::new());
    for key in journal.keys() {
        if let Some(step) = journal.get(key) {
            let size = json_size(&step.output);
            if size > largest.0 {
                largest = (size, key.to_string());
            }
        }
    }
    for map in ["EachDate", "RetryFailedDates"] {
        let size = map_result_size(journal, map);
        if size > largest.0 {
            largest = (size, format!("{map} (its iterations' outputs)"));
        }
    }
    largest
}

/// The size of the array of a top-level inline Map's iteration outputs: each iteration's
/// last state (`Map[i]/State`, no further nesting, no next state).
fn map_result_size(journal: &Journal, map: &str) -> usize {
    let prefix = format!("{map}[");
    let outputs: Vec<usize> = journal
        .keys()
        .filter(|key| {
            key.strip_prefix(&prefix)
                .and_then(|rest| rest.split_once("]/"))
                .is_some_and(|(_, state)| !state.contains('/'))
        })
        .filter_map(|key| journal.get(key))
        .filter(|step| step.next.is_none())
        .map(|step| json_size(&step.output))
        .collect();
    if outputs.is_empty() {
        return 0;
    }
    2 + outputs.iter().sum::<usize>() + outputs.len() - 1
}

/// The largest number of dates for which every scenario ends as it should inside the
/// margins (the measures grow with the dates, so a bisection finds it).
async fn largest_within_margins() -> usize {
    let fits = |dates: usize| async move {
        for scenario in Scenario::ALL {
            if !measure(scenario, dates).await.within_margins() {
                return false;
            }
        }
        true
    };
    let (mut fitting, mut too_many) = (1, MAX_DATES as usize + 1);
    assert!(fits(fitting).await, "one date must fit");
    while too_many - fitting > 1 {
        let middle = (fitting + too_many) / 2;
        if fits(middle).await {
            fitting = middle;
        } else {
            too_many = middle;
        }
    }
    fitting
}

#[tokio::test]
async fn at_its_maximum_an_hr_execution_stays_inside_the_limits_with_a_margin() {
    for scenario in Scenario::ALL {
        let measured = measure(scenario, MAX_DATES_PER_EXECUTION).await;
        assert_eq!(measured.ended, scenario.expected_end(), "{measured:?}");
        assert!(measured.largest <= PAYLOAD_MARGIN_BYTES, "{measured:?}");
        assert!(
            measured.history_events <= HISTORY_MARGIN_EVENTS,
            "{measured:?}"
        );
    }
}

#[tokio::test]
async fn the_maximum_is_the_largest_run_inside_the_margins() {
    let largest = largest_within_margins().await;
    println!("largest run inside the margins: {largest} dates");
    // Not above it (a run of the maximum would risk the limits), and not far below it (the
    // figure is the measured one, rounded down to a multiple of 5): a change to the
    // definition or the stages' outputs that moves it fails here, to be measured again.
    assert!(
        (MAX_DATES_PER_EXECUTION..MAX_DATES_PER_EXECUTION + 5).contains(&largest),
        "measured {largest} dates inside the margins; MAX_DATES_PER_EXECUTION is {MAX_DATES_PER_EXECUTION}"
    );
}

#[tokio::test]
async fn without_the_split_a_year_of_failing_dates_breaks_the_state_limit() {
    // What the split prevents: a year's backfill in one execution, every date failing.
    let measured = measure(Scenario::FailTwice, MAX_DATES as usize).await;
    assert_eq!(measured.ended, errors::DATA_LIMIT_EXCEEDED, "{measured:?}");
}

#[tokio::test]
async fn a_failed_date_carries_its_cause_once_and_capped() {
    let spec = template();
    let machine = load_machine(spec.machine("hr").unwrap(), &HashMap::new()).unwrap();
    let input = json!({"logical_date": "2026-01-02", "start_date": FIRST, "reprocess": "all"});
    let mut options = RunOptions::new("hr", &execution_name());
    options.time_scale = 0.0;
    let stand_ins = StandIns {
        scenario: Scenario::Recover,
        bucket: bucket(),
    };
    let execution = execute(&machine, input, Arc::new(LambdaTasks(stand_ins)), options).await;
    let output = execution.output.unwrap();
    for date in output["results"].as_array().unwrap() {
        // The name in the outcome, the Cause once, in $.error.
        assert_eq!(
            date["outcome"],
            json!({"status": "failed", "error": "Retryable"})
        );
        let cause = date["error"]["Cause"].as_str().unwrap();
        assert!(
            cause.len() <= 2 * MAX_ERROR_MESSAGE_BYTES + 64,
            "{}",
            cause.len()
        );
        assert!(cause.contains("cut at 1 KiB"), "{cause}");
    }
    assert_eq!(output["second_run"], json!(["succeeded", "succeeded"]));
    assert_eq!(output["remaining"], json!({"count": 0, "from": null}));
}

/// Prints the measured table (docs/pipelines.md § Maximums), and checks that it shows the
/// limits where they are.
#[tokio::test]
async fn the_table() {
    println!(
        "| Dates | Largest state: all succeed | Largest state: worst of the failing scenarios | \
         History events: all succeed | History events: worst (throttled) | Ends |"
    );
    println!("|---:|---:|---:|---:|---:|---|");
    let percent = |part: f64, whole: f64| format!("{:.0} %", 100.0 * part / whole);
    for dates in [
        1,
        10,
        30,
        MAX_DATES_PER_EXECUTION,
        90,
        100,
        150,
        MAX_DATES as usize,
    ] {
        let mut measured = Vec::new();
        for scenario in Scenario::ALL {
            measured.push(measure(scenario, dates).await);
        }
        // Every run inside the limits ends as its scenario says; the ones that break a limit
        // break the state's, never anything else.
        for m in &measured {
            if m.largest <= PAYLOAD_LIMIT_BYTES && m.history_events < HISTORY_LIMIT_EVENTS {
                assert_eq!(m.ended, m.scenario.expected_end(), "{m:?}");
            } else {
                assert_eq!(m.ended, errors::DATA_LIMIT_EXCEEDED, "{m:?}");
            }
        }
        let succeed = &measured[0];
        let failing = measured[1..]
            .iter()
            .max_by_key(|m| m.largest)
            .unwrap_or(succeed);
        let throttled = measured
            .iter()
            .max_by_key(|m| m.history_events)
            .unwrap_or(succeed);
        let broken: Vec<&Measured> = measured
            .iter()
            .filter(|m| m.ended != m.scenario.expected_end())
            .collect();
        let bytes = PAYLOAD_LIMIT_BYTES as f64;
        let events = HISTORY_LIMIT_EVENTS as f64;
        println!(
            "| {dates} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} |",
            succeed.largest,
            percent(succeed.largest as f64, bytes),
            failing.largest,
            percent(failing.largest as f64, bytes),
            succeed.history_events,
            percent(succeed.history_events as f64, events),
            throttled.history_events,
            percent(throttled.history_events as f64, events),
            if broken.is_empty() {
                "as expected".to_string()
            } else {
                format!(
                    "`States.DataLimitExceeded` in {} of {} scenarios",
                    broken.len(),
                    measured.len()
                )
            }
        );
        for m in &measured {
            eprintln!(
                "  {} dates, {}: largest {} bytes at {}, {} events, {}",
                m.dates,
                m.scenario.name(),
                m.largest,
                m.largest_at,
                m.history_events,
                m.ended
            );
        }
    }
}

/// `etl backfill` in the test's environment; returns whether it succeeded, and what it
/// printed.
async fn etl_backfill(env: &TestEnv, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "backfill",
        "hr",
        "--params",
        r#"{"count": 20}"#,
        "--time-scale",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut command = cli::command(&args);
    command
        .env("DATABASE_URL", &env.db.url)
        .env("ETL_BUCKET", &env.ctx.config.bucket)
        .env("ETL_INDEX_PREFIX", &env.ctx.config.index_prefix);
    let out = tokio::task::spawn_blocking(move || cli::output(&mut command))
        .await
        .unwrap();
    let printed = format!("{}\n{}", cli::text(&out.stdout), cli::text(&out.stderr));
    (out.status.success(), printed)
}

/// How many dates each execution recorded (its `pipeline` rows), oldest execution first.
async fn dates_per_recorded_execution(env: &TestEnv) -> Vec<i64> {
    env.ctx
        .postgres()
        .await
        .unwrap()
        .query(
            "SELECT execution, count(DISTINCT logical_date) FROM etl.runs
              WHERE pipeline = 'hr' AND stage = 'pipeline'
              GROUP BY execution ORDER BY min(logical_date)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, i64>(1))
        .collect()
}

/// Dates whose only pipeline row says succeeded.
const SUCCEEDED_ONCE: &str = "SELECT count(*) FROM (SELECT logical_date FROM etl.runs
     WHERE pipeline = 'hr' AND stage = 'pipeline'
     GROUP BY logical_date HAVING count(*) = 1 AND bool_and(status = 'succeeded')) d";

/// A backfill longer than one execution runs (the maximum lowered to 3 for the test with
/// `--dates-per-execution`) runs as several executions, each continuing where the previous
/// one stopped, and loads every date exactly once.
#[tokio::test]
async fn a_backfill_longer_than_an_execution_runs_as_several_and_loads_every_date_once() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let range = [
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-08",
        "--dates-per-execution",
        "3",
    ];
    let (succeeded, printed) = etl_backfill(&env, &range).await;
    assert!(succeeded, "{printed}");
    assert!(
        printed.contains("the next execution starts at 2026-10-04")
            && printed.contains("the next execution starts at 2026-10-07"),
        "{printed}"
    );
    // Eight dates in executions of at most three: 3 + 3 + 2.
    assert_eq!(dates_per_recorded_execution(&env).await, vec![3, 3, 2]);
    assert_eq!(scalar(&env.ctx, SUCCEEDED_ONCE).await, 8);
    let loaded = "SELECT count(DISTINCT logical_date) FROM hr.employees";
    assert_eq!(scalar(&env.ctx, loaded).await, 8);
}

/// An execution that fails does not stop the dates after it: the backfill goes on from
/// what its plan left, fails at the end, and the same backfill run again (`reprocess
/// failed`) finishes the failed dates; no date is dropped.
#[tokio::test]
async fn a_failed_execution_of_a_long_backfill_does_not_stop_the_dates_after_it() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let range = [
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-05",
        "--dates-per-execution",
        "2",
    ];
    // Faults count per execution: each execution's first date fails in Hire, twice.
    let faults = [
        "--inject-fault",
        "Hire:1:Fatal",
        "--inject-fault",
        "HireAgain:1:Fatal",
    ];
    let (succeeded, printed) = etl_backfill(&env, &[&range[..], &faults[..]].concat()).await;
    assert!(!succeeded, "{printed}");
    // Three executions (2 + 2 + 1 dates), each failing its first date.
    assert_eq!(dates_per_recorded_execution(&env).await, vec![2, 2, 1]);
    let failed = "SELECT count(DISTINCT logical_date) FROM etl.runs
                   WHERE pipeline = 'hr' AND stage = 'pipeline' AND status = 'failed'";
    assert_eq!(scalar(&env.ctx, failed).await, 3);
    assert_eq!(scalar(&env.ctx, SUCCEEDED_ONCE).await, 2);

    // A failed execution may still hold its failed date's lease (a stage that ran and
    // failed renewed it): end them as their 30-minute expiry would, then run it again.
    env.ctx
        .postgres()
        .await
        .unwrap()
        .execute(
            "UPDATE etl.leases SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let (succeeded, printed) =
        etl_backfill(&env, &[&range[..], &["--reprocess", "failed"]].concat()).await;
    assert!(succeeded, "{printed}");
    let done = "SELECT count(DISTINCT logical_date) FROM etl.runs
                 WHERE pipeline = 'hr' AND stage = 'pipeline' AND status = 'succeeded'";
    assert_eq!(scalar(&env.ctx, done).await, 5);
    let loaded = "SELECT count(DISTINCT logical_date) FROM hr.employees";
    assert_eq!(scalar(&env.ctx, loaded).await, 5);
}

/// A scheduled run with more failed dates to retry than one execution runs still runs its own
/// date and the days since the last success; the oldest failures fill the room left, and the
/// others stay planned for the next run.
#[tokio::test]
async fn a_catch_up_runs_the_recent_dates_first_and_the_oldest_failures_in_the_room_left() {
    let env = TestEnv::new(&[etl_core::Service::Postgres])
        .await
        .with_schema()
        .await;
    let day = |text: &str| -> LogicalDate { text.parse().unwrap() };
    for failed in [
        "2026-09-01",
        "2026-09-02",
        "2026-09-03",
        "2026-09-04",
        "2026-09-05",
    ] {
        ledger::record_outcome(&env.ctx, "hr", day(failed), None, Some(("Fatal", "boom")))
            .await
            .unwrap();
    }
    ledger::record_outcome(&env.ctx, "hr", day("2026-11-22"), None, None)
        .await
        .unwrap();
    let event: PlanDatesEvent = serde_json::from_value(json!({
        "pipeline": "hr",
        "execution": "hr-2026-11-25-scheduled",
        "run": {"logical_date": "2026-11-25", "dates_per_execution": 4}
    }))
    .unwrap();
    let PlanDatesOutput::Plan(output) = plan::run(&env.ctx, event).await.unwrap() else {
        panic!("a plan event gives a plan");
    };
    assert_eq!(
        output.dates,
        ["2026-09-01", "2026-11-23", "2026-11-24", "2026-11-25"].map(day)
    );
    assert_eq!(
        output.remaining,
        Remaining {
            count: 4,
            from: Some(day("2026-09-02"))
        }
    );
    // Without the limit, the same run covers all eight, oldest first.
    let request: RunRequest =
        serde_json::from_value(json!({"logical_date": "2026-11-25"})).unwrap();
    let all = plan::plan(&env.ctx, "hr", &request).await.unwrap();
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
}
