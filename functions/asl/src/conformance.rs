//! Runs every case under `conformance/` (see its README) and reports each failing case by
//! file name: the documented behaviour of Step Functions that this engine must reproduce.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::DateTime;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::item_store::InMemoryItemStore;
use crate::{execute, Failure, Machine, RunOptions, TaskInvoker, TaskRequest};

/// The deterministic Task resources cases may use.
struct TestInvoker;

impl TaskInvoker for TestInvoker {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
        async move {
            let text = |field: &str| {
                request
                    .parameters
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            match request.resource.as_str() {
                "arn:aws:states:::test:echo" => Ok(request.parameters.clone()),
                "arn:aws:states:::test:return" => Ok(request.parameters["Value"].clone()),
                "arn:aws:states:::test:fail" => Err(Failure::new(text("Error"), text("Cause"))),
                "arn:aws:states:::test:flaky" => {
                    let fail_times = request.parameters.get("FailTimes").and_then(Value::as_u64);
                    if u64::from(request.retry_count) < fail_times.unwrap_or(0) {
                        Err(Failure::new(
                            text("Error"),
                            format!("attempt {}", request.retry_count),
                        ))
                    } else {
                        Ok(request.parameters.clone())
                    }
                }
                other => Err(Failure::new(
                    "States.TaskFailed",
                    format!("unknown test resource {other}"),
                )),
            }
        }
        .boxed()
    }
}

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            cases(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// JSON equality where 3 and 3.0 are the same number, and an expected `"<any>"` matches
/// anything (a date, a generated name).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (_, Value::String(any)) if any == "<any>" => true,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The service prefixes a runtime error's Cause with the state and the id of its entry
/// event; documented causes usually quote what follows.
fn cause_matches(actual: &str, expected: &str) -> bool {
    if actual == expected {
        return true;
    }
    actual
        .strip_prefix("An error occurred while executing the state '")
        .and_then(|rest| rest.split_once("). "))
        .is_some_and(|(_, tail)| tail == expected)
}

/// Splits `bucket/key`.
fn bucket_key(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, ""))
}

/// The store a case's `s3` fills (a string is the object's text, anything else its JSON);
/// the buckets `expected_s3` names exist too.
fn store(case: &Value) -> InMemoryItemStore {
    let store = InMemoryItemStore::new();
    for (path, body) in case["s3"].as_object().into_iter().flatten() {
        let (bucket, key) = bucket_key(path);
        store.create_bucket(bucket);
        if !key.is_empty() {
            let body = body
                .as_str()
                .map_or_else(|| body.to_string(), ToString::to_string);
            store.insert(bucket, key, body);
        }
    }
    for path in case["expected_s3"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(p, _)| p)
    {
        store.create_bucket(bucket_key(path).0);
    }
    store
}

/// `{MapRunId}` in the expected strings (keys included) becomes the first Map Run's id.
fn with_run_id(expected: &Value, run_id: &str) -> Value {
    match expected {
        Value::String(text) => Value::String(text.replace("{MapRunId}", run_id)),
        Value::Array(items) => items.iter().map(|i| with_run_id(i, run_id)).collect(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| (k.replace("{MapRunId}", run_id), with_run_id(v, run_id)))
            .collect(),
        other => other.clone(),
    }
}

