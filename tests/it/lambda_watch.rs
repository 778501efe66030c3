//! The real Lambda binary under the real Lambda runtime API (`cargo lambda watch`), invoked
//! with its sample event from `events/`: the offline equivalent of `sam local invoke`.

use etl_cli::functions::{function_names, OverInvokeApi};
use etl_cli::runner::{run_machine, FunctionHost, RunSettings};
use integration_tests::{
    all_migrations, in_process, repo_root, template, LambdaWatch, TestEnv, LAKE,
};
use serde_json::{json, Value};

async fn table_names(env: &TestEnv) -> Vec<String> {
    let client = env.ctx.postgres().await.unwrap();
    client
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('hr', 'etl') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every table the migrations create, in name order.
const SCHEMA_TABLES: [&str; 9] = [
    "etl.execution_events",
    "etl.executions",
    "etl.lease_policy",
    "etl.leases",
    "etl.runs",
    "etl.schema_migrations",
    "hr.employee_rejects",
    "hr.employees",
    "hr.hire_batches",
];

#[tokio::test]
async fn hr_schema_binary_runs_under_the_lambda_runtime() {
    let env = TestEnv::with_lake(LAKE).await;
    let watch = LambdaWatch::start(&env.env);
    let lambda = OverInvokeApi::new(&env.ctx, &watch.endpoint);

    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/hr-schema.json")).unwrap(),
    )
    .unwrap();
    let first = lambda.call("hr-schema", &event).await.unwrap_or_else(|f| {
        panic!(
            "invoke failed: {f}\n--- watch log ---\n{}",
            watch.log_text()
        )
    });
    assert_eq!(first["applied"], json!(all_migrations()), "{first}");
    assert_eq!(table_names(&env).await, SCHEMA_TABLES);

    let second = lambda.call("hr-schema", &event).await.unwrap();
    assert_eq!(
        second["applied"],
        json!([]),
        "a second run must change nothing: {second}"
    );
    assert_eq!(second["schema_version"], first["schema_version"]);

    // A malformed event comes back as the InvalidInput error type Step Functions routes on.
    let failure = lambda
        .call("hr-schema", &json!({"logical_date": "2026-02-30"}))
        .await
        .unwrap_err();
    assert_eq!(failure.error, "InvalidInput", "{failure:?}");
    assert!(failure.cause.contains("2026-02-30"), "{failure:?}");

    // The deployed state machine, with its Task calling the binary over the Invoke API.
    let settings = RunSettings {
        host: FunctionHost::InvokeApi(watch.endpoint.clone()),
        execution_name: Some("hr-setup-watch-test".into()),
        ..in_process(Some("2026-11-25"), None)
    };
    let report = run_machine(&env.ctx, &template(), "hr-setup", &settings)
        .await
        .unwrap();
    let output = report.output.unwrap();
    assert_eq!(
        output["schema"]["schema_version"],
        json!(etl_core::migrations::MIGRATIONS.len()),
        "{output}"
    );
    assert_eq!(output["logical_date"], json!("2026-11-25"));

    // Every other function binary, with its sample event from events/.
    for function in function_names().into_iter().filter(|f| *f != "hr-schema") {
        let path = repo_root().join(format!("events/{function}.json"));
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .unwrap();
        let output = lambda.call(function, &event).await.unwrap_or_else(|f| {
            panic!(
                "{function} failed under the runtime: {f}\n--- watch log ---\n{}",
                watch.log_text()
            )
        });
        assert!(output.is_object(), "{function} returned {output}");
    }
    let hired: i64 = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE logical_date = '2026-11-25'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        hired > 90,
        "hr-hire's sample event hires 100 people, found {hired}"
    );

    // JSON logs carry the Lambda request id and the logical date on every stage line.
    let log = watch.log_text();
    let stage_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "schema is current")
        .collect();
    assert!(
        stage_lines.len() >= 3,
        "expected JSON stage logs, got:\n{log}"
    );
    for line in &stage_lines {
        let spans = line["spans"].to_string();
        assert!(spans.contains("requestId"), "no request id in {line}");
        assert_eq!(line["span"]["logical_date"], json!("2026-11-25"), "{line}");
    }
}
