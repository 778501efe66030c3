//! Differential check of the local ASL runner against moto's Step Functions engine: the same
//! definitions, with their Lambda tasks stubbed identically on both sides, must produce the
//! same output (or fail with the same error).
//!
//! The stub is moto's "lambda simple" backend (no Docker): it answers invocations from a
//! queue of canned results, and a result over 6 MB makes the invocation fail with
//! `Function.ResponseSizeTooLarge` — the one function error it can produce. The local side
//! uses a stub with the same queue semantics. Named as what it is: a stub of Lambda, needed
//! because moto cannot run our binaries; the tests in `lambda_watch` run the real ones.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asl::lambda::{LambdaFunctions, LambdaTasks};
use asl::{execute, Failure, Machine, RunOptions, TaskRequest};
use aws_sdk_sfn::types::ExecutionStatus;
use etl_core::{Context, Service};
use futures::future::BoxFuture;
use futures::FutureExt;
use integration_tests::{context, env_source, repo_root, require, template, unique_suffix};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
/// moto rejects Lambda results over 6,000,000 bytes as a function error.
const OVERSIZE: usize = 6_100_000;

fn oversize_result() -> String {
    json!({"pad": "x".repeat(OVERSIZE)}).to_string()
}

/// The local twin of moto's lambda-simple queue.
struct QueuedResults(Mutex<VecDeque<String>>);

impl LambdaFunctions for QueuedResults {
    fn call<'a>(
        &'a self,
        _function: &'a str,
        payload: Value,
        _request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        async move {
            let next = self.0.lock().unwrap().pop_front();
            match next {
                None => Ok(payload), // moto echoes the payload when nothing is queued
                Some(result) if result.len() > 6_000_000 => Err(Failure::new(
                    "Function.ResponseSizeTooLarge",
                    "response larger than 6000000 bytes",
                )),
                Some(result) => Ok(serde_json::from_str(&result).unwrap()),
            }
        }
        .boxed()
    }
}

struct Moto {
    endpoint: String,
    http: reqwest::Client,
    ctx: Context,
}

impl Moto {
    async fn connect() -> Self {
        let env = env_source();
        let endpoint = env
            .get("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL (moto) is not set: run `scripts/services up`")
            .trim_end_matches('/')
            .to_string();
        let ctx = context(&env).await;
        require(&ctx, &[Service::StepFunctions]).await;
        Self {
            endpoint,
            http: reqwest::Client::new(),
            ctx,
        }
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> String {
        let response = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .header("content-type", content_type)
            // moto reads the region and service from the credential scope; it checks no signature.
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto is not reachable at {}: {e}", self.endpoint));
        response.text().await.unwrap()
    }

    /// Lambda tasks in moto need no Docker, and Step Functions really interprets definitions.
    async fn configure(&self) {
        self.post(
            "/moto-api/config",
            "application/json",
            json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}).to_string(),
        )
        .await;
    }

    async fn role_arn(&self) -> String {
        let body = self
            .post(
                "/",
                "application/x-www-form-urlencoded",
                "Action=CreateRole&Version=2010-05-08&RoleName=etl-differential&AssumeRolePolicyDocument=%7B%7D".into(),
            )
            .await;
        assert!(
            body.contains("<Arn>") || body.contains("EntityAlreadyExists"),
            "moto IAM CreateRole failed: {body}"
        );
        "arn:aws:iam::123456789012:role/etl-differential".into()
    }

    async fn stub_function(&self, role: &str) -> String {
        let lambda = self.ctx.lambda_invoker(None, Duration::from_secs(30));
        let name = "etl-differential-stub";
        if let Ok(found) = lambda.get_function().function_name(name).send().await {
            if let Some(arn) = found.configuration().and_then(|c| c.function_arn()) {
                return arn.to_string();
            }
        }
        // An empty zip archive: the stub backend never runs the code.
        let mut empty_zip = vec![0x50, 0x4b, 0x05, 0x06];
        empty_zip.extend([0u8; 18]);
        let created = lambda
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "moto CreateFunction: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                )
            });
        created.function_arn().unwrap().to_string()
    }

    async fn queue(&self, results: &[String]) {
        let body = self
            .post(
                "/moto-api/static/lambda-simple/response",
                "application/json",
                json!({"results": results, "region": REGION}).to_string(),
            )
            .await;
        assert!(
            !body.contains("rror"),
            "queueing stub results failed: {body}"
        );
    }

    /// Runs a definition on moto's engine; `Err((error, cause))` for a failed execution.
    async fn run(
        &self,
        name: &str,
        definition: &str,
        role: &str,
        input: &Value,
    ) -> Result<Value, (String, String)> {
        let sfn = self.ctx.step_functions();
        let machine = sfn
            .create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn(role)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "moto CreateStateMachine: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            });
        let started = sfn
            .start_execution()
            .state_machine_arn(machine.state_machine_arn())
            .name(format!("{name}-run"))
            .input(input.to_string())
            .send()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let described = sfn
                .describe_execution()
                .execution_arn(started.execution_arn())
                .send()
                .await
                .unwrap();
            match described.status() {
                ExecutionStatus::Running => {
                    assert!(
                        Instant::now() < deadline,
                        "moto execution {name} did not finish in 60 s"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                ExecutionStatus::Succeeded => {
                    return Ok(serde_json::from_str(described.output().unwrap_or("null")).unwrap())
                }
                _ => {
                    return Err((
                        described.error().unwrap_or_default().to_string(),
                        described.cause().unwrap_or_default().to_string(),
                    ))
                }
            }
        }
    }
}

