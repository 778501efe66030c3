//! The pipeline's Lambda functions, reachable two ways: in-process (the same stage code the
//! Lambda binaries wrap) or over the Lambda Invoke API (`cargo lambda watch`, or AWS).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asl::lambda::LambdaFunctions;
use asl::{Failure, TaskRequest};
use aws_sdk_lambda::primitives::Blob;
use etl_core::aws_calls::{CallAuditor, CallDeployment};
use etl_core::error::capped_error_message;
use etl_core::stage::{invoke_json, logical_date_of};
use etl_core::stages::{
    clickstream_simulate, hr_export, hr_hire, hr_schema, hr_sync, plan, record_run,
};
use etl_core::{Config, Context, StageError};
use futures::future::BoxFuture;
use futures::FutureExt;
use marketing::stages::{
    generate as marketing_generate, plan as marketing_plan, report as marketing_report,
    unify as marketing_unify,
};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::iam::ContractAuditor;
use crate::lambda_limits::{INVOCATION_DEADLINE, LAMBDA_UNKNOWN};

type Handler = for<'a> fn(&'a Context, Value) -> BoxFuture<'a, Result<Value, StageError>>;

/// One entry of the registry: a function's name (its binary, as the template names it) and
/// the stage its Lambda `main` wraps.
macro_rules! stage {
    ($name:literal, $module:ident) => {{
        fn handler(ctx: &Context, payload: Value) -> BoxFuture<'_, Result<Value, StageError>> {
            invoke_json(payload, move |e| $module::run(ctx, e)).boxed()
        }
        ($name, handler as Handler)
    }};
}

/// Every function binary this workspace builds: the one list of names and stages.
const REGISTRY: &[(&str, Handler)] = &[
    stage!("hr-schema", hr_schema),
    stage!("hr-hire", hr_hire),
    stage!("hr-export", hr_export),
    stage!("hr-sync", hr_sync),
    stage!("plan-dates", plan),
    stage!("record-run", record_run),
    stage!("clickstream-simulate", clickstream_simulate),
    stage!("marketing-plan", marketing_plan),
    stage!("marketing-generate", marketing_generate),
    stage!("marketing-unify", marketing_unify),
    stage!("marketing-report", marketing_report),
];

/// The function names, in registry order.
pub fn function_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Runs a stage in this process, exactly as its Lambda binary would.
pub async fn call_in_process(
    ctx: &Context,
    function: &str,
    payload: Value,
) -> Result<Value, StageError> {
    match REGISTRY.iter().find(|(name, _)| *name == function) {
        Some((name, handler)) => {
            let ctx = function_context(ctx, name)?;
            handler(&ctx, payload).await
        }
        None => Err(StageError::invalid_input(format!(
            "no function named {function:?}; known: {}",
            function_names().join(", ")
        ))),
    }
}

/// `ctx` as `function` runs, as a Lambda binary's context is its function's: its AWS calls
/// checked by the context's auditor or, without one, by the contract `ETL_IAM_CONTRACT`
/// names (`etl run` under scripts/test), or unchecked.
fn function_context(ctx: &Context, function: &str) -> Result<Context, StageError> {
    if ctx.auditor().is_some() {
        return Ok(ctx.for_function(function));
    }
    match env_auditor(&ctx.config)? {
        Some(auditor) => Ok(ctx.for_function_with(function, auditor)),
        None => Ok(ctx.for_function(function)),
    }
}

type Auditors = Vec<(CallDeployment, Option<Arc<dyn CallAuditor>>)>;

/// The environment's auditor for a configuration's bucket and secrets, loaded once each.
fn env_auditor(config: &Config) -> Result<Option<Arc<dyn CallAuditor>>, StageError> {
    static AUDITORS: Mutex<Auditors> = Mutex::new(Vec::new());
    let deployment = CallDeployment::of(config);
    let mut auditors = AUDITORS
        .lock()
        .map_err(|_| StageError::Internal("the IAM auditors' lock is poisoned".into()))?;
    if let Some((_, auditor)) = auditors.iter().find(|(d, _)| *d == deployment) {
        return Ok(auditor.clone());
    }
    let auditor = ContractAuditor::from_env(config)
        .map_err(|e| StageError::Internal(format!("{}: {e}", crate::iam::CONTRACT_VAR)))?;
    auditors.push((deployment, auditor.clone()));
    Ok(auditor)
}

