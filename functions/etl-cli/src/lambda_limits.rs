//! What Lambda itself enforces on an invocation, applied around either function host so that a
//! stage that only works because it runs locally fails here as it would on AWS: the 6 MB
//! synchronous payloads, the function's `Timeout`, its `MemorySize`, and (on request) the
//! service errors a Task can meet before the function runs at all.
//!
//! Sources:
//! - Payload and timeout quotas: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
//! - Invoke API errors (`RequestTooLargeException`, `TooManyRequestsException`, …):
//!   <https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>
//! - How a Task names them ("Lambda." + the exception; unhandled errors, "including
//!   out-of-memory errors and function timeouts", as `Lambda.Unknown`):
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html>

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use asl::lambda::LambdaFunctions;
use asl::limits::json_size;
use asl::{Failure, TaskRequest};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::peak_rss::Measurement;
use crate::template::FunctionSizing;

/// 6 MB: the most a synchronous invocation's request or response may hold.
pub const SYNC_PAYLOAD_LIMIT_BYTES: usize = 6_291_456;

/// What Step Functions reports for a Lambda error that carries no usable error type, among
/// them timeouts and out-of-memory kills.
pub const LAMBDA_UNKNOWN: &str = "Lambda.Unknown";

/// `etl run --inject-fault STATE:N:ERROR`: the Nth invoke (1-based, retries included) of the
/// Task state STATE fails with ERROR before the function runs, as a throttle or a Lambda
/// service error does on AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    pub state: String,
    pub nth: u32,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--inject-fault {0:?} is not STATE:N:ERROR with N ≥ 1 (e.g. Hire:1:Lambda.TooManyRequestsException)")]
pub struct FaultSyntaxError(String);

impl std::str::FromStr for InjectedFault {
    type Err = FaultSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || FaultSyntaxError(text.to_string());
        let mut parts = text.splitn(3, ':');
        let (Some(state), Some(nth), Some(error)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let nth: u32 = nth.parse().map_err(|_| invalid())?;
        if state.is_empty() || error.is_empty() || nth == 0 {
            return Err(invalid());
        }
        Ok(Self {
            state: state.to_string(),
            nth,
            error: error.to_string(),
        })
    }
}

/// How strictly a local run applies Lambda's per-function limits.
#[derive(Debug, Clone)]
pub struct LambdaLimits {
    /// Binary → its template `Timeout` and `MemorySize`. A function missing here gets
    /// Lambda's defaults.
    pub sizing: HashMap<String, FunctionSizing>,
    /// Multiplies every function's `Timeout`. Apart from `--time-scale` on purpose: runs use
    /// a time scale of 0 or 0.01 to skip Retry waits, which would turn every timeout into
    /// nothing.
    pub timeout_scale: f64,
    /// Compare an in-process call's peak RSS with the function's `MemorySize`.
    pub memory_check: bool,
}

impl Default for LambdaLimits {
    fn default() -> Self {
        Self {
            sizing: HashMap::new(),
            timeout_scale: 1.0,
            memory_check: true,
        }
    }
}

impl LambdaLimits {
    fn sizing_of(&self, function: &str) -> FunctionSizing {
        self.sizing
            .get(function)
            .copied()
            .unwrap_or(FunctionSizing::LAMBDA_DEFAULT)
    }
}

/// A function host with Lambda's limits and the injected faults around every call.
pub struct LimitedFunctions<F> {
    inner: F,
    limits: LambdaLimits,
    faults: Vec<InjectedFault>,
    /// Invokes so far per Task state, for [`InjectedFault::nth`].
    invokes: Mutex<HashMap<String, u32>>,
    /// Whether the host runs the stage in this process (only then is RSS ours to measure).
    in_process: bool,
}

impl<F: LambdaFunctions> LimitedFunctions<F> {
    pub fn new(
        inner: F,
        limits: LambdaLimits,
        faults: Vec<InjectedFault>,
        in_process: bool,
    ) -> Self {
        Self {
            inner,
            limits,
            faults,
            invokes: Mutex::new(HashMap::new()),
            in_process,
        }
    }

