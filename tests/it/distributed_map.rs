//! A distributed Map against the local S3 server (moto): the `ItemReader` reads a CSV object
//! and the `ResultWriter` writes the results, through `etl run`'s S3 adapter.

use std::sync::Arc;

use asl::item_store::ItemStore;
use asl::{execute, Machine, RunOptions, TaskInvoker, TaskRequest};
use aws_sdk_s3::primitives::ByteStream;
use etl_cli::item_store::S3ItemStore;
use etl_core::Service;
use futures::future::BoxFuture;
use futures::FutureExt;
use integration_tests::{download, TestEnv};
use serde_json::{json, Value};

/// Sums each batch's amounts: the stand-in for a Lambda function.
struct SumBatch;

impl TaskInvoker for SumBatch {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, asl::Failure>> {
        let total: f64 = request.parameters["Items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["amount"].as_str()?.parse::<f64>().ok())
            .sum();
        futures::future::ready(Ok(
            json!({"rows": request.parameters["Items"].as_array().map(Vec::len), "total": total}),
        ))
        .boxed()
    }
}

fn definition(bucket: &str) -> Value {
    json!({"StartAt": "Sum", "States": {"Sum": {
        "Type": "Map", "End": true, "Label": "Orders",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": bucket, "Key.$": "$.key"}
        },
        "ItemBatcher": {"MaxItemsPerBatch": 2},
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": bucket, "Prefix": "results"}
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Add",
            "States": {"Add": {"Type": "Task", "Resource": "sum", "End": true}}
        }
    }}})
}

#[tokio::test]
async fn a_distributed_map_reads_a_csv_and_writes_its_results_to_s3() {
    let env = TestEnv::with_lake(&[Service::S3]).await;
    let bucket = env.ctx.config.bucket.clone();
    env.ctx
        .s3()
        .put_object()
        .bucket(&bucket)
        .key("in/orders.csv")
        .body(ByteStream::from_static(b"id,amount\n1,2.5\n2,4\n3,10\n"))
        .send()
        .await
        .unwrap();

    let machine = Machine::from_json(&definition(&bucket).to_string()).unwrap();
    let mut options = RunOptions::new("orders", "orders-it");
    options.time_scale = 0.0;
    let store: Arc<dyn ItemStore> = Arc::new(S3ItemStore::new(env.ctx.s3().clone()));
    options.item_store = Some(store);
    let exec = execute(
        &machine,
        json!({"key": "in/orders.csv"}),
        Arc::new(SumBatch),
        options,
    )
    .await;

    let output = exec.output.unwrap();
    let run = &exec.map_runs[0];
    let folder = format!("results/{}", run.id());
    assert_eq!(
        output,
        json!({"MapRunArn": run.arn,
               "ResultWriterDetails": {"Bucket": bucket, "Key": format!("{folder}/manifest.json")}})
    );
    assert!(run.arn.contains(":mapRun:orders/Orders:"), "{}", run.arn);

    let manifest: Value =
        serde_json::from_slice(&download(&env.ctx, &format!("{folder}/manifest.json")).await)
            .unwrap();
    assert_eq!(manifest["DestinationBucket"], bucket.as_str());
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    let succeeded_key = format!("{folder}/SUCCEEDED_0.json");
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Key"],
        succeeded_key.as_str()
    );

    let succeeded: Value =
        serde_json::from_slice(&download(&env.ctx, &succeeded_key).await).unwrap();
    let outputs: Vec<Value> = succeeded
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["Status"], "SUCCEEDED");
            serde_json::from_str(entry["Output"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        outputs,
        [
            json!({"rows": 2, "total": 6.5}),
            json!({"rows": 1, "total": 10.0})
        ]
    );
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Size"],
        download(&env.ctx, &succeeded_key).await.len()
    );
}

#[tokio::test]
async fn a_missing_object_fails_the_map_with_item_reader_failed() {
    let env = TestEnv::with_lake(&[Service::S3]).await;
    let bucket = env.ctx.config.bucket.clone();
    let machine = Machine::from_json(&definition(&bucket).to_string()).unwrap();
    let mut options = RunOptions::new("orders", "orders-it-missing");
    options.item_store = Some(Arc::new(S3ItemStore::new(env.ctx.s3().clone())));
    let exec = execute(
        &machine,
        json!({"key": "in/none.csv"}),
        Arc::new(SumBatch),
        options,
    )
    .await;
    let failure = exec.output.unwrap_err();
    assert_eq!(failure.error, asl::errors::ITEM_READER_FAILED);
    assert!(failure.cause.contains("in/none.csv"), "{}", failure.cause);
}
