//! Task states that invoke Lambda functions, in both forms Step Functions accepts:
//! the optimised integration `arn:aws:states:::lambda:invoke` (Parameters carry
//! `FunctionName` and `Payload`; the result wraps the output in `Payload`) and a bare
//! function ARN (the parameters are the event; the result is the output).

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::{Failure, TaskInvoker, TaskRequest};

pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// Calls a function by name. A function error comes back as a [`Failure`] whose `error` is
/// the function's `errorType`.
pub trait LambdaFunctions: Send + Sync {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>>;
}

pub struct LambdaTasks<F>(pub F);

/// `arn:aws:lambda:region:account:function:name[:qualifier]` or a plain name → the name.
pub fn function_name(reference: &str) -> &str {
    match reference.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => reference,
    }
}

impl<F: LambdaFunctions> TaskInvoker for LambdaTasks<F> {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
        async move {
            if request.resource == LAMBDA_INVOKE
                || request
                    .resource
                    .starts_with("arn:aws:states:::lambda:invoke")
            {
                if request.resource != LAMBDA_INVOKE {
                    return Err(Failure::runtime(format!(
                        "resource {} is not supported locally",
                        request.resource
                    )));
                }
                let Some(function) = request
                    .parameters
                    .get("FunctionName")
                    .and_then(Value::as_str)
                else {
                    return Err(Failure::runtime(
                        "lambda:invoke needs Parameters.FunctionName",
                    ));
                };
                let payload = request
                    .parameters
                    .get("Payload")
                    .cloned()
                    .unwrap_or(json!({}));
                let output = self
                    .0
                    .call(function_name(function), payload, &request)
                    .await?;
                Ok(json!({"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}))
            } else if request.resource.starts_with("arn:aws:lambda:") {
                let function = function_name(&request.resource);
                self.0
                    .call(function, request.parameters.clone(), &request)
                    .await
            } else {
                Err(Failure::runtime(format!(
                    "resource {} is not supported locally (only Lambda tasks are)",
                    request.resource
                )))
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:hr-schema"),
            "hr-schema"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:hr-schema:live"),
            "hr-schema"
        );
        assert_eq!(function_name("hr-schema"), "hr-schema");
    }
}
