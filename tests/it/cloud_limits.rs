//! The quotas AWS enforces and a laptop does not, enforced by the local engine and runner so
//! that a run that passes here does not fail on AWS: 256 KiB payloads
//! (`States.DataLimitExceeded`), the 25,000-event history, the inline Map's 40 iterations at
//! a time, each function's `Timeout` and `MemorySize` (`Lambda.Unknown`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use asl::lambda::{LambdaFunctions, LambdaTasks};
use asl::limits::{HISTORY_LIMIT_EVENTS, PAYLOAD_LIMIT_BYTES};
use asl::{errors, execute, Execution, Failure, Machine, RunOptions, TaskRequest};
use etl_cli::lambda_limits::{LambdaLimits, LimitedFunctions, LAMBDA_UNKNOWN};
use etl_cli::runner::{run_machine, RunSettings};
use etl_cli::template::FunctionSizing;
use etl_core::Service;
use futures::future::BoxFuture;
use futures::FutureExt;
use integration_tests::{in_process, template, TestEnv};
use serde_json::{json, Value};

/// A stand-in for the Lambda functions: `big` returns `bytes` characters, `slow-once` sleeps
/// through its first call, anything else echoes; every call counts how many run at once.
#[derive(Clone, Default)]
struct FakeFunctions(Arc<Counters>);

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    calls: AtomicUsize,
}

impl LambdaFunctions for FakeFunctions {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        _request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        let counters = &self.0;
        async move {
            let call = counters.calls.fetch_add(1, Ordering::SeqCst);
            let now = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
            counters.most_at_once.fetch_max(now, Ordering::SeqCst);
            let pause = match function {
                "slow-once" if call == 0 => Duration::from_secs(5),
                _ => Duration::from_millis(20),
            };
            tokio::time::sleep(pause).await;
            counters.running.fetch_sub(1, Ordering::SeqCst);
            Ok(match function {
                "big" => {
                    json!({"text": "x".repeat(payload["bytes"].as_u64().unwrap_or(0) as usize)})
                }
                _ => payload,
            })
        }
        .boxed()
    }
}

async fn run_with(
    definition: Value,
    input: Value,
    functions: impl LambdaFunctions + 'static,
) -> Execution {
    let machine = Machine::from_json(&definition.to_string()).unwrap();
    let mut options = RunOptions::new("limits", "limits-test");
    options.time_scale = 0.0;
    execute(&machine, input, Arc::new(LambdaTasks(functions)), options).await
}

async fn run(definition: Value, input: Value) -> Execution {
    run_with(definition, input, FakeFunctions::default()).await
}

/// A Task calling `function` with `payload`, caught by `States.ALL` (which must not catch
/// `States.DataLimitExceeded`).
fn task_caught_by_all(function: &str, payload: Value) -> Value {
    json!({
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": function, "Payload": payload},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
            "Caught": {"Type": "Succeed"}
        }
    })
}

#[tokio::test]
async fn payloads_over_256_kib_fail_with_data_limit_exceeded_which_states_all_does_not_catch() {
    // A Task result over the quota.
    let exec = run(
        task_caught_by_all("big", json!({"bytes": PAYLOAD_LIMIT_BYTES})),
        json!({}),
    )
    .await;
    let failure = exec.output.unwrap_err();
    assert_eq!(failure.error, errors::DATA_LIMIT_EXCEEDED, "{failure:?}");
    assert!(
        failure.cause.contains("'T' returned a result"),
        "{}",
        failure.cause
    );

    // The same result well inside the quota passes.
    let exec = run(
        task_caught_by_all("big", json!({"bytes": 200_000})),
        json!({}),
    )
    .await;
    assert!(exec.output.is_ok(), "{:?}", exec.output);

    // A state's output over the quota (a Pass building it from the input twice).
    let half = "y".repeat(PAYLOAD_LIMIT_BYTES / 2);
    let definition = json!({"StartAt": "Twice", "States": {"Twice": {"Type": "Pass",
        "Parameters": {"a.$": "$.half", "b.$": "$.half"}, "End": true}}});
    let failure = run(definition, json!({"half": half}))
        .await
        .output
        .unwrap_err();
    assert_eq!(failure.error, errors::DATA_LIMIT_EXCEEDED);
    assert!(
        failure.cause.contains("'Twice' has an output"),
        "{}",
        failure.cause
    );

    // A Task's input after Parameters over the quota: refused before the function runs.
    let fake = FakeFunctions::default();
    let definition = task_caught_by_all("echo", json!({"a.$": "$.half", "b.$": "$.half"}));
    let exec = run_with(definition, json!({"half": half}), fake.clone()).await;
    assert_eq!(exec.output.unwrap_err().error, errors::DATA_LIMIT_EXCEEDED);
    assert_eq!(fake.0.calls.load(Ordering::SeqCst), 0);

    // Only a Catch naming the error catches it.
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "big", "Payload": {"bytes": PAYLOAD_LIMIT_BYTES}},
              "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "ResultPath": null, "Next": "Caught"}],
              "End": true},
        "Caught": {"Type": "Succeed"}}});
    assert!(run(definition, json!({})).await.output.is_ok());
}

