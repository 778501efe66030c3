//! `etl lambda-host`: the real function binaries under a local Lambda service that fails the
//! way Lambda does, where `cargo lambda watch` does not (it never answers an invoke whose
//! function died during init, and enforces no Timeout, memory, payload or concurrency limit).
//! Environment failures reach Step Functions as `Lambda.Unknown` with Lambda's document as
//! the cause; service errors as `Lambda.<code>`.

use std::collections::HashMap;
use std::net::SocketAddr;

use asl::Failure;
use etl_cli::functions::OverInvokeApi;
use etl_cli::lambda_host::{HostConfig, LambdaHost, NEW_ACCOUNT_CONCURRENCY};
use etl_cli::runner::{run_machine, FunctionHost, RunSettings};
use etl_cli::template::FunctionSizing;
use etl_core::config::EnvSource;
use etl_core::Service;
use integration_tests::cli::{profile_dir, workspace_binary};
use integration_tests::{in_process, template, TestEnv};
use serde_json::{json, Value};

const DATE: &str = "2026-11-25";

/// A host over this build's debug binaries of `functions`, sized as the template sizes them.
async fn host(
    env: &EnvSource,
    functions: &[&str],
    tune: impl FnOnce(&mut HostConfig),
) -> LambdaHost {
    for function in functions {
        workspace_binary(function, &format!("functions/{function}/src/main.rs"));
    }
    let mut config = HostConfig {
        binaries: profile_dir(),
        sizing: template().all_sizing().clone(),
        env: env.function_settings(),
        concurrency: NEW_ACCOUNT_CONCURRENCY,
        timeout_scale: 1.0,
        region: env.get("AWS_REGION").unwrap_or("us-east-1").to_string(),
    };
    tune(&mut config);
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    LambdaHost::start(config, any_port).await.unwrap()
}

async fn schema(lambda: &OverInvokeApi) -> Result<Value, Failure> {
    lambda
        .call("hr-schema", &json!({ "logical_date": DATE }))
        .await
}

/// Lambda's document inside a `Lambda.Unknown` failure.
fn lambda_document(failure: &Failure) -> Value {
    assert_eq!(failure.error, "Lambda.Unknown", "{failure:?}");
    serde_json::from_str(&failure.cause).unwrap_or_else(|e| panic!("{e}: {}", failure.cause))
}

/// A function whose process exits before it reaches the runtime loop (here: a configuration
/// value that does not parse) is what Lambda reports as `Runtime.ExitError`, and the Task as
/// `Lambda.Unknown`.
#[tokio::test]
async fn a_function_that_dies_during_init_fails_with_runtime_exit_error() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let broken = env.env.with("ETL_S3_FORCE_PATH_STYLE", "sometimes");
    let host = host(&broken, &["hr-schema", "record-run"], |_| {}).await;
    let lambda = OverInvokeApi::new(&env.ctx, &host.endpoint());
    let failure = schema(&lambda).await.unwrap_err();
    let document = lambda_document(&failure);
    assert_eq!(document["errorType"], "Runtime.ExitError", "{document}");
    let message = document["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("RequestId: ")
            && message.ends_with("Runtime exited with error: exit status 1"),
        "{message}"
    );

    let settings = RunSettings {
        host: FunctionHost::InvokeApi(host.endpoint()),
        ..in_process(Some(DATE), None)
    };
    let report = run_machine(&env.ctx, &template(), "hr-setup", &settings)
        .await
        .unwrap();
    let failure = report.output.unwrap_err();
    assert_eq!(failure.error, "Lambda.Unknown", "{failure:?}");
    assert!(failure.cause.contains("Runtime.ExitError"), "{failure:?}");
}

/// One process serves invocation after invocation, as a warm Lambda environment does.
#[tokio::test]
async fn a_warm_sandbox_serves_the_next_invocation() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let host = host(&env.env, &["hr-schema"], |_| {}).await;
    let lambda = OverInvokeApi::new(&env.ctx, &host.endpoint());
    for _ in 0..3 {
        let output = schema(&lambda).await.unwrap();
        assert_eq!(output["logical_date"], DATE, "{output}");
    }
    assert_eq!(host.sandboxes_started(), 1);
}

/// Past its Timeout the invocation ends as Lambda ends it, and the next one starts cold.
#[tokio::test]
async fn an_invocation_past_its_timeout_is_sandbox_timedout() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let host = host(&env.env, &["hr-schema"], |config| {
        config.timeout_scale = 1e-6;
    })
    .await;
    let lambda = OverInvokeApi::new(&env.ctx, &host.endpoint());
    for _ in 0..2 {
        let document = lambda_document(&schema(&lambda).await.unwrap_err());
        assert_eq!(document["errorType"], "Sandbox.Timedout", "{document}");
        assert!(
            document["errorMessage"]
                .as_str()
                .unwrap()
                .contains("Task timed out after 0.00"),
            "{document}"
        );
    }
    assert_eq!(
        host.sandboxes_started(),
        2,
        "a timed-out sandbox is not reused"
    );
}

