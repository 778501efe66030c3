//! Per-date isolation in the `hr` machine (issue #16): a failing date is recorded failed while
//! the other dates of the Map still run, the failed dates run once more after them, the
//! execution fails in the step that still fails, and every later run plans it again, however old, until it succeeds or an operator skips
//! it (`etl runs skip`).

use std::collections::HashMap;

use asl::Failure;
use etl_cli::lambda_limits::InjectedFault;
use etl_cli::runner::{run_machine, RunReport, RunSettings};
use etl_core::ledger;
use etl_core::stages::hr_export::export_key;
use etl_core::stages::plan::{self, RunRequest};
use etl_core::{Context, LogicalDate, Service};
use integration_tests::{cli, download, in_process, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

fn date(text: &str) -> LogicalDate {
    text.parse().unwrap()
}

/// One date at a time, so the Nth invoke of a Task is the Nth planned date's.
async fn run_hr(
    ctx: &std::sync::Arc<Context>,
    day: &str,
    input: Value,
    faults: Vec<InjectedFault>,
) -> Result<Value, Failure> {
    run_hr_report(ctx, day, input, faults).await.output
}

async fn run_hr_report(
    ctx: &std::sync::Arc<Context>,
    day: &str,
    input: Value,
    faults: Vec<InjectedFault>,
) -> RunReport {
    let settings = RunSettings {
        overrides: HashMap::from([("MaxConcurrency".to_string(), "1".to_string())]),
        faults,
        ..in_process(Some(day), Some(input))
    };
    run_machine(ctx, &template(), "hr", &settings)
        .await
        .unwrap()
}

/// What a scheduled run of `day` would plan.
async fn planned(ctx: &Context, day: &str) -> Vec<LogicalDate> {
    let request: RunRequest = serde_json::from_value(json!({ "logical_date": day })).unwrap();
    plan::plan(ctx, "hr", &request).await.unwrap()
}

/// The status of the date's latest pipeline run.
async fn latest_status(ctx: &Context, day: &str) -> String {
    let client = ctx.postgres().await.unwrap();
    client
        .query_one(
            "SELECT status FROM etl.runs WHERE pipeline = 'hr' AND stage = 'pipeline'
                AND logical_date = $1::text::date ORDER BY attempt DESC LIMIT 1",
            &[&day],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_failing_date_fails_alone_and_the_next_run_picks_it_up() {
    let env = TestEnv::with_lake(LAKE).await;
    let input = json!({"start_date": "2026-11-01", "reprocess": "none", "params": {"count": 50}});
    // The 4th Hire invoke is 2026-11-04's, failed with an error no Retry matches; so is its
    // second run, after the other dates (HireAgain).
    let fatal = |state: &str| InjectedFault {
        state: state.into(),
        nth: 1 + 3 * u32::from(state == "Hire"),
        error: "Fatal".into(),
    };
    let execution = run_hr_report(
        &env.ctx,
        "2026-11-07",
        input,
        vec![fatal("Hire"), fatal("HireAgain")],
    )
    .await;
    let failure = execution.output.clone().unwrap_err();
    // The execution fails in the failed date's own step, where a redrive resumes it.
    assert_eq!(failure.error, "Fatal", "{failure:?}");
    let second_runs: Vec<&str> = execution
        .tasks_entered()
        .filter(|s| s.ends_with("Again"))
        .collect();
    assert_eq!(
        second_runs,
        ["HireAgain"],
        "only the failed date runs again"
    );

    // The other six dates loaded and succeeded; the fourth is failed in the ledger.
    let loaded = "SELECT count(DISTINCT logical_date) FROM hr.employees
                   WHERE logical_date <> '2026-11-04'";
    assert_eq!(scalar(&env.ctx, loaded).await, 6);
    let missing = "SELECT count(*) FROM hr.employees WHERE logical_date = '2026-11-04'";
    assert_eq!(scalar(&env.ctx, missing).await, 0);
    let succeeded = "SELECT count(*) FROM etl.runs
                      WHERE pipeline = 'hr' AND stage = 'pipeline' AND status = 'succeeded'";
    assert_eq!(scalar(&env.ctx, succeeded).await, 6);
    assert_eq!(latest_status(&env.ctx, "2026-11-04").await, "failed");

    // The next day's run plans the failed date first, runs it, and succeeds.
    let next = planned(&env.ctx, "2026-11-08").await;
    assert_eq!(next, vec![date("2026-11-04"), date("2026-11-08")]);
    let output = run_hr(
        &env.ctx,
        "2026-11-08",
        json!({"params": {"count": 50}}),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(output["dates_run"], json!(2), "{output}");
    assert_eq!(latest_status(&env.ctx, "2026-11-04").await, "succeeded");
    assert!(scalar(&env.ctx, missing).await > 0);
    // The snapshots written while 2026-11-04 was missing were refreshed when it loaded: each
    // holds everyone hired up to its date, the late date included.
    for day in ["2026-11-05", "2026-11-07"] {
        let csv = download(&env.ctx, &export_key(date(day))).await;
        let lines = csv.iter().filter(|&&b| b == b'\n').count() as i64;
        let hired = scalar(
            &env.ctx,
            &format!("SELECT count(*) FROM hr.employees WHERE hire_date <= '{day}'"),
        )
        .await;
        assert_eq!(
            lines,
            hired + 1,
            "{day}: header + every employee hired up to it"
        );
    }
    assert_eq!(
        planned(&env.ctx, "2026-11-09").await,
        vec![date("2026-11-09")]
    );
}

#[tokio::test]
async fn an_old_failed_date_stays_planned_until_skipped() {
    let env = TestEnv::new(&[Service::Postgres]).await.with_schema().await;
    let (old, recent) = (date("2026-09-01"), date("2026-11-24"));
    ledger::record_outcome(&env.ctx, "hr", old, Some("hr-a"), Some(("Fatal", "boom")))
        .await
        .unwrap();
    ledger::record_outcome(&env.ctx, "hr", recent, Some("hr-b"), None)
        .await
        .unwrap();
    // 85 days before, far outside the 31-day look-back: still planned.
    assert_eq!(
        planned(&env.ctx, "2026-11-25").await,
        vec![old, date("2026-11-25")]
    );

    let args = [
        "runs",
        "skip",
        "--pipeline",
        "hr",
        "--date",
        "2026-09-01",
        "--reason",
        "source gone",
    ];
    let out = cli::output(cli::command(&args).env("DATABASE_URL", &env.db.url));
    let stdout = cli::stdout_of_success(&args, out);
    assert!(stdout.contains("2026-09-01 skipped"), "{stdout}");
    assert_eq!(latest_status(&env.ctx, "2026-09-01").await, "skipped");
    assert_eq!(
        planned(&env.ctx, "2026-11-25").await,
        vec![date("2026-11-25")]
    );

    // A skipped date inside the look-back window is not planned either.
    ledger::record_outcome(
        &env.ctx,
        "hr",
        date("2026-11-26"),
        None,
        Some(("Fatal", "x")),
    )
    .await
    .unwrap();
    ledger::skip(&env.ctx, "hr", date("2026-11-26"), "known bad day")
        .await
        .unwrap();
    assert_eq!(
        planned(&env.ctx, "2026-11-28").await,
        vec![date("2026-11-25"), date("2026-11-27"), date("2026-11-28")]
    );

    // The ledger listing shows the reason.
    let list = ["runs", "--pipeline", "hr"];
    let out = cli::output(cli::command(&list).env("DATABASE_URL", &env.db.url));
    let stdout = cli::stdout_of_success(&list, out);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" skipped ") && l.ends_with("source gone")),
        "{stdout}"
    );
}
