//! The `hr` state machine end to end (stages in-process, real services): idempotent per
//! date, catchup and backfill driven by the run ledger, failures recorded then raised.

use std::collections::HashMap;

use asl::Failure;
use etl_cli::runner::{run_machine, RunSettings};
use etl_core::ledger::{self, Reprocess};
use etl_core::search::index::EMPLOYEES;
use etl_core::stages::plan::{self, RunRequest};
use etl_core::{Context, LogicalDate};
use integration_tests::{doc_count, download, in_process, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

async fn lake() -> TestEnv {
    TestEnv::with_lake(LAKE).await
}

fn date(text: &str) -> LogicalDate {
    text.parse().unwrap()
}

async fn run_hr(ctx: &std::sync::Arc<Context>, day: &str, input: Value) -> Result<Value, Failure> {
    let settings = RunSettings {
        overrides: HashMap::from([("MaxConcurrency".to_string(), "3".to_string())]),
        ..in_process(Some(day), Some(input))
    };
    run_machine(ctx, &template(), "hr", &settings)
        .await
        .unwrap()
        .output
}

async fn csv(ctx: &Context, day: &str) -> Vec<u8> {
    download(ctx, &format!("exports/employees/dt={day}/employees.csv")).await
}

#[tokio::test]
async fn the_same_date_three_times_gives_identical_results() {
    let env = lake().await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let output = run_hr(
            &env.ctx,
            "2026-11-25",
            json!({"params": {"count": 2000, "seed": 5}}),
        )
        .await
        .unwrap();
        assert_eq!(output["dates_run"], json!(1), "{output}");
        seen.push((
            scalar(&env.ctx, "SELECT count(*) FROM hr.employees").await,
            doc_count(&env.ctx, EMPLOYEES.name).await,
            csv(&env.ctx, "2026-11-25").await,
        ));
    }
    assert!(
        seen[0].0 > 1900 && seen[0].0 as u64 == seen[0].1,
        "{:?}",
        (seen[0].0, seen[0].1)
    );
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "runs of the same date differ"
    );
}

#[tokio::test]
async fn a_seven_day_backfill_loads_exactly_seven_days_and_rerunning_changes_nothing() {
    let env = lake().await;
    let input = json!({"start_date": "2026-11-01", "reprocess": "none", "params": {"count": 300}});
    let output = run_hr(&env.ctx, "2026-11-07", input.clone()).await.unwrap();
    assert_eq!(output["dates_run"], json!(7));
    let days = "SELECT count(DISTINCT logical_date) FROM hr.employees";
    let rows = "SELECT count(*) FROM hr.employees";
    assert_eq!(scalar(&env.ctx, days).await, 7);
    let loaded = scalar(&env.ctx, rows).await;
    assert_eq!(
        scalar(&env.ctx, "SELECT count(*) FROM etl.runs WHERE pipeline = 'hr' AND stage = 'pipeline' AND status = 'succeeded'").await,
        7
    );
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, loaded as u64);

    // The plan is now empty, and running the same backfill again changes nothing.
    let request: RunRequest =
        serde_json::from_value(json!({"logical_date": "2026-11-07", "start_date": "2026-11-01"}))
            .unwrap();
    assert!(plan::plan(&env.ctx, "hr", &request)
        .await
        .unwrap()
        .is_empty());
    let again = run_hr(&env.ctx, "2026-11-07", input).await.unwrap();
    assert_eq!(again["dates_run"], json!(0));
    assert_eq!(scalar(&env.ctx, rows).await, loaded);
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, loaded as u64);

    // reprocess=all plans every date again.
    let all = ledger::dates_to_run(
        &env.ctx,
        "hr",
        date("2026-11-01"),
        date("2026-11-07"),
        Reprocess::All,
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 7);
}

#[tokio::test]
async fn a_scheduled_run_catches_up_the_days_missed_since_the_last_success() {
    let env = lake().await;
    run_hr(&env.ctx, "2026-11-10", json!({"params": {"count": 50}}))
        .await
        .unwrap();
    let output = run_hr(&env.ctx, "2026-11-13", json!({"params": {"count": 50}}))
        .await
        .unwrap();
    let dates: Vec<&str> = output["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, vec!["2026-11-11", "2026-11-12", "2026-11-13"]);
}

#[tokio::test]
async fn a_failing_date_is_recorded_in_the_ledger_then_fails_the_execution() {
    let env = lake().await;
    let failure = run_hr(&env.ctx, "2026-11-25", json!({"params": {"count": 0}}))
        .await
        .unwrap_err();
    // The date's own error is in the ledger; its second run fails the same way, and the
    // execution fails in that step (where a redrive would resume it).
    assert_eq!(failure.error, "InvalidInput", "{failure:?}");
    assert!(failure.cause.contains("count"), "{failure:?}");
    let client = env.ctx.postgres().await.unwrap();
    let row = client
        .query_one(
            "SELECT status, error_name, error_cause FROM etl.runs WHERE pipeline = 'hr' AND stage = 'pipeline' AND logical_date = '2026-11-25'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
    assert_eq!(row.get::<_, String>(1), "InvalidInput");
    assert!(row.get::<_, String>(2).contains("count"));
    // Both runs of the date's Hire (Hire, then HireAgain) failed.
    let hires: Vec<String> = client
        .query(
            "SELECT status FROM etl.runs WHERE pipeline = 'hr' AND stage = 'hire' ORDER BY attempt",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(hires, ["failed", "failed"]);
    // A failed date is not "missing" for reprocess=none, but is for reprocess=failed.
    let d = date("2026-11-25");
    assert!(ledger::dates_to_run(&env.ctx, "hr", d, d, Reprocess::None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ledger::dates_to_run(&env.ctx, "hr", d, d, Reprocess::Failed)
            .await
            .unwrap(),
        vec![d]
    );
}