/// A process whose peak RSS passes its MemorySize is stopped as out of memory.
#[tokio::test]
async fn a_function_over_its_memory_size_is_out_of_memory() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let host = host(&env.env, &["hr-schema"], |config| {
        let sizing = FunctionSizing {
            timeout_seconds: 60,
            memory_mb: 1,
        };
        config.sizing = HashMap::from([("hr-schema".to_string(), sizing)]);
    })
    .await;
    let lambda = OverInvokeApi::new(&env.ctx, &host.endpoint());
    let document = lambda_document(&schema(&lambda).await.unwrap_err());
    assert_eq!(document["errorType"], "Runtime.OutOfMemory", "{document}");
}

/// The account's concurrency quota throttles the invocation over it, and a finished
/// invocation gives its unit back; the service's own request limits and unknown names are
/// Lambda's errors too.
#[tokio::test]
async fn service_errors_are_named_as_step_functions_names_them() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    // A quota of 0: every invocation is over it, with no timing involved.
    let exhausted = host(&env.env, &["hr-schema"], |config| config.concurrency = 0).await;
    let failure = schema(&OverInvokeApi::new(&env.ctx, &exhausted.endpoint()))
        .await
        .unwrap_err();
    assert_eq!(
        failure.error, "Lambda.TooManyRequestsException",
        "{failure:?}"
    );

    let host = host(&env.env, &["hr-schema"], |config| config.concurrency = 1).await;
    let lambda = OverInvokeApi::new(&env.ctx, &host.endpoint());
    for _ in 0..2 {
        schema(&lambda)
            .await
            .expect("one at a time fits a quota of 1");
    }

    let seven_mb = json!({ "logical_date": DATE, "padding": "x".repeat(7 << 20) });
    let failure = lambda.call("hr-schema", &seven_mb).await.unwrap_err();
    assert_eq!(
        failure.error, "Lambda.RequestTooLargeException",
        "{failure:?}"
    );

    // Not in the template, although `etl` sits in the same directory.
    for name in ["no-such-function", "etl"] {
        let failure = lambda.call(name, &json!({})).await.unwrap_err();
        assert_eq!(
            failure.error, "Lambda.ResourceNotFoundException",
            "{failure:?}"
        );
    }
}

/// The whole marketing machine on the real binaries under a quota of 3 concurrent
/// invocations: its 10-way Generate fan-out is throttled as Lambda throttles a new account,
/// and the Tasks' retriers carry it to success.
#[tokio::test]
async fn marketing_succeeds_on_the_real_binaries_under_a_tight_concurrency_quota() {
    const QUOTA: usize = 3;
    let env = TestEnv::with_lake(&[Service::Postgres, Service::S3]).await;
    let functions = [
        "hr-schema",
        "plan-dates",
        "marketing-plan",
        "marketing-generate",
        "marketing-unify",
        "marketing-report",
        "record-run",
    ];
    let host = host(&env.env, &functions, |config| config.concurrency = QUOTA).await;
    let on_host = |date, input| RunSettings {
        host: FunctionHost::InvokeApi(host.endpoint()),
        // Retry waits 20 times shorter: long enough for a throttled Task to find a free slot.
        time_scale: 0.05,
        ..in_process(date, input)
    };
    let setup = run_machine(
        &env.ctx,
        &template(),
        "hr-setup",
        &on_host(Some(DATE), None),
    )
    .await
    .unwrap();
    assert!(setup.succeeded(), "{:?}", setup.output);

    let input = json!({
        "scheduled_time": "2026-11-26T00:30:00Z",
        "cadence": "daily",
        "params": {"rows": 10_000, "partition_rows": 1_000, "seed": 3}
    });
    let report = run_machine(
        &env.ctx,
        &template(),
        "marketing",
        &on_host(None, Some(input)),
    )
    .await
    .unwrap();
    assert!(report.succeeded(), "{:?}", report.output);
    let throttled = report
        .history
        .iter()
        .filter(|event| {
            matches!(event, asl::Event::RetryScheduled { error, .. }
                if error == "Lambda.TooManyRequestsException")
        })
        .count();
    // The Map starts its 10 Generate invocations in one poll, while the first 3 are still
    // starting their processes: 7 over the quota is certain in practice, not by timing luck.
    assert!(
        throttled > 0,
        "a 10-way fan-out under a quota of {QUOTA} was never throttled"
    );
    assert!(
        host.sandboxes_started() <= (functions.len() * QUOTA) as u64,
        "{} processes: warm sandboxes were not reused",
        host.sandboxes_started()
    );
}