    /// The fault injected at this invoke of `state`, if any.
    fn injected(&self, state: &str) -> Option<Failure> {
        let nth = {
            let mut invokes = self
                .invokes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = invokes.entry(state.to_string()).or_insert(0);
            *count += 1;
            *count
        };
        let fault = self
            .faults
            .iter()
            .find(|f| f.state == state && f.nth == nth)?;
        tracing::warn!(state, nth, error = %fault.error, "injecting a fault");
        let code = fault.error.strip_prefix("Lambda.").unwrap_or(&fault.error);
        Some(Failure::new(
            fault.error.clone(),
            format!(
                "injected fault {state}:{nth} (Service: AWSLambda; Error Code: {code}; \
                 the function did not run)"
            ),
        ))
    }

    async fn limited_call(
        &self,
        function: &str,
        payload: Value,
        request: &TaskRequest,
    ) -> Result<Value, Failure> {
        if let Some(failure) = self.injected(&request.state) {
            return Err(failure);
        }
        let request_bytes = json_size(&payload);
        if request_bytes > SYNC_PAYLOAD_LIMIT_BYTES {
            return Err(Failure::new(
                "Lambda.RequestTooLargeException",
                format!(
                    "Request must be smaller than {SYNC_PAYLOAD_LIMIT_BYTES} bytes for the \
                     InvokeFunction operation ({request_bytes} bytes)"
                ),
            ));
        }
        let sizing = self.limits.sizing_of(function);
        let timeout = Duration::from_secs_f64(
            (sizing.timeout_seconds as f64 * self.limits.timeout_scale).clamp(0.0, 900.0),
        );
        let measurement = (self.in_process && self.limits.memory_check).then(Measurement::start);
        let call = self.inner.call(function, payload, request);
        let outcome = tokio::time::timeout(timeout, call).await;
        let peak = measurement.and_then(|m| m.finish(function));
        let output = match outcome {
            Ok(result) => result?,
            Err(_) => return Err(timed_out(request, sizing.timeout_seconds, timeout)),
        };
        if let Some(peak_bytes) = peak {
            if peak_bytes > sizing.memory_mb * 1024 * 1024 {
                return Err(out_of_memory(
                    request,
                    function,
                    sizing.memory_mb,
                    peak_bytes,
                ));
            }
        }
        let response_bytes = json_size(&output);
        if response_bytes > SYNC_PAYLOAD_LIMIT_BYTES {
            return Err(unhandled(
                "Function.ResponseSizeTooLarge",
                &format!(
                    "Response payload size exceeded maximum allowed payload size \
                     ({SYNC_PAYLOAD_LIMIT_BYTES} bytes): {response_bytes} bytes."
                ),
                "Function.ResponseSizeTooLarge",
            ));
        }
        Ok(output)
    }
}

/// Lambda's request id as the local hosts spell it (see `functions::invoke_span`).
fn request_id(request: &TaskRequest) -> String {
    format!(
        "{}/{}/{}",
        request.execution_name, request.state, request.retry_count
    )
}

/// An unhandled function error: `error` is what the Task sees, the Cause the payload Lambda
/// returned (its own `errorType` kept for the reader).
fn unhandled(error: &str, message: &str, error_type: &str) -> Failure {
    Failure::new(
        error,
        json!({"errorType": error_type, "errorMessage": message}).to_string(),
    )
}

fn timed_out(request: &TaskRequest, timeout_seconds: u64, scaled: Duration) -> Failure {
    let scale_note = if scaled.as_secs_f64() == timeout_seconds as f64 {
        String::new()
    } else {
        format!(" (scaled locally to {:.3} s)", scaled.as_secs_f64())
    };
    unhandled(
        LAMBDA_UNKNOWN,
        &format!(
            "RequestId: {} Error: Task timed out after {timeout_seconds}.00 seconds{scale_note}",
            request_id(request)
        ),
        "Sandbox.Timedout",
    )
}

