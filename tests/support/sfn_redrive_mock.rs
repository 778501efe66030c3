//! **A mock** of two Step Functions API actions, DescribeExecution and RedriveExecution, for
//! `etl redrive`: moto, the local Step Functions, has no RedriveExecution, and nothing else
//! that runs here does. It speaks the service's JSON 1.0 protocol (`X-Amz-Target:
//! AWSStepFunctions.<Action>`), holds executions by ARN, and enforces the one rule the
//! command relies on: only an execution that did not succeed and is not running is
//! redrivable (`ExecutionNotRedrivable` otherwise). A redriven execution is RUNNING for one
//! DescribeExecution, then ends with the status the test chose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::proxy::{receive, respond, serve, ProxyResponse};

#[derive(Debug, Clone)]
struct Execution {
    status: String,
    redrive_count: u32,
    /// The status a redrive ends with.
    after_redrive: String,
    /// DescribeExecution calls left before a redriven execution ends.
    running_for: u32,
}

/// What the mock was asked to redrive: (execution ARN, client token).
pub type Redrive = (String, String);

#[derive(Default)]
struct State {
    executions: HashMap<String, Execution>,
    redrives: Vec<Redrive>,
}

pub struct SfnRedriveMock {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl SfnRedriveMock {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let (url, task) = serve(move |request| {
            let state = Arc::clone(&shared);
            async move {
                let (parts, body) = receive(request).await;
                let target = parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                answer(&mut state.lock().unwrap(), &target, &body)
            }
        })
        .await;
        Self { url, state, task }
    }

    /// An execution that ended with `status`, and ends with `after_redrive` when redriven.
    pub fn add(&self, arn: &str, status: &str, after_redrive: &str) {
        self.state.lock().unwrap().executions.insert(
            arn.to_string(),
            Execution {
                status: status.to_string(),
                redrive_count: 0,
                after_redrive: after_redrive.to_string(),
                running_for: 0,
            },
        );
    }

    pub fn redrives(&self) -> Vec<Redrive> {
        self.state.lock().unwrap().redrives.clone()
    }
}

impl Drop for SfnRedriveMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(kind: &str, message: &str) -> ProxyResponse {
    let body = json!({"__type": kind, "message": message}).to_string();
    respond(
        StatusCode::BAD_REQUEST,
        &[("content-type", "application/x-amz-json-1.0")],
        body,
    )
}

fn ok(body: &Value) -> ProxyResponse {
    respond(
        StatusCode::OK,
        &[("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
}

fn answer(state: &mut State, target: &str, body: &Value) -> ProxyResponse {
    let arn = body["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(execution) = state.executions.get_mut(&arn) else {
        return error(
            "ExecutionDoesNotExist",
            &format!("Execution Does Not Exist: '{arn}'"),
        );
    };
    match target {
        "AWSStepFunctions.DescribeExecution" => {
            if execution.status == "RUNNING" {
                if execution.running_for == 0 {
                    execution.status = execution.after_redrive.clone();
                } else {
                    execution.running_for -= 1;
                }
            }
            let machine = arn.replace(":execution:", ":stateMachine:");
            let machine = machine
                .rsplit_once(':')
                .map_or(machine.as_str(), |(m, _)| m);
            ok(&json!({
                "executionArn": arn,
                "stateMachineArn": machine,
                "name": arn.rsplit(':').next(),
                "status": execution.status,
                "startDate": 1_764_118_000.0,
                "input": "{}",
                "redriveCount": execution.redrive_count,
            }))
        }
        "AWSStepFunctions.RedriveExecution" => {
            if execution.status == "SUCCEEDED" || execution.status == "RUNNING" {
                return error(
                    "ExecutionNotRedrivable",
                    &format!("Execution is {} and cannot be redriven", execution.status),
                );
            }
            execution.status = "RUNNING".into();
            execution.redrive_count += 1;
            execution.running_for = 1;
            let token = body["clientToken"].as_str().unwrap_or_default().to_string();
            state.redrives.push((arn, token));
            ok(&json!({"redriveDate": 1_764_119_000.0}))
        }
        other => error("UnknownOperationException", other),
    }
}