/// Every object `expected_s3` names holds what it says (a string: the exact text; else the
/// JSON), and nothing else was written.
fn check_s3(case: &Value, store: &InMemoryItemStore, run_id: &str) -> Result<(), String> {
    let Some(expected) = case.get("expected_s3") else {
        return Ok(());
    };
    let expected = with_run_id(expected, run_id);
    let mut written = Vec::new();
    for bucket in store_buckets(case) {
        for key in store.keys(&bucket) {
            let path = format!("{bucket}/{key}");
            if case["s3"].get(&path).is_none() {
                written.push(path);
            }
        }
    }
    let mut want: Vec<&String> = expected
        .as_object()
        .into_iter()
        .flatten()
        .map(|(p, _)| p)
        .collect();
    want.sort();
    written.sort();
    if written.iter().collect::<Vec<_>>() != want {
        return Err(format!("wrote {written:?}, expected {want:?}"));
    }
    for (path, body) in expected.as_object().into_iter().flatten() {
        let (bucket, key) = bucket_key(path);
        let actual = store.object(bucket, key).unwrap_or_default();
        let text = String::from_utf8_lossy(&actual);
        let ok = match body {
            Value::String(want) => want == "<any>" || text == *want,
            want => serde_json::from_str::<Value>(&text).is_ok_and(|a| same(&a, want)),
        };
        if !ok {
            return Err(format!("s3://{path} holds {text}, expected {body}"));
        }
    }
    Ok(())
}

fn store_buckets(case: &Value) -> std::collections::BTreeSet<String> {
    ["s3", "expected_s3"]
        .iter()
        .flat_map(|field| case[*field].as_object().into_iter().flatten())
        .map(|(path, _)| bucket_key(path).0.to_string())
        .collect()
}

async fn run_case(case: &Value) -> Result<(), String> {
    let expected = &case["expected"];
    let machine = match Machine::from_json(&case["definition"].to_string()) {
        Ok(machine) => machine,
        Err(_) if expected["error"] == "InvalidDefinition" => return Ok(()),
        Err(e) => return Err(format!("refused at load: {e}")),
    };
    if expected["error"] == "InvalidDefinition" {
        return Err("loaded, but the service refuses this definition".into());
    }
    let context = &case["context"];
    let mut options = RunOptions::new(
        context["StateMachineName"]
            .as_str()
            .unwrap_or("conformance"),
        context["ExecutionName"]
            .as_str()
            .unwrap_or("conformance-execution"),
    );
    options.time_scale = 0.0;
    if let Some(start) = context["StartTime"].as_str() {
        options.start_time = Some(
            DateTime::parse_from_rfc3339(start)
                .map_err(|e| e.to_string())?
                .into(),
        );
    }
    if let Some(role) = context["RoleArn"].as_str() {
        options.role_arn = role.to_string();
    }
    let store = Arc::new(store(case));
    options.item_store = Some(store.clone());
    let input = case.get("input").cloned().unwrap_or(json!({}));
    let execution = execute(&machine, input, Arc::new(TestInvoker), options).await;
    let run_id = execution.map_runs.first().map_or("", |run| run.id());
    check_s3(case, &store, run_id)?;
    let expected = &with_run_id(expected, run_id);
    match (&execution.output, expected.get("output")) {
        (Ok(actual), Some(want)) if same(actual, want) => Ok(()),
        (Ok(actual), Some(want)) => Err(format!("output {actual}, expected {want}")),
        (Ok(actual), None) => Err(format!("succeeded with {actual}, expected {expected}")),
        (Err(failure), None) => {
            let error_ok = expected["error"] == failure.error.as_str();
            let cause_ok = expected["cause"]
                .as_str()
                .is_none_or(|c| cause_matches(&failure.cause, c));
            if error_ok && cause_ok {
                Ok(())
            } else {
                Err(format!("failed with {failure:?}, expected {expected}"))
            }
        }
        (Err(failure), Some(_)) => Err(format!("failed with {failure:?}, expected {expected}")),
    }
}

#[tokio::test]
async fn conformance_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let mut files = Vec::new();
    cases(&root, &mut files);
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let result = match serde_json::from_str::<Value>(&text) {
            Ok(case) if case["source"].as_str().is_some_and(|s| !s.is_empty()) => {
                run_case(&case).await
            }
            Ok(_) => Err("the case has no source".into()),
            Err(e) => Err(format!("not JSON: {e}")),
        };
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    println!(
        "{} passed, {} failed",
        files.len() - failures.len(),
        failures.len()
    );
    assert!(
        !files.is_empty(),
        "no conformance cases under {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "failing conformance cases:\n{}",
        failures.join("\n")
    );
}
