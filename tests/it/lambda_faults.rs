//! Lambda's service errors, reproduced locally: the errors a Task meets before its function
//! runs, injected with `RunSettings::faults` (`etl run --inject-fault`). The failures of the
//! function's own environment (init, timeout, memory) are in `lambda_host`.
//!
//! Every Task of every deployed machine must retry `Lambda.TooManyRequestsException` and
//! `Lambda.ServiceException`: the local hosts never raise them unless told to, so a Task that
//! lacks the retrier would pass every local run and fail on the first throttle in AWS. The
//! Tasks a normal run reaches are proven by running them with both faults injected; the
//! failure-path Tasks (RecordFailure, …) by the static check of their Retry blocks.

use std::collections::BTreeSet;

use asl::Event;
use etl_cli::lambda_limits::InjectedFault;
use etl_cli::runner::{run_machine, RunReport, RunSettings};
use etl_core::Service;
use integration_tests::{in_process, repo_root, template, TestEnv, LAKE};
use serde_json::{json, Value};

const THROTTLED: &str = "Lambda.TooManyRequestsException";
const SERVICE_ERROR: &str = "Lambda.ServiceException";

/// Runs `machine` with its first invoke of each of `states` throttled and its second failing
/// with a Lambda service error, and checks that it still succeeds because each state retried
/// both.
async fn run_with_faults(env: &TestEnv, machine: &str, input: Value, states: &[&str]) -> RunReport {
    let faults = states
        .iter()
        .flat_map(|state| {
            [
                InjectedFault {
                    state: state.to_string(),
                    nth: 1,
                    error: THROTTLED.into(),
                },
                InjectedFault {
                    state: state.to_string(),
                    nth: 2,
                    error: SERVICE_ERROR.into(),
                },
            ]
        })
        .collect();
    let settings = RunSettings {
        faults,
        ..in_process(None, Some(input))
    };
    let report = run_machine(&env.ctx, &template(), machine, &settings)
        .await
        .unwrap();
    assert!(
        report.succeeded(),
        "{machine} failed despite its retriers: {:?}",
        report.output
    );
    let retried: BTreeSet<(String, String)> = report
        .history
        .iter()
        .filter_map(|event| match event {
            Event::RetryScheduled { state, error, .. } => Some((state.clone(), error.clone())),
            _ => None,
        })
        .collect();
    for state in states {
        for error in [THROTTLED, SERVICE_ERROR] {
            assert!(
                retried.contains(&(state.to_string(), error.to_string())),
                "{machine}: {state} did not retry {error}; retries: {retried:?}"
            );
        }
    }
    let entered: BTreeSet<&str> = report.tasks_entered().collect();
    assert_eq!(
        entered,
        states.iter().copied().collect(),
        "{machine}: the Tasks reached are not the ones faulted"
    );
    report
}

/// A scheduled start, so that ResolveSchedule runs too.
fn scheduled(cadence: &str, params: Value) -> Value {
    json!({"scheduled_time": "2026-11-26T00:30:00Z", "cadence": cadence, "params": params})
}

/// hr-setup's one Task, faulted; the other machines need the schema it applies.
async fn apply_schema_with_faults(env: &TestEnv) {
    run_with_faults(
        env,
        "hr-setup",
        json!({"logical_date": "2026-11-25"}),
        &["ApplySchema"],
    )
    .await;
}

#[tokio::test]
async fn hr_setup_and_hr_tasks_retry_lambda_service_errors() {
    let env = TestEnv::with_lake(LAKE).await;
    apply_schema_with_faults(&env).await;
    run_with_faults(
        &env,
        "hr",
        scheduled("daily", json!({"count": 10, "seed": 7})),
        &[
            "ResolveSchedule",
            "ApplySchema",
            "PlanDates",
            "Hire",
            "Export",
            "Sync",
            "RecordSuccess",
        ],
    )
    .await;
}

#[tokio::test]
async fn clickstream_tasks_retry_lambda_service_errors() {
    let env = TestEnv::with_lake(LAKE).await;
    run_with_faults(
        &env,
        "clickstream",
        scheduled("hourly", json!({"sessions": 5, "seed": 1})),
        &[
            "ResolveSchedule",
            "ApplySchema",
            "Simulate",
            "RecordSuccess",
        ],
    )
    .await;
}

#[tokio::test]
async fn marketing_tasks_retry_lambda_service_errors() {
    let env = TestEnv::with_lake(&[Service::Postgres, Service::S3]).await;
    // The run ledger's tables come from hr-setup.
    apply_schema_with_faults(&env).await;
    run_with_faults(
        &env,
        "marketing",
        scheduled(
            "daily",
            json!({"rows": 2000, "partition_rows": 1000, "seed": 3}),
        ),
        &[
            "ResolveSchedule",
            "Plan",
            "GeneratePartitions",
            "Unify",
            "Report",
            "RecordSuccess",
        ],
    )
    .await;
}

/// What AWS's best practice names as transient, plus throttling.
const LAMBDA_TRANSIENT: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.TooManyRequestsException",
];

/// The definition with its `${Substitution}` placeholders made into valid JSON.
fn definition(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("ASL file");
    let mut json = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        json.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed substitution") + start;
        let quoted = json.ends_with('"');
        json.push_str(if quoted { "x" } else { "1" });
        rest = &rest[end + 1..];
    }
    json.push_str(rest);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (state name, the errors its Retry blocks name) for every Task, nested ones included.
fn tasks(states: &Value, found: &mut Vec<(String, Vec<String>)>) {
    for (name, state) in states.as_object().into_iter().flatten() {
        if state["Type"] == "Task" {
            let retried = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten())
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
            found.push((name.clone(), retried));
        }
        for nested in ["ItemProcessor", "Iterator"] {
            tasks(&state[nested]["States"], found);
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            tasks(&branch["States"], found);
        }
    }
}

#[test]
fn every_task_retries_the_lambda_service_errors() {
    let dir = repo_root().join("infra/statemachines");
    let mut missing = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("infra/statemachines") {
        let path = entry.expect("dir entry").path();
        let mut found = Vec::new();
        tasks(&definition(&path)["States"], &mut found);
        for (state, retried) in found {
            checked += 1;
            for error in LAMBDA_TRANSIENT {
                if !retried.iter().any(|r| r == error || r == "States.ALL") {
                    let file = path.file_name().unwrap_or_default().to_string_lossy();
                    missing.push(format!("{file} {state}: {error}"));
                }
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} Tasks found: did the layout change?"
    );
    assert!(missing.is_empty(), "Tasks that do not retry: {missing:#?}");
}
