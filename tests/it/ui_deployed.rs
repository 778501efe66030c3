//! `etl ui --deployed` and `etl history --deployed` against moto's Step Functions: the real
//! `etl` binary, with the endpoint from `.services/env` (`scripts/services up`).
//!
//! As in tests/it/deployed.rs, the machines are stand-ins deployed under the names
//! CloudFormation gives the template's machines (`<LogicalId>-<suffix>`), behind a per-test
//! name prefix, with Pass and Fail states that moto's engine executes (scripts/services turns
//! its `execute_state_machine` on): the histories read here are the ones moto recorded while
//! running them, not canned ones. Probed before writing the assertions: a Pass then a Fail
//! gives `ExecutionStarted`, `PassStateEntered`, `PassStateExited` (with its output),
//! `FailStateEntered` and `ExecutionFailed` with the Fail state's error and cause, at the
//! times they happened (moto gives the first state's entry `previousEventId` 0 where AWS
//! gives 1, which nothing here depends on).

use std::collections::BTreeSet;
use std::process::{Child, Output, Stdio};

use etl_core::{Context, Service};
use integration_tests::cli::{command, output, stdout_of_success, text};
use integration_tests::{free_port, moto_sfn, unique_suffix};
use serde_json::{json, Value};

const SUCCEEDED_DAY: &str = "2026-11-25";
const FAILED_DAY: &str = "2026-11-26";
/// An execution named as EventBridge Scheduler names them: no date in the name (its input
/// has one, which the grid does not read).
const UNDATED: &str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";

async fn moto() -> Context {
    moto_sfn::moto(&[Service::StepFunctions]).await
}

use moto_sfn::deploy;

/// Runs the `etl` binary, with no machine prefix from the environment.
fn etl(args: &[&str]) -> Output {
    output(command(args).env_remove("ETL_STATE_MACHINE_PREFIX"))
}

fn etl_json(args: &[&str]) -> Value {
    let stdout = stdout_of_success(args, etl(args));
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("etl {args:?} printed no JSON ({e}): {stdout}"))
}

/// Stand-ins for the template's `hr` (a Pass state) and `clickstream` (a Pass, then a Fail),
/// an execution of each started by `etl start` and waited for, and one more of `hr` under a
/// generated name.
struct Deployment {
    ctx: Context,
    prefix: String,
    hr_arn: String,
    clickstream_arn: String,
}

impl Deployment {
    async fn run(label: &str) -> Self {
        let ctx = moto().await;
        let prefix = format!("t{}-{label}-", unique_suffix());
        let echo = json!({"StartAt": "Echo", "States": {
            "Echo": {"Type": "Pass", "Parameters": {"processed.$": "$.logical_date"}, "End": true}}});
        let rejecting = json!({"StartAt": "Echo", "States": {
            "Echo": {"Type": "Pass", "Next": "Reject"},
            "Reject": {"Type": "Fail", "Error": "InvalidInput", "Cause": "rejected on purpose"}}});
        let hr_arn = deploy(&ctx, &format!("{prefix}HrStateMachine-Q1w2E3r4T5y6"), &echo).await;
        let clickstream_arn = deploy(
            &ctx,
            &format!("{prefix}ClickstreamStateMachine-Z9y8X7w6V5u4"),
            &rejecting,
        )
        .await;
        let start = |machine: &str, day: &str| {
            etl(&[
                "start",
                machine,
                "--date",
                day,
                "--name-prefix",
                &prefix,
                "--wait",
            ])
        };
        let succeeded = start("hr", SUCCEEDED_DAY);
        assert!(succeeded.status.success(), "{}", text(&succeeded.stderr));
        let failed = start("clickstream", FAILED_DAY);
        assert!(
            !failed.status.success(),
            "the Fail state must fail the execution"
        );
        let sfn = ctx.step_functions();
        let undated = sfn
            .start_execution()
            .state_machine_arn(&hr_arn)
            .name(UNDATED)
            .input(json!({"logical_date": "2026-11-27"}).to_string())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "StartExecution: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            });
        etl_cli::deployed::wait(sfn, undated.execution_arn())
            .await
            .unwrap();
        Self {
            ctx,
            prefix,
            hr_arn,
            clickstream_arn,
        }
    }

    fn execution_arn(&self, machine_arn: &str, name: &str) -> String {
        etl_cli::deployed::execution_arn(machine_arn, name).unwrap()
    }
}