#[tokio::test]
async fn an_execution_fails_at_its_25000th_history_event_unless_it_is_the_last() {
    // Each lap is a Pass and a Choice: 4 history events.
    let loop_until = |laps: u64| {
        json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
            "More": {"Type": "Choice", "Default": "Done",
                     "Choices": [{"Variable": "$.n", "NumericLessThan": laps, "Next": "Count"}]},
            "Done": {"Type": "Succeed"}}})
    };
    let exec = run(loop_until(100), json!({"n": 0})).await;
    assert_eq!(exec.output.unwrap(), json!({"n": 100}));
    assert_eq!(exec.service_events["PassStateEntered"], 100);
    assert_eq!(exec.service_events["ChoiceStateExited"], 100);
    assert_eq!(exec.service_events["ExecutionStarted"], 1);
    assert_eq!(exec.service_events["ExecutionSucceeded"], 1);

    let exec = run(loop_until(10_000), json!({"n": 0})).await;
    let failure = exec.output.unwrap_err();
    assert_eq!(failure.error, errors::RUNTIME);
    assert!(
        failure
            .cause
            .contains("maximum number of history events (25000)"),
        "{}",
        failure.cause
    );
    let total: u64 = exec.service_events.values().sum();
    assert_eq!(
        total, HISTORY_LIMIT_EVENTS,
        "ExecutionFailed is the 25,000th event"
    );
    assert_eq!(exec.service_events["ExecutionFailed"], 1);
}

#[tokio::test]
async fn an_inline_map_runs_at_most_40_iterations_at_once() {
    for max_concurrency in [0, 100] {
        let fake = FakeFunctions::default();
        let definition = json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "MaxConcurrency": max_concurrency, "End": true,
            "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
                "ResultSelector": {"i.$": "$.Payload"}, "End": true}}}}}});
        let items: Vec<u32> = (0..100).collect();
        let exec = run_with(definition, json!(items), fake.clone()).await;
        assert_eq!(exec.output.unwrap().as_array().map(Vec::len), Some(100));
        assert_eq!(
            fake.0.most_at_once.load(Ordering::SeqCst),
            40,
            "MaxConcurrency {max_concurrency}"
        );
        assert_eq!(exec.service_events["MapIterationStarted"], 100);
    }
}

/// A sizing that gives `function` `timeout_seconds` and `memory_mb`.
fn sized(function: &str, timeout_seconds: u64, memory_mb: u64) -> LambdaLimits {
    LambdaLimits {
        sizing: HashMap::from([(
            function.to_string(),
            FunctionSizing {
                timeout_seconds,
                memory_mb,
            },
        )]),
        ..LambdaLimits::default()
    }
}

#[tokio::test]
async fn a_stage_running_past_its_timeout_fails_with_lambda_unknown() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    // hr-schema's template Timeout (60 s) scaled to 3 ms: connecting alone takes longer.
    let settings = RunSettings {
        lambda_limits: LambdaLimits {
            timeout_scale: 0.000_05,
            ..LambdaLimits::default()
        },
        ..in_process(Some("2026-11-25"), None)
    };
    let report = run_machine(&env.ctx, &template(), "hr-setup", &settings)
        .await
        .unwrap();
    let failure = report.output.unwrap_err();
    assert_eq!(failure.error, LAMBDA_UNKNOWN, "{failure:?}");
    assert!(
        failure.cause.contains("Task timed out after 60.00 seconds"),
        "{}",
        failure.cause
    );
}

#[tokio::test]
async fn a_retry_naming_lambda_unknown_retries_a_timeout() {
    let limited = LimitedFunctions::new(
        FakeFunctions::default(),
        sized("slow-once", 1, 128),
        Vec::new(),
        false,
    );
    let definition = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "slow-once", "Payload": {"ok": true}},
        "Retry": [{"ErrorEquals": ["Lambda.Unknown"], "MaxAttempts": 1}],
        "OutputPath": "$.Payload", "End": true}}});
    let exec = run_with(definition, json!({}), limited).await;
    assert_eq!(exec.output.unwrap(), json!({"ok": true}));
    assert_eq!(exec.service_events["TaskFailed"], 1);
    assert_eq!(exec.service_events["TaskSucceeded"], 1);
}

#[tokio::test]
async fn a_stage_over_its_memory_size_fails_as_an_out_of_memory_kill() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let run = |limits: LambdaLimits| {
        let settings = RunSettings {
            lambda_limits: limits,
            ..in_process(Some("2026-11-25"), None)
        };
        let ctx = Arc::clone(&env.ctx);
        async move {
            run_machine(&ctx, &template(), "hr-setup", &settings)
                .await
                .unwrap()
        }
    };
    // 0 MB: any growth at all is over it (the first migrations allocate).
    let report = run(sized("hr-schema", 60, 0)).await;
    let failure = report.output.unwrap_err();
    assert_eq!(failure.error, LAMBDA_UNKNOWN, "{failure:?}");
    assert!(
        failure.cause.contains("Runtime.OutOfMemory"),
        "{}",
        failure.cause
    );

    // With the template's 128 MB the stage fits.
    let report = run(LambdaLimits::default()).await;
    assert!(report.succeeded(), "{:?}", report.output);
}
