//! Redrive (issue #16 item 4): a failed execution resumes from the step that failed, as
//! Step Functions' RedriveExecution does. `etl run --redrive` keeps the journal of what
//! completed in `etl.executions`; what completed is not run again.

use std::collections::HashMap;

use asl::Event;
use etl_cli::lambda_limits::InjectedFault;
use etl_cli::runner::{redrive_machine, run_machine, RunSettings};
use etl_cli::template::Template;
use etl_core::search::index::EMPLOYEES;
use etl_core::Context;
use integration_tests::sfn_redrive_mock::SfnRedriveMock;
use integration_tests::{cli, download, es_get, in_process, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

const DAY: &str = "2026-11-18";

fn settings(faults: Vec<InjectedFault>) -> RunSettings {
    RunSettings {
        overrides: HashMap::from([("MaxConcurrency".to_string(), "1".to_string())]),
        faults,
        ..in_process(
            Some(DAY),
            Some(json!({"params": {"count": 200, "seed": 3}})),
        )
    }
}

fn fatal(state: &str) -> InjectedFault {
    InjectedFault {
        state: state.into(),
        nth: 1,
        error: "Fatal".into(),
    }
}

/// What a run leaves behind: the employees, the exported objects and the search documents.
async fn final_state(ctx: &Context) -> (Vec<String>, Vec<(String, Vec<u8>)>, Vec<Value>) {
    let client = ctx.postgres().await.unwrap();
    let rows = client
        .query(
            "SELECT (to_jsonb(e) - 'loaded_at')::text FROM hr.employees e
              ORDER BY logical_date, batch_seed, batch_index",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let listed = ctx
        .s3()
        .list_objects_v2()
        .bucket(&ctx.config.bucket)
        .send()
        .await
        .unwrap();
    let mut objects = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap_or_default().to_string();
        objects.push((key.clone(), download(ctx, &key).await));
    }
    let index = ctx.index_name(EMPLOYEES.name);
    let found = es_get(ctx, &format!("/{index}/_search?size=10000&sort=_id")).await;
    let docs = found["hits"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {found}"))
        .iter()
        .map(|hit| json!({"id": hit["_id"], "source": hit["_source"]}))
        .collect();
    (rows, objects, docs)
}

#[tokio::test]
async fn a_redriven_execution_runs_only_what_failed_and_ends_as_a_clean_run() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let template = template();
    // Sync fails in the date's first run and in its second run (SyncAgain), with an error
    // no Retry matches: the execution fails in SyncAgain.
    let failed = run_machine(
        &env.ctx,
        &template,
        "hr",
        &settings(vec![fatal("Sync"), fatal("SyncAgain")]),
    )
    .await
    .unwrap();
    assert_eq!(failed.output.as_ref().unwrap_err().error, "Fatal");
    assert_eq!(
        failed.tasks_entered().collect::<Vec<_>>(),
        [
            "ApplySchema",
            "PlanDates",
            "Hire",
            "Export",
            "Sync",
            "RecordFailure",
            "ExportAgain",
            "SyncAgain"
        ],
        "the second run of the date does not hire again"
    );
    let name = failed.execution_name.clone();
    assert_eq!(
        scalar(
            &env.ctx,
            &format!(
                "SELECT count(*) FROM etl.executions WHERE name = '{name}' AND status = 'FAILED'"
            )
        )
        .await,
        1
    );

    // The redrive runs SyncAgain and what follows it, nothing before.
    let redriven = redrive_machine(&env.ctx, &template, &name, &settings(vec![]))
        .await
        .unwrap();
    assert!(redriven.output.is_ok(), "{:?}", redriven.output);
    assert_eq!(
        redriven.execution_name, name,
        "a redrive keeps the execution"
    );
    // ExportAgain runs again only if SyncAgain's failure aborted it before it finished (the
    // service redrives aborted branches too).
    let rerun: Vec<&str> = redriven
        .tasks_entered()
        .filter(|s| *s != "ExportAgain")
        .collect();
    assert_eq!(rerun, ["SyncAgain", "RecordRecovered"]);
    assert!(redriven.history.iter().any(|e| matches!(
        e,
        Event::ExecutionRedriven {
            redrive_count: 1,
            ..
        }
    )));
    let hires = "SELECT count(*) FROM etl.runs WHERE pipeline = 'hr' AND stage = 'hire'";
    assert_eq!(
        scalar(&env.ctx, hires).await,
        1,
        "Hire ran once, before the redrive"
    );
    let latest = "SELECT status FROM etl.runs WHERE pipeline = 'hr' AND stage = 'pipeline'
                   ORDER BY attempt DESC LIMIT 1";
    let status: String = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one(latest, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "succeeded");
    assert_eq!(
        scalar(&env.ctx, &format!("SELECT count(*) FROM etl.executions WHERE name = '{name}' AND status = 'SUCCEEDED' AND redrive_count = 1")).await,
        1
    );

    assert_same_as_a_clean_run(&env, &template).await;
    assert_refused_now(&env, &template, &name).await;
}

/// The same date run cleanly elsewhere leaves exactly the same rows, objects and documents.
async fn assert_same_as_a_clean_run(env: &TestEnv, template: &Template) {
    let clean_env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let clean = run_machine(&clean_env.ctx, template, "hr", &settings(vec![]))
        .await
        .unwrap();
    assert!(clean.output.is_ok(), "{:?}", clean.output);
    let (rows, objects, docs) = final_state(&env.ctx).await;
    let (clean_rows, clean_objects, clean_docs) = final_state(&clean_env.ctx).await;
    assert_eq!(rows.len(), 200);
    assert_eq!(rows, clean_rows);
    assert!(!objects.is_empty());
    assert_eq!(objects, clean_objects);
    assert_eq!(docs.len(), 200);
    assert_eq!(docs, clean_docs);
}

/// A succeeded execution is not redrivable, as the service says; the command line says the
/// same, and names an execution it does not know.
async fn assert_refused_now(env: &TestEnv, template: &Template, name: &str) {
    let again = redrive_machine(&env.ctx, template, name, &settings(vec![]))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("succeeded: only failed"), "{again}");

    let args = ["run", "--redrive", name];
    let out = cli::output(cli::command(&args).env("DATABASE_URL", &env.db.url));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("succeeded: only failed"), "{stderr}");
    let args = ["run", "--redrive", "hr-no-such-execution"];
    let out = cli::output(cli::command(&args).env("DATABASE_URL", &env.db.url));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is not among the local executions"),
        "{stderr}"
    );
}

