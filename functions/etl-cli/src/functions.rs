//! The pipeline's Lambda functions, reachable two ways: in-process (the same stage code the
//! Lambda binaries wrap) or over the Lambda Invoke API (`cargo lambda watch`, or AWS).

use std::sync::Arc;
use std::time::Duration;

use asl::lambda::LambdaFunctions;
use asl::{Failure, TaskRequest};
use aws_sdk_lambda::primitives::Blob;
use etl_core::stage::{invoke_json, logical_date_of};
use etl_core::stages::{
    clickstream_simulate, hr_export, hr_hire, hr_schema, hr_sync, plan, record_run,
};
use etl_core::{Context, StageError};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};
use tracing::Instrument;

/// Every function binary this workspace builds, by the name the template gives it.
pub const FUNCTIONS: &[&str] = &[
    "hr-schema",
    "hr-hire",
    "hr-export",
    "hr-sync",
    "plan-dates",
    "record-run",
    "clickstream-simulate",
];

/// Runs a stage in this process, exactly as its Lambda binary would.
pub async fn call_in_process(
    ctx: &Context,
    function: &str,
    payload: Value,
) -> Result<Value, StageError> {
    match function {
        "hr-schema" => invoke_json(payload, |e| hr_schema::run(ctx, e)).await,
        "hr-hire" => invoke_json(payload, |e| hr_hire::run(ctx, e)).await,
        "hr-export" => invoke_json(payload, |e| hr_export::run(ctx, e)).await,
        "hr-sync" => invoke_json(payload, |e| hr_sync::run(ctx, e)).await,
        "plan-dates" => invoke_json(payload, |e| plan::run(ctx, e)).await,
        "record-run" => invoke_json(payload, |e| record_run::run(ctx, e)).await,
        "clickstream-simulate" => invoke_json(payload, |e| clickstream_simulate::run(ctx, e)).await,
        other => Err(StageError::invalid_input(format!(
            "no function named {other:?}; known: {}",
            FUNCTIONS.join(", ")
        ))),
    }
}

/// The error a failed Lambda reports to Step Functions: name = `errorType`, cause = the
/// error document, as the service formats it.
fn function_failure(error_type: &str, message: &str) -> Failure {
    Failure::new(
        error_type,
        json!({"errorType": error_type, "errorMessage": message}).to_string(),
    )
}

pub struct InProcess {
    pub ctx: Arc<Context>,
}

impl LambdaFunctions for InProcess {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        let request_id = format!(
            "{}/{}/{}",
            request.execution_name, request.state, request.retry_count
        );
        let span = tracing::info_span!(
            "invoke",
            function,
            request_id = %request_id,
            logical_date = logical_date_of(&payload).unwrap_or("-"),
        );
        async move {
            call_in_process(&self.ctx, function, payload).await.map_err(|err| {
                tracing::warn!(error_type = err.kind().as_str(), error = %err, "function failed");
                function_failure(err.kind().as_str(), &err.to_string())
            })
        }
        .instrument(span)
        .boxed()
    }
}

/// Calls functions over the Lambda Invoke API.
pub struct OverInvokeApi {
    client: aws_sdk_lambda::Client,
}

impl OverInvokeApi {
    pub fn new(ctx: &Context, endpoint: &str) -> Self {
        Self {
            client: ctx.lambda_invoker(Some(endpoint), Duration::from_secs(900)),
        }
    }

    pub async fn call(&self, function: &str, payload: &Value) -> Result<Value, Failure> {
        let response = self
            .client
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await;
        match response {
            Ok(out) => {
                let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
                if out.function_error().is_some() {
                    return Err(error_document(body));
                }
                serde_json::from_slice(body).map_err(|e| {
                    function_failure(
                        "Lambda.InvalidResponse",
                        &format!("function returned non-JSON output: {e}"),
                    )
                })
            }
            // `cargo lambda watch` answers a function error with HTTP 500 and the error
            // document as the body; AWS uses 200 + X-Amz-Function-Error. Accept both.
            Err(aws_sdk_lambda::error::SdkError::ServiceError(ctx))
                if looks_like_error_document(ctx.raw().body().bytes().unwrap_or_default()) =>
            {
                Err(error_document(ctx.raw().body().bytes().unwrap_or_default()))
            }
            Err(err) => {
                let err = StageError::aws(etl_core::Service::Lambda, err);
                Err(Failure::new("Lambda.ServiceException", err.to_string()))
            }
        }
    }
}

fn looks_like_error_document(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("errorType").is_some())
}

fn error_document(body: &[u8]) -> Failure {
    let doc: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let error_type = doc["errorType"].as_str().unwrap_or("Lambda.Unknown");
    let message = doc["errorMessage"].as_str().unwrap_or("(no message)");
    function_failure(error_type, message)
}

impl LambdaFunctions for OverInvokeApi {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        let span = tracing::info_span!(
            "invoke",
            function,
            via = "invoke-api",
            state = %request.state,
            logical_date = logical_date_of(&payload).unwrap_or("-"),
        );
        async move { OverInvokeApi::call(self, function, &payload).await }
            .instrument(span)
            .boxed()
    }
}