fn out_of_memory(request: &TaskRequest, function: &str, memory_mb: u64, peak: u64) -> Failure {
    unhandled(
        LAMBDA_UNKNOWN,
        &format!(
            "RequestId: {} Error: Runtime exited with error: signal: killed \
             (Runtime.OutOfMemory: {function} raised the peak RSS by {} MB, over its \
             MemorySize of {memory_mb} MB)",
            request_id(request),
            peak / (1024 * 1024)
        ),
        "Runtime.OutOfMemory",
    )
}

impl<F: LambdaFunctions> LambdaFunctions for LimitedFunctions<F> {
    fn call<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        self.limited_call(function, payload, request).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_state_count_error() {
        let fault: InjectedFault = "Hire:2:Lambda.TooManyRequestsException".parse().unwrap();
        assert_eq!(
            fault,
            InjectedFault {
                state: "Hire".into(),
                nth: 2,
                error: "Lambda.TooManyRequestsException".into()
            }
        );
        for bad in ["Hire", "Hire:0:E", "Hire:x:E", ":1:E", "Hire:1:"] {
            assert!(bad.parse::<InjectedFault>().is_err(), "{bad}");
        }
    }

    struct Echo;

    impl LambdaFunctions for Echo {
        fn call<'a>(
            &'a self,
            _function: &'a str,
            payload: Value,
            _request: &'a TaskRequest,
        ) -> BoxFuture<'a, Result<Value, Failure>> {
            async move {
                if payload["sleep"].as_bool() == Some(true) {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Ok(payload)
            }
            .boxed()
        }
    }

    fn request(state: &str) -> TaskRequest {
        TaskRequest {
            resource: "arn:aws:states:::lambda:invoke".into(),
            parameters: Value::Null,
            state: state.into(),
            retry_count: 0,
            execution_name: "exec".into(),
        }
    }

    #[tokio::test]
    async fn the_nth_invoke_of_a_state_fails_before_the_function_runs() {
        let fault: InjectedFault = "T:2:Lambda.ServiceException".parse().unwrap();
        let limited = LimitedFunctions::new(Echo, LambdaLimits::default(), vec![fault], false);
        let (t, other) = (request("T"), request("U"));
        assert!(limited.call("f", json!(1), &t).await.is_ok());
        assert!(limited.call("f", json!(1), &other).await.is_ok());
        let failure = limited.call("f", json!(1), &t).await.unwrap_err();
        assert_eq!(failure.error, "Lambda.ServiceException");
        assert!(limited.call("f", json!(1), &t).await.is_ok());
    }

    #[tokio::test]
    async fn payloads_over_six_mb_and_slow_calls_fail_as_lambda_reports_them() {
        let limits = LambdaLimits {
            sizing: HashMap::from([(
                "f".to_string(),
                FunctionSizing {
                    timeout_seconds: 2,
                    memory_mb: 128,
                },
            )]),
            timeout_scale: 0.01,
            memory_check: false,
        };
        let limited = LimitedFunctions::new(Echo, limits, Vec::new(), false);
        let big = Value::String("x".repeat(SYNC_PAYLOAD_LIMIT_BYTES));
        let failure = limited.call("f", big, &request("T")).await.unwrap_err();
        assert_eq!(failure.error, "Lambda.RequestTooLargeException");

        let failure = limited
            .call("f", json!({"sleep": true}), &request("T"))
            .await
            .unwrap_err();
        assert_eq!(failure.error, LAMBDA_UNKNOWN);
        assert!(
            failure.cause.contains("Task timed out after 2.00 seconds"),
            "{}",
            failure.cause
        );
    }

    #[test]
    fn peak_measurements_need_a_single_invocation() {
        let first = Measurement::start();
        let second = Measurement::start();
        assert_eq!(second.finish("b"), None, "overlapped with the first");
        assert_eq!(first.finish("a"), None, "overlapped with the second");
        let _ = crate::peak_rss::supported();
    }
}
