//! Executions started as EventBridge Scheduler starts them, with `{"scheduled_time",
//! "cadence"}` and no logical date: the machines derive the date (and hour) from the time,
//! and reject a garbage time as InvalidInput before touching anything.

use asl::Failure;
use elasticsearch::http::Method;
use etl_cli::runner::{run_machine, RunReport};
use etl_core::search::index::{call, CLICKSTREAM};
use integration_tests::{in_process, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

async fn lake() -> TestEnv {
    TestEnv::with_lake(LAKE).await
}

/// Runs a machine locally with exactly this input: no `--date`, as the scheduler starts it.
async fn start_as_scheduler(env: &TestEnv, machine: &str, input: Value) -> RunReport {
    run_machine(
        &env.ctx,
        &template(),
        machine,
        &in_process(None, Some(input)),
    )
    .await
    .unwrap_or_else(|e| panic!("{machine}: {e}"))
}

/// How a start that must fail as InvalidInput failed.
async fn rejected(env: &TestEnv, machine: &str, input: Value) -> Failure {
    let report = start_as_scheduler(env, machine, input).await;
    let failure = report.output.unwrap_err();
    assert_eq!(failure.error, "InvalidInput", "{machine}: {failure:?}");
    failure
}

/// `(pipeline, logical_date, status)` of every pipeline-level ledger row.
async fn pipeline_runs(env: &TestEnv) -> Vec<(String, String, String)> {
    env.ctx
        .postgres()
        .await
        .unwrap()
        .query(
            "SELECT pipeline, logical_date::text, status FROM etl.runs \
             WHERE stage = 'pipeline' ORDER BY pipeline, logical_date",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_daily_hr_run_processes_the_day_before_its_scheduled_time() {
    let env = lake().await;
    let report = start_as_scheduler(
        &env,
        "hr",
        json!({"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily", "params": {"count": 5}}),
    )
    .await;
    let output = report
        .output
        .unwrap_or_else(|f| panic!("hr failed: {} {}", f.error, f.cause));
    assert_eq!(output["logical_date"], "2026-11-25", "{output}");
    assert_eq!(
        pipeline_runs(&env).await,
        vec![("hr".into(), "2026-11-25".into(), "succeeded".into())]
    );
    assert_eq!(
        scalar(
            &env.ctx,
            "SELECT (SELECT count(*) FROM hr.employees WHERE logical_date = '2026-11-25') \
                  + (SELECT count(*) FROM hr.employee_rejects WHERE logical_date = '2026-11-25')"
        )
        .await,
        5,
        "the params of a scheduled input are kept (5 generated: loaded + rejected)"
    );
}

#[tokio::test]
async fn an_hourly_clickstream_run_simulates_the_hour_before_its_scheduled_time() {
    let env = lake().await;
    let report = start_as_scheduler(
        &env,
        "clickstream",
        json!({
            "scheduled_time": "2026-11-26T00:05:00Z",
            "cadence": "hourly",
            "params": {"sessions": 30, "seed": 4}
        }),
    )
    .await;
    let output = report
        .output
        .unwrap_or_else(|f| panic!("clickstream failed: {} {}", f.error, f.cause));
    let events = output["events"].as_u64().unwrap_or(0);
    assert!(
        events >= 30,
        "30 sessions give at least 30 events: {output}"
    );
    assert_eq!(
        pipeline_runs(&env).await,
        vec![(
            "clickstream".into(),
            "2026-11-25".into(),
            "succeeded".into()
        )]
    );

    let index = env.ctx.index_name(CLICKSTREAM.name);
    let body = json!({"size": 10000, "query": {"match_all": {}}}).to_string();
    let found: Value = call(
        env.ctx.elasticsearch().unwrap(),
        Method::Post,
        &format!("/{index}/_search"),
        Some(&body),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let hits = found["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        hits.len() as u64,
        events,
        "every simulated event is indexed"
    );
    let mut sessions = std::collections::HashSet::new();
    for hit in &hits {
        let timestamp = hit["_source"]["timestamp"].as_str().unwrap_or("");
        assert!(
            timestamp.starts_with("2026-11-25T23:"),
            "event outside 2026-11-25 23:00-24:00 UTC: {timestamp}"
        );
        sessions.insert(
            hit["_source"]["session_id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(
        sessions.len(),
        30,
        "params.sessions survives the hour merge"
    );
}

#[tokio::test]
async fn a_garbage_scheduled_time_or_no_date_at_all_fails_as_invalid_input() {
    let env = lake().await;
    for machine in ["hr", "clickstream"] {
        let failure = rejected(
            &env,
            machine,
            json!({"scheduled_time": "<aws.scheduler.scheduled-time>", "cadence": "daily"}),
        )
        .await;
        assert!(
            failure.cause.contains("aws.scheduler.scheduled-time"),
            "{machine}: the cause names the bad time: {failure:?}"
        );

        let failure = rejected(
            &env,
            machine,
            json!({"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "weekly"}),
        )
        .await;
        assert!(failure.cause.contains("weekly"), "{machine}: {failure:?}");

        // Neither a date nor a complete schedule: refused by the Choice, nothing runs.
        let failure = rejected(
            &env,
            machine,
            json!({"scheduled_time": "2026-11-26T00:30:00Z"}),
        )
        .await;
        assert!(failure.cause.contains("logical_date"), "{failure:?}");
    }
    // Rejected before the schema or any stage ran: nothing reached the ledger.
    let ledger_exists = scalar(
        &env.ctx,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'etl' AND table_name = 'runs'",
    )
    .await;
    assert_eq!(ledger_exists, 0, "no stage may run for a rejected schedule");
}
