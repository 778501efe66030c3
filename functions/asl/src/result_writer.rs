//! A distributed Map's results: the state's result array, or with a `ResultWriter` the files
//! it writes to S3 through the [`ItemStore`].
//!
//! Source: "ResultWriter (Map)",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html>:
//! - `Transformation` `NONE` (the default when exporting) gives each child's execution
//!   metadata with its `Input` and `Output` as JSON text, `COMPACT` (the default without a
//!   `ResultWriter`) its output only, `FLATTEN` the outputs with arrays spliced in. A failed
//!   child is always given as with `NONE`.
//! - Results are exported "with the same status to their respective files":
//!   `<Prefix>/<map run id>/SUCCEEDED_0.json`, `FAILED_0.json`, `PENDING_0.json` (a file
//!   only when it has entries), and a `manifest.json` listing them
//!   (`{"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED", "PENDING", "SUCCEEDED"}}`,
//!   each a list of `{"Key", "Size"}`). The state's result is then
//!   `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}` (the manifest's key).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::errors::RESULT_WRITER_FAILED;
use crate::item_store::ItemStore;
use crate::map_run::{ChildExecution, ChildStatus, MapRun};
use crate::model::distributed::{OutputType, Transformation, WriterConfig};
use crate::Failure;

fn date(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| {
        Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// A child as `Transformation: NONE` gives it: its `DescribeExecution` fields. A child that
/// never started has no execution to describe: only its input and status.
pub fn execution_entry(child: &ChildExecution) -> Value {
    let mut entry = json!({
        "Input": child.input.to_string(),
        "InputDetails": {"Included": true},
        "Status": child.status.name(),
    });
    if child.status == ChildStatus::Pending {
        return entry;
    }
    entry["ExecutionArn"] = json!(child.arn);
    entry["Name"] = json!(child.name);
    entry["RedriveCount"] = json!(0);
    entry["StartDate"] = date(child.start_date);
    entry["StateMachineArn"] = json!(child.state_machine_arn);
    entry["StopDate"] = date(child.stop_date);
    match &child.status {
        ChildStatus::Succeeded(output) => {
            entry["Output"] = Value::String(output.to_string());
            entry["OutputDetails"] = json!({"Included": true});
            entry["RedriveStatus"] = json!("NOT_REDRIVABLE");
            entry["RedriveStatusReason"] = json!("Execution is SUCCEEDED and cannot be redriven");
        }
        ChildStatus::Failed(failure) => {
            entry["Error"] = json!(failure.error);
            entry["Cause"] = json!(failure.cause);
            // An EXPRESS child is rerun by redriving its Map Run, not on its own.
            entry["RedriveStatus"] = json!(if child.execution_type == "EXPRESS" {
                "REDRIVABLE_BY_MAP_RUN"
            } else {
                "REDRIVABLE"
            });
        }
        ChildStatus::Pending => {}
    }
    entry
}

/// The entries of the children that succeeded, transformed.
fn succeeded_entries(children: &[ChildExecution], transformation: Transformation) -> Vec<Value> {
    let mut entries = Vec::new();
    for child in children {
        let ChildStatus::Succeeded(output) = &child.status else {
            continue;
        };
        match (transformation, output) {
            (Transformation::None, _) => entries.push(execution_entry(child)),
            (Transformation::Flatten, Value::Array(items)) => entries.extend(items.iter().cloned()),
            (Transformation::Compact | Transformation::Flatten, _) => entries.push(output.clone()),
        }
    }
    entries
}

/// The Map's result when it does not export: every child in item order, transformed
/// (`COMPACT` unless a `WriterConfig` says otherwise), failed ones as with `NONE`.
pub fn state_result(children: &[ChildExecution], config: Option<WriterConfig>) -> Value {
    let transformation = config
        .and_then(|c| c.transformation)
        .unwrap_or(Transformation::Compact);
    let mut out = Vec::new();
    for child in children {
        match &child.status {
            ChildStatus::Succeeded(_) => {
                out.extend(succeeded_entries(
                    std::slice::from_ref(child),
                    transformation,
                ));
            }
            ChildStatus::Failed(_) | ChildStatus::Pending => out.push(execution_entry(child)),
        }
    }
    Value::Array(out)
}

/// Where the files go.
pub struct Destination {
    pub bucket: String,
    pub prefix: String,
    pub config: Option<WriterConfig>,
}

impl Destination {
    fn folder(&self, run: &MapRun) -> String {
        match self.prefix.as_str() {
            "" => format!("{}/", run.id()),
            p if p.ends_with('/') => format!("{p}{}/", run.id()),
            p => format!("{p}/{}/", run.id()),
        }
    }
}

fn encode(entries: &[Value], output_type: OutputType) -> Vec<u8> {
    match output_type {
        OutputType::Json => Value::Array(entries.to_vec()).to_string().into_bytes(),
        OutputType::Jsonl => entries
            .iter()
            .map(|e| format!("{e}\n"))
            .collect::<String>()
            .into_bytes(),
    }
}

/// Writes the result files and the manifest, and returns the Map's result.
pub async fn write(
    store: &dyn ItemStore,
    destination: &Destination,
    run: &MapRun,
) -> Result<Value, Failure> {
    let config = destination.config.unwrap_or_default();
    let transformation = config.transformation.unwrap_or(Transformation::None);
    let output_type = config.output_type.unwrap_or(OutputType::Json);
    let entries_of = |status: &str| -> Vec<Value> {
        run.children
            .iter()
            .filter(|c| c.status.name() == status)
            .map(execution_entry)
            .collect()
    };
    let files = [
        ("FAILED", entries_of("FAILED")),
        ("PENDING", entries_of("PENDING")),
        (
            "SUCCEEDED",
            succeeded_entries(&run.children, transformation),
        ),
    ];
    let folder = destination.folder(run);
    let mut listed = serde_json::Map::new();
    for (status, entries) in files {
        let mut written = Vec::new();
        if !entries.is_empty() {
            let key = format!("{folder}{status}_0.json");
            let body = encode(&entries, output_type);
            let size = body.len();
            put(store, &destination.bucket, &key, body).await?;
            written.push(json!({"Key": key, "Size": size}));
        }
        listed.insert(status.to_string(), Value::Array(written));
    }
    let manifest = json!({
        "DestinationBucket": destination.bucket,
        "MapRunArn": run.arn,
        "ResultFiles": listed,
    });
    let key = format!("{folder}manifest.json");
    put(
        store,
        &destination.bucket,
        &key,
        manifest.to_string().into_bytes(),
    )
    .await?;
    Ok(json!({
        "MapRunArn": run.arn,
        "ResultWriterDetails": {"Bucket": destination.bucket, "Key": key},
    }))
}

async fn put(store: &dyn ItemStore, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Failure> {
    store
        .put_object(bucket.to_string(), key.to_string(), body)
        .await
        .map_err(|e| {
            Failure::new(
                RESULT_WRITER_FAILED,
                format!("could not write s3://{bucket}/{key}: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_store::InMemoryItemStore;

    fn child(n: usize, status: ChildStatus) -> ChildExecution {
        ChildExecution {
            arn: format!("arn:aws:states:local:000000000000:execution:sm/M:child-{n}"),
            name: format!("child-{n}"),
            state_machine_arn: "arn:aws:states:local:000000000000:stateMachine:sm/M".into(),
            execution_type: "STANDARD",
            input: json!({"n": n}),
            items: 1,
            status,
            start_date: None,
            stop_date: None,
            history: Vec::new(),
            service_events: Default::default(),
        }
    }

    fn run() -> MapRun {
        MapRun {
            arn: "arn:aws:states:local:000000000000:mapRun:sm/M:run-1".into(),
            state: "M".into(),
            label: "M".into(),
            children: vec![
                child(0, ChildStatus::Succeeded(json!([1, 2]))),
                child(1, ChildStatus::Failed(Failure::new("Boom", "it broke"))),
                child(2, ChildStatus::Succeeded(json!(3))),
                child(3, ChildStatus::Pending),
            ],
        }
    }

    #[test]
    fn state_results_are_compact_or_flattened_with_failures_in_full() {
        let result = state_result(&run().children, None);
        assert_eq!(result[0], json!([1, 2]));
        assert_eq!(result[1]["Error"], "Boom");
        assert_eq!(result[1]["Status"], "FAILED");
        assert_eq!(result[1]["Input"], "{\"n\":1}");
        assert_eq!(result[2], json!(3));
        let flat = WriterConfig {
            transformation: Some(Transformation::Flatten),
            output_type: None,
        };
        let result = state_result(&run().children[..1], Some(flat));
        assert_eq!(result, json!([1, 2]));
    }

    #[tokio::test]
    async fn files_by_status_under_the_prefix_and_map_run_id() {
        let store = InMemoryItemStore::new();
        store.create_bucket("out");
        let destination = Destination {
            bucket: "out".into(),
            prefix: "jobs/".into(),
            config: None,
        };
        let result = write(&store, &destination, &run()).await.unwrap();
        assert_eq!(
            result,
            json!({"MapRunArn": "arn:aws:states:local:000000000000:mapRun:sm/M:run-1",
                   "ResultWriterDetails": {"Bucket": "out", "Key": "jobs/run-1/manifest.json"}})
        );
        assert_eq!(
            store.keys("out"),
            [
                "jobs/run-1/FAILED_0.json",
                "jobs/run-1/PENDING_0.json",
                "jobs/run-1/SUCCEEDED_0.json",
                "jobs/run-1/manifest.json"
            ]
        );
        let read = |key: &str| -> Value {
            serde_json::from_slice(&store.object("out", key).unwrap()).unwrap()
        };
        let succeeded = read("jobs/run-1/SUCCEEDED_0.json");
        assert_eq!(succeeded.as_array().map(Vec::len), Some(2));
        assert_eq!(succeeded[0]["Output"], "[1,2]");
        assert_eq!(succeeded[0]["Name"], "child-0");
        let manifest = read("jobs/run-1/manifest.json");
        assert_eq!(manifest["DestinationBucket"], "out");
        let size = store
            .object("out", "jobs/run-1/FAILED_0.json")
            .unwrap()
            .len();
        assert_eq!(
            manifest["ResultFiles"]["FAILED"],
            json!([{"Key": "jobs/run-1/FAILED_0.json", "Size": size}])
        );
        let missing = Destination {
            bucket: "nope".into(),
            prefix: String::new(),
            config: None,
        };
        let failure = write(&store, &missing, &run()).await.unwrap_err();
        assert_eq!(failure.error, RESULT_WRITER_FAILED);
    }

    #[tokio::test]
    async fn jsonl_compact_files() {
        let store = InMemoryItemStore::new();
        store.create_bucket("out");
        let destination = Destination {
            bucket: "out".into(),
            prefix: String::new(),
            config: Some(WriterConfig {
                transformation: Some(Transformation::Compact),
                output_type: Some(OutputType::Jsonl),
            }),
        };
        write(&store, &destination, &run()).await.unwrap();
        let body = store.object("out", "run-1/SUCCEEDED_0.json").unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), "[1,2]\n3\n");
    }
}