/// `etl ui --deployed` on a free port, killed on drop.
struct Viewer {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Viewer {
    fn start(prefix: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut ui = command(&[
            "ui",
            "--deployed",
            "--name-prefix",
            prefix,
            "--port",
            &port.to_string(),
        ]);
        ui.env_remove("ETL_STATE_MACHINE_PREFIX")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ui
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etl ui: {e}"));
        let mut viewer = Self {
            child,
            port,
            http: reqwest::Client::new(),
        };
        integration_tests::cli::wait_until_listening(&mut viewer.child, port, "etl ui");
        viewer
    }

    /// GET `path` with `Host: <host>`; its status and body.
    async fn get_as(&self, host: &str, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.get_as(&format!("127.0.0.1:{}", self.port), path).await
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name="…"` in an HTML fragment.
fn attribute<'a>(fragment: &'a str, name: &str) -> Option<&'a str> {
    let start = fragment.find(&format!("{name}=\""))? + name.len() + 2;
    let length = fragment[start..].find('"')?;
    Some(&fragment[start..start + length])
}

/// The grid's cells with a run: (pipeline, date, status).
fn grid_cells(html: &str) -> BTreeSet<(String, String, String)> {
    html.split("<td data-pipeline=")
        .skip(1)
        .map(|cell| format!("data-pipeline={cell}"))
        .filter_map(|cell| {
            let field = |name| attribute(&cell, name).map(String::from);
            Some((
                field("data-pipeline")?,
                field("data-date")?,
                field("data-status")?,
            ))
        })
        .filter(|(_, _, status)| status != "none")
        .collect()
}

/// The rows of the undated list: (execution, status).
fn undated_rows(html: &str) -> Vec<(String, String)> {
    html.split("<tr data-execution=")
        .skip(1)
        .map(|row| format!("data-execution={row}"))
        .filter_map(|row| {
            Some((
                attribute(&row, "data-execution")?.to_string(),
                attribute(&row, "data-status")?.to_string(),
            ))
        })
        .collect()
}

/// The failing state and error as the history says: the state entered last and never left,
/// and the ExecutionFailed event's error.
fn failure_in(history: &Value) -> (String, String) {
    let events = history["events"].as_array().expect("events");
    let ending = events.last().expect("an event");
    assert_eq!(ending["type"], "ExecutionFailed", "{ending}");
    let error = ending["executionFailedEventDetails"]["error"]
        .as_str()
        .expect("an error");
    let entered = events
        .iter()
        .rev()
        .find(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .expect("a state entered");
    let state = entered["stateEnteredEventDetails"]["name"]
        .as_str()
        .expect("its name");
    (state.to_string(), error.to_string())
}

#[tokio::test]
async fn the_deployed_viewer_shows_the_prefixs_executions_their_failures_and_histories() {
    let deployment = Deployment::run("ui").await;
    let missing_bucket = format!("etl-ui-deployed-{}", unique_suffix().replace('_', "-"));
    let viewer = Viewer::start(&deployment.prefix, &[("ETL_BUCKET", &missing_bucket)]);

    let (status, grid) = viewer.get("/").await;
    assert_eq!(status, 200, "{grid}");
    let expected: BTreeSet<(String, String, String)> = [
        ("hr", SUCCEEDED_DAY, "succeeded"),
        ("clickstream", FAILED_DAY, "failed"),
    ]
    .iter()
    .map(|(p, d, s)| (p.to_string(), d.to_string(), s.to_string()))
    .collect();
    assert_eq!(
        grid_cells(&grid),
        expected,
        "exactly the prefix's dated executions"
    );
    assert!(
        grid.contains(&format!("href=\"/runs/hr-{SUCCEEDED_DAY}\"")),
        "{grid}"
    );
    assert_eq!(
        undated_rows(&grid),
        [(UNDATED.to_string(), "SUCCEEDED".to_string())],
        "the scheduled-style name is listed, not dropped"
    );
    // The template's other machines are not deployed under this prefix: said, not hidden.
    assert!(
        grid.contains(&format!("{}HrSetupStateMachine-", deployment.prefix)),
        "{grid}"
    );

    let failed_name = format!("clickstream-{FAILED_DAY}");
    let failed_arn = deployment.execution_arn(&deployment.clickstream_arn, &failed_name);
    let history = etl_json(&["history", "--deployed", &failed_arn, "--json"]);
    let (page_status, page) = viewer.get(&format!("/runs/{failed_name}")).await;
    assert_eq!(page_status, 200, "{page}");
    let (state, error) = failure_in(&history);
    assert!(
        page.contains(&format!("id=\"failed-state\">{state}</span>")),
        "{state}: {page}"
    );
    assert!(
        page.contains(&format!("id=\"failed-error\">{error}</code>")),
        "{error}: {page}"
    );
    assert!(page.contains("id=\"ledger-not-read\""), "{page}");
    assert!(
        page.contains(&failed_arn),
        "the page names the execution's ARN"
    );
    assert!(
        page.contains("<svg class=\"graph\""),
        "the deployed definition is drawn"
    );

    let (json_status, served) = viewer
        .get(&format!("/runs/{failed_name}/history.json"))
        .await;
    assert_eq!(json_status, 200, "{served}");
    let served: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(
        served, history,
        "the viewer and `etl history --deployed` read one history"
    );

    let (status, page) = viewer.get(&format!("/runs/hr-{SUCCEEDED_DAY}")).await;
    assert_eq!(status, 200, "{page}");
    // hr writes its export under the date: the bucket is listed, and its absence said.
    assert!(
        page.contains(&missing_bucket) && page.contains("cannot be listed"),
        "{page}"
    );
    let (status, page) = viewer.get(&format!("/runs/{UNDATED}")).await;
    assert_eq!(
        status, 200,
        "an undated execution's page is found too: {page}"
    );
    let (status, page) = viewer.get("/runs/hr-1999-01-01").await;
    assert_eq!(status, 404, "{page}");

    // DNS rebinding: the same request under another site's name is refused.
    let (status, page) = viewer
        .get_as(&format!("rebound.example:{}", viewer.port), "/")
        .await;
    assert_eq!(status, 421, "{page}");
    let (status, _) = viewer
        .get_as(&format!("localhost:{}", viewer.port), "/")
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn etl_history_deployed_prints_the_services_history_by_arn_or_by_name() {
    let deployment = Deployment::run("history").await;
    let name = format!("clickstream-{FAILED_DAY}");
    let arn = deployment.execution_arn(&deployment.clickstream_arn, &name);
    let by_arn = etl_json(&["history", "--deployed", &arn, "--json"]);
    let by_name = etl_json(&[
        "history",
        &name,
        "--deployed",
        "--machine",
        "clickstream",
        "--name-prefix",
        &deployment.prefix,
        "--json",
    ]);
    assert_eq!(by_arn, by_name, "the machine looked up as `etl start` does");

    // What the service answers, asked directly: the same events, in order.
    let service = deployment
        .ctx
        .step_functions()
        .get_execution_history()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_sfn::error::DisplayErrorContext(e)));
    let from_service: Vec<(i64, String)> = service
        .events()
        .iter()
        .map(|e| (e.id(), e.r#type().as_str().to_string()))
        .collect();
    let printed: Vec<(i64, String)> = by_arn["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(printed, from_service);
    assert_eq!(
        failure_in(&by_arn),
        ("Reject".to_string(), "InvalidInput".to_string())
    );

    // The table: a header, then a line per event; the last says the error.
    let args = ["history", "--deployed", arn.as_str()];
    let table = stdout_of_success(&args, etl(&args));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), printed.len() + 1, "{table}");
    let last = lines[lines.len() - 1];
    assert!(
        last.contains("ExecutionFailed") && last.contains("error=InvalidInput"),
        "{table}"
    );

    let succeeded = deployment.execution_arn(&deployment.hr_arn, &format!("hr-{SUCCEEDED_DAY}"));
    let history = etl_json(&["history", "--deployed", &succeeded, "--json"]);
    let events = history["events"].as_array().expect("events");
    assert_eq!(
        events.last().map(|e| &e["type"]),
        Some(&json!("ExecutionSucceeded"))
    );

    // A bare name needs its machine.
    let out = etl(&["history", &name, "--deployed"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--machine"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn an_unreachable_step_functions_api_is_a_503_page_not_a_crash() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut viewer = Viewer::start("t-unreachable-", &[("AWS_ENDPOINT_URL", &closed)]);
    for path in [
        "/",
        "/runs/hr-2026-11-25",
        "/runs/hr-2026-11-25/history.json",
    ] {
        let (status, page) = viewer.get(path).await;
        assert_eq!(status, 503, "{path}: {page}");
        assert!(page.contains("Step Functions API"), "{path}: {page}");
    }
    assert!(
        matches!(viewer.child.try_wait(), Ok(None)),
        "etl ui keeps serving after the API failed"
    );
}