async fn run_locally(
    definition: &str,
    input: &Value,
    results: &[String],
) -> Result<Value, Failure> {
    let machine = Machine::from_json(definition).unwrap();
    let stub = QueuedResults(Mutex::new(results.iter().cloned().collect()));
    let mut options = RunOptions::new("differential", "local");
    options.time_scale = 0.0;
    execute(
        &machine,
        input.clone(),
        Arc::new(LambdaTasks(stub)),
        options,
    )
    .await
    .output
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", unique_suffix())
}

/// One test, run in order: moto's stub queue is shared by every function in the region.
// One scenario end to end, step by step: split up, the order of its steps would be lost.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn local_runner_matches_motos_engine() {
    let moto = Moto::connect().await;
    moto.configure().await;
    let role = moto.role_arn().await;
    let stub_arn = moto.stub_function(&role).await;

    // 1. Map over 3 items, Choice, a Retry that succeeds on the 2nd attempt, a Catch.
    let definition =
        std::fs::read_to_string(repo_root().join("tests/fixtures/differential.asl.json"))
            .unwrap()
            .replace("${StubFunctionArn}", &stub_arn);
    let input = json!({"logical_date": "2026-11-25", "items": [5, 50, 500]});
    let results = vec![oversize_result(), json!({"rows": 42}).to_string()];
    moto.queue(&results).await;
    let on_moto = moto
        .run(&unique("differential"), &definition, &role, &input)
        .await;
    let locally = run_locally(&definition, &input, &results).await;
    let expected = json!({
        "date": "2026-11-25",
        "fetched": {"rows": 42},
        "classified": [
            {"n": 5, "index": 0, "label": "item-5-of-2026-11-25", "size": "small"},
            {"size": "big", "n": 50, "label": "item-50-of-2026-11-25", "index": 1},
            {"size": "big", "n": 500, "label": "item-500-of-2026-11-25", "index": 2}
        ],
        "count": 3,
        "caught": "InvalidInput",
        "cause": "rejected on purpose",
        "summary": "3 items, caught InvalidInput"
    });
    assert_eq!(
        on_moto.as_ref().map_err(std::clone::Clone::clone),
        Ok(&expected),
        "moto's engine"
    );
    assert_eq!(locally, Ok(expected), "local runner");

    // 2. The deployed hr-setup definition, its function stubbed: success, then a failure that
    //    its Catch routes to the Fail state. It is written in JSONata, which moto 5.2.5 parses
    //    but cannot evaluate (its JSONata evaluator is a stub), so moto runs the JSONPath
    //    definition it replaced and the local runner the deployed one: the two must agree.
    let spec = template();
    let raw = std::fs::read_to_string(&spec.machine("hr-setup").unwrap().definition_path).unwrap();
    let definition = raw.replace("${HrSchemaFunctionArn}", &stub_arn);
    let jsonpath =
        std::fs::read_to_string(repo_root().join("tests/fixtures/hr-setup.jsonpath.asl.json"))
            .unwrap()
            .replace("${HrSchemaFunctionArn}", &stub_arn);
    let input = json!({"logical_date": "2026-11-25"});

    let results =
        vec![json!({"schema_version": 2, "applied": [1, 2], "already_applied": 0}).to_string()];
    moto.queue(&results).await;
    let on_moto = moto
        .run(&unique("hr-setup-ok"), &jsonpath, &role, &input)
        .await;
    let locally = run_locally(&definition, &input, &results).await;
    assert_eq!(
        on_moto.unwrap(),
        locally.unwrap(),
        "hr-setup success output differs between moto and the local runner"
    );

    let results = vec![oversize_result()];
    moto.queue(&results).await;
    let on_moto = moto
        .run(&unique("hr-setup-fail"), &jsonpath, &role, &input)
        .await;
    let locally = run_locally(&definition, &input, &results).await;
    let (moto_error, _) = on_moto.expect_err("moto: the oversize result must fail hr-setup");
    let local = locally.expect_err("local: the oversize result must fail hr-setup");
    assert_eq!(moto_error, "Function.ResponseSizeTooLarge");
    assert_eq!(local.error, moto_error);

    // 3. The deployed hr and clickstream definitions started as EventBridge Scheduler starts
    //    them: the Choice, ResolveSchedule and the JsonMerge of the resolved date, then the
    //    ordinary flow, every function stubbed in call order.
    let stubbed = |machine: &str| {
        let spec = spec.machine(machine).unwrap();
        let mut definition = spec.definition().unwrap();
        for binary in spec.substitutions.values() {
            if let Some(function) = binary.strip_prefix("arn:aws:lambda:") {
                let local_arn = format!("arn:aws:lambda:{function}");
                definition = definition.replace(&local_arn, &stub_arn);
            }
        }
        definition
    };
    // Export and Sync run in parallel, so either may take either stub: one serves both.
    let published = json!({"key": "k", "rows": 3, "bytes": 9, "indexed": 3, "failed": 0,
        "progress": {"invocations": 1, "indexed": 3, "failed": 0, "more": false, "after_employee_id": 3}});
    let cases = [
        (
            "hr",
            json!({"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily"}),
            vec![
                json!({"logical_date": "2026-11-25", "hour": null}), // ResolveSchedule
                json!({"schema_version": 2}),                        // ApplySchema
                json!({"items": [], "count": 0, "remaining": {"count": 0, "from": null}}), // PlanDates
            ],
            json!({"logical_date": "2026-11-25", "dates_run": 0, "results": [], "remaining": {"count": 0, "from": null}}),
        ),
        (
            // One date: the Map, the Parallel, and the per-date outcome the execution checks.
            "hr",
            json!({"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily"}),
            vec![
                json!({"logical_date": "2026-11-25", "hour": null}), // ResolveSchedule
                json!({"schema_version": 2}),                        // ApplySchema
                json!({"items": [{"logical_date": "2026-11-25", "execution": "x"}], "count": 1, "remaining": {"count": 0, "from": null}}), // PlanDates
                json!({"generated": 3, "loaded": 3, "rejected": 0}), // Hire
                published.clone(),                                   // Export or Sync
                published.clone(),                                   // Sync or Export
                json!({"run_id": 1}),                                // RecordSuccess
            ],
            json!({"logical_date": "2026-11-25", "dates_run": 1, "results": [{
                "logical_date": "2026-11-25",
                "execution": "x",
                "hire": {"generated": 3, "loaded": 3, "rejected": 0},
                "published": {
                    "export": {"key": "k", "rows": 3, "bytes": 9},
                    "sync": {"indexed": 3, "failed": 0, "invocations": 1}
                },
                "outcome": {"status": "succeeded"}
            }], "remaining": {"count": 0, "from": null}}),
        ),
        (
            "clickstream",
            json!({"scheduled_time": "2026-11-26T00:05:00Z", "cadence": "hourly", "params": {"sessions": 5}}),
            vec![
                json!({"logical_date": "2026-11-25", "hour": 23}), // ResolveSchedule
                json!({"schema_version": 2}),                      // ApplySchema
                json!({"events": 9, "indexed": 9, "failed": 0, "by_type": {}}), // Simulate
                json!({"run_id": 1}),                              // RecordSuccess
            ],
            json!({"events": 9, "indexed": 9, "failed": 0, "by_type": {}}),
        ),
    ];
    for (machine, input, results, expected) in cases {
        let definition = stubbed(machine);
        let results: Vec<String> = results.iter().map(Value::to_string).collect();
        moto.queue(&results).await;
        let on_moto = moto
            .run(
                &unique(&format!("{machine}-scheduled")),
                &definition,
                &role,
                &input,
            )
            .await;
        let locally = run_locally(&definition, &input, &results).await;
        assert_eq!(on_moto, Ok(expected.clone()), "{machine} on moto's engine");
        assert_eq!(locally, Ok(expected), "{machine} locally");
    }

    // 4. A date whose Hire fails (the oversize result, a function error no Retry matches):
    //    caught into the date's own RecordFailure, then the failed date runs once more
    //    (HireAgain), fails the same way, and the execution fails in that step.
    let definition = stubbed("hr");
    let input = json!({"logical_date": "2026-11-25"});
    let results = vec![
        json!({"schema_version": 2}).to_string(), // ApplySchema
        json!({"items": [{"logical_date": "2026-11-25", "execution": "x"}], "count": 1, "remaining": {"count": 0, "from": null}})
            .to_string(), // PlanDates
        oversize_result(),                        // Hire
        json!({"run_id": 1}).to_string(),         // RecordFailure
        oversize_result(),                        // HireAgain
    ];
    moto.queue(&results).await;
    let on_moto = moto
        .run(&unique("hr-date-fails"), &definition, &role, &input)
        .await;
    let locally = run_locally(&definition, &input, &results).await;
    let (moto_error, moto_cause) = on_moto.expect_err("moto: the failed date must fail hr");
    let local = locally.expect_err("local: the failed date must fail hr");
    for (engine, error, cause) in [
        ("moto", moto_error.as_str(), moto_cause.as_str()),
        ("local", local.error.as_str(), local.cause.as_str()),
    ] {
        assert_eq!(error, "Function.ResponseSizeTooLarge", "{engine}: {cause}");
    }
}