/// `etl redrive` on AWS is RedriveExecution, here against a mock of that API (moto has none).
#[test]
fn etl_redrive_calls_redrive_execution_and_waits_for_the_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(SfnRedriveMock::start());
    let failed = "arn:aws:states:us-east-1:123456789012:execution:HrStateMachine-Ab1:hr-2026-11-18";
    let succeeded =
        "arn:aws:states:us-east-1:123456789012:execution:HrStateMachine-Ab1:hr-2026-11-19";
    mock.add(failed, "FAILED", "SUCCEEDED");
    mock.add(succeeded, "SUCCEEDED", "SUCCEEDED");
    let redrive = |args: &[&str]| {
        cli::output(
            cli::command(args)
                .env("AWS_ENDPOINT_URL", &mock.url)
                .env("AWS_REGION", "us-east-1"),
        )
    };

    let args = ["redrive", failed, "--wait"];
    let stdout = cli::stdout_of_success(&args, redrive(&args));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), [failed, "SUCCEEDED"]);
    let redrives = mock.redrives();
    assert_eq!(redrives.len(), 1);
    assert_eq!(redrives[0].0, failed);
    assert!(redrives[0].1.starts_with("etl-redrive-"), "{redrives:?}");

    let out = redrive(&["redrive", succeeded]);
    let stderr = cli::text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ExecutionNotRedrivable"),
        "{stderr}"
    );
    assert_eq!(mock.redrives().len(), 1, "nothing redriven");

    let out = redrive(&["redrive", "hr-2026-11-18"]);
    let stderr = cli::text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--machine"),
        "{stderr}"
    );
}