/// The span every invocation runs in: function, request id and logical date on each line.
fn invoke_span(
    function: &str,
    request: &TaskRequest,
    payload: &Value,
    via: &'static str,
) -> tracing::Span {
    tracing::info_span!(
        "invoke",
        function,
        via,
        request_id = %format!("{}/{}/{}", request.execution_name, request.state, request.retry_count),
        logical_date = logical_date_of(payload).unwrap_or("-"),
    )
}

/// The error a failed Lambda reports to Step Functions: name = `errorType`, cause = the
/// error document, as the service formats it. The message is capped as the Lambda binaries
/// cap it (`lambda-support`'s `StageFailure`), so a local run carries the same `Cause` sizes
/// through its states as a deployed one; the full text is in the log line the caller writes.
pub fn function_failure(error_type: &str, message: &str) -> Failure {
    Failure::new(
        error_type,
        json!({"errorType": error_type, "errorMessage": capped_error_message(message)}).to_string(),
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
        let span = invoke_span(function, request, &payload, "in-process");
        async move {
            // Under the Lambda limits' host, the invocation's deadline, as a Lambda binary's
            // context has it (lambda-support); a bare in-process call has none. Read here,
            // when polled: the host's scope covers the future, not its construction.
            let with_deadline = INVOCATION_DEADLINE
                .try_with(|deadline| *deadline)
                .ok()
                .map(|deadline| self.ctx.with_deadline(deadline));
            let ctx = with_deadline.as_ref().unwrap_or(&self.ctx);
            call_in_process(ctx, function, payload).await.map_err(|err| {
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
                let body = out
                    .payload()
                    .map(std::convert::AsRef::as_ref)
                    .unwrap_or_default();
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
                // Step Functions names Lambda's service errors `Lambda.<code>`
                // (`Lambda.TooManyRequestsException`, …); a call that got no answer at all is
                // the SDK's `Lambda.SdkClientException`.
                let code = match &err {
                    aws_sdk_lambda::error::SdkError::ServiceError(service) => {
                        service.err().meta().code().map(str::to_string)
                    }
                    _ => Some("SdkClientException".to_string()),
                };
                let err = StageError::aws(etl_core::Service::Lambda, err);
                let code = code.unwrap_or_else(|| "ServiceException".to_string());
                Err(Failure::new(format!("Lambda.{code}"), err.to_string()))
            }
        }
    }
}

fn looks_like_error_document(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("errorType").is_some())
}

fn error_document(body: &[u8]) -> Failure {
    let doc: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let error_type = doc["errorType"].as_str().unwrap_or(LAMBDA_UNKNOWN);
    // Lambda's own failures of the environment (a crash, an init that died, a timeout, out of
    // memory) reach Step Functions as `Lambda.Unknown`, with Lambda's document as the cause.
    if error_type.starts_with("Runtime.") || error_type.starts_with("Sandbox.") {
        return Failure::new(LAMBDA_UNKNOWN, String::from_utf8_lossy(body));
    }
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
        let span = invoke_span(function, request, &payload, "invoke-api");
        async move { OverInvokeApi::call(self, function, &payload).await }
            .instrument(span)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etl_core::error::{ERROR_MESSAGE_CUT_MARKER, MAX_ERROR_MESSAGE_BYTES};

    #[test]
    fn a_function_failure_carries_a_capped_message_in_its_error_document() {
        let long = format!(
            "PostgreSQL: {}",
            "relation \"hr.employees\" is locked; ".repeat(100)
        );
        let failure = function_failure("Retryable", &long);
        assert_eq!(failure.error, "Retryable");
        let document: Value = serde_json::from_str(&failure.cause).unwrap();
        assert_eq!(document["errorType"], "Retryable");
        let message = document["errorMessage"].as_str().unwrap();
        assert!(message.ends_with(ERROR_MESSAGE_CUT_MARKER), "{message}");
        assert!(long.starts_with(message.trim_end_matches(ERROR_MESSAGE_CUT_MARKER)));
        let message_json = serde_json::to_string(message).unwrap().len() - 2;
        assert!(message_json <= MAX_ERROR_MESSAGE_BYTES, "{message_json}");
        // The whole Cause: the message plus the document around it.
        assert!(
            failure.cause.len() <= MAX_ERROR_MESSAGE_BYTES + 64,
            "{}",
            failure.cause.len()
        );

        // An error document read back from Lambda (already capped by the binary) is kept.
        let again = error_document(
            json!({"errorType": "Retryable", "errorMessage": message})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(again.cause, failure.cause);
        let short = function_failure("Fatal", "boom");
        assert_eq!(
            serde_json::from_str::<Value>(&short.cause).unwrap(),
            json!({"errorType": "Fatal", "errorMessage": "boom"})
        );
    }
}
