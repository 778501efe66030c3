//! What Lambda itself enforces on an invocation, applied around either function host so that a
//! stage that only works because it runs locally fails here as it would on AWS: the 6 MB
//! synchronous payloads, the function's `Timeout`, its `MemorySize`, and (on request) the
//! service errors a Task can meet before the function runs at all, at a given invoke
//! ([`InjectedFault`]) or at random ([`RandomFaults`]).
//!
//! Sources:
//! - Payload and timeout quotas: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
//! - Invoke API errors (`RequestTooLargeException`, `TooManyRequestsException`, …):
//!   <https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>
//! - How a Task names them ("Lambda." + the exception; unhandled errors, "including
//!   out-of-memory errors and function timeouts", as `Lambda.Unknown`):
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html>

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asl::lambda::LambdaFunctions;
use asl::limits::json_size;
use asl::{Failure, TaskRequest};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::peak_rss::Measurement;
use crate::template::FunctionSizing;

tokio::task_local! {
    /// When the invocation being run is ended (its start plus its scaled `Timeout`), as
    /// Lambda tells a function through `Lambda-Runtime-Deadline-Ms`: the in-process host
    /// hands it to the stage's context ([`crate::functions::InProcess`]).
    pub static INVOCATION_DEADLINE: Instant;
}

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

/// Invokes failed at random, as a busy or flaky Lambda service fails them, from a seeded
/// sequence: a share is refused before the function runs with one of `errors` (a throttle,
/// `Lambda.TooManyRequestsException`, or a service error), another share times out as Lambda
/// reports a timeout ([`LAMBDA_UNKNOWN`], `Sandbox.Timedout`). A timed-out invoke is ended at a
/// random moment within `longest_run`: mid-way through its work, or after the work was done
/// but before its answer reached the caller, the case that finds a stage that is not
/// idempotent. Clones share the sequence and the counts, so one value given to several runs
/// counts every fault they met. (Runs that invoke concurrently draw in whatever order their
/// invokes come: the seed fixes the sequence, not which invoke gets which draw.)
#[derive(Debug, Clone)]
pub struct RandomFaults {
    /// Share of invokes refused before the function runs.
    pub error_rate: f64,
    /// What a refused invoke fails with, one chosen at random each time.
    pub errors: Vec<String>,
    /// Share of invokes that time out.
    pub timeout_rate: f64,
    /// A timed-out invoke runs for a random time up to this before it is ended.
    pub longest_run: Duration,
    shared: Arc<RandomShared>,
}

#[derive(Debug)]
struct RandomShared {
    draws: SeededDraws,
    counts: Mutex<RandomFaultCounts>,
}

/// A seeded sequence of numbers in [0, 1) (SplitMix64's outputs), safe to draw from on any
/// thread: what random faults are decided with, here and in the test suite's fault proxy.
#[derive(Debug)]
pub struct SeededDraws {
    seed: u64,
    drawn: AtomicU64,
}

impl SeededDraws {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            drawn: AtomicU64::new(0),
        }
    }

    /// The next number: the nth output of SplitMix64 started at the seed.
    pub fn next(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        let bits = etl_core::rng::mix(self.seed.wrapping_add(n.wrapping_mul(GAMMA)));
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What [`RandomFaults`] did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RandomFaultCounts {
    /// Invokes it saw (faulted or not).
    pub invokes: u64,
    /// Invokes refused, per error.
    pub refused: BTreeMap<String, u64>,
    /// Timeouts that ended the function before it finished.
    pub timeouts_cut_short: u64,
    /// Timeouts of a function that had finished its work (its answer is lost).
    pub timeouts_after_work: u64,
}

/// What [`RandomFaults`] does to one invoke.
#[derive(Debug, Clone, PartialEq)]
enum RandomFault {
    Refuse(String),
    TimeOut(Duration),
}

/// The error `TooManyRequestsException` is, as a Task names it.
pub const LAMBDA_THROTTLED: &str = "Lambda.TooManyRequestsException";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("random Lambda faults: {0}")]
pub struct RandomFaultsError(String);

impl RandomFaults {
    /// `error_rate` and `timeout_rate` are shares of all invokes (together at most 1); a
    /// timed-out invoke runs for up to 100 ms (see [`RandomFaults::longest_run`]).
    pub fn new(
        seed: u64,
        error_rate: f64,
        errors: Vec<String>,
        timeout_rate: f64,
    ) -> Result<Self, RandomFaultsError> {
        let share = |r: f64| (0.0..=1.0).contains(&r);
        if !share(error_rate) || !share(timeout_rate) || error_rate + timeout_rate > 1.0 {
            return Err(RandomFaultsError(format!(
                "rates must be between 0 and 1 and add up to at most 1 \
                 (errors {error_rate}, timeouts {timeout_rate})"
            )));
        }
        if error_rate > 0.0 && (errors.is_empty() || errors.iter().any(String::is_empty)) {
            return Err(RandomFaultsError(
                "an error rate needs the errors to fail invokes with".into(),
            ));
        }
        Ok(Self {
            error_rate,
            errors,
            timeout_rate,
            longest_run: Duration::from_millis(100),
            shared: Arc::new(RandomShared {
                draws: SeededDraws::new(seed),
                counts: Mutex::new(RandomFaultCounts::default()),
            }),
        })
    }

    /// Throttles (`Lambda.TooManyRequestsException`) and timeouts.
    pub fn throttles_and_timeouts(
        seed: u64,
        throttle_rate: f64,
        timeout_rate: f64,
    ) -> Result<Self, RandomFaultsError> {
        Self::new(
            seed,
            throttle_rate,
            vec![LAMBDA_THROTTLED.to_string()],
            timeout_rate,
        )
    }

    /// A timed-out invoke runs for a random time up to `longest` before it is ended.
    pub fn with_longest_run(mut self, longest: Duration) -> Self {
        self.longest_run = longest;
        self
    }

    pub fn counts(&self) -> RandomFaultCounts {
        self.counts_mut().clone()
    }

    fn counts_mut(&self) -> std::sync::MutexGuard<'_, RandomFaultCounts> {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn draw(&self) -> f64 {
        self.shared.draws.next()
    }

    /// Whether this invoke fails, and how.
    fn pick(&self) -> Option<RandomFault> {
        self.counts_mut().invokes += 1;
        let roll = self.draw();
        if roll < self.error_rate {
            let index = (self.draw() * self.errors.len() as f64) as usize;
            let error = self.errors.get(index).or(self.errors.last())?.clone();
            *self.counts_mut().refused.entry(error.clone()).or_insert(0) += 1;
            Some(RandomFault::Refuse(error))
        } else if roll < self.error_rate + self.timeout_rate {
            Some(RandomFault::TimeOut(self.longest_run.mul_f64(self.draw())))
        } else {
            None
        }
    }

    fn count_timeout(&self, finished: bool) {
        let mut counts = self.counts_mut();
        if finished {
            counts.timeouts_after_work += 1;
        } else {
            counts.timeouts_cut_short += 1;
        }
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
    /// Throttles and timeouts injected at random (none by default).
    pub random_faults: Option<RandomFaults>,
}

impl Default for LambdaLimits {
    fn default() -> Self {
        Self {
            sizing: HashMap::new(),
            timeout_scale: 1.0,
            memory_check: true,
            random_faults: None,
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
        let random = self.limits.random_faults.as_ref();
        let random_fault = random.and_then(RandomFaults::pick);
        if let Some(RandomFault::Refuse(error)) = &random_fault {
            tracing::warn!(state = %request.state, %error, "injecting a random fault");
            return Err(refused_at_random(error));
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
        let deadline = Instant::now() + timeout;
        if let (Some(random), Some(RandomFault::TimeOut(after))) = (random, random_fault) {
            let started = Instant::now();
            let call =
                INVOCATION_DEADLINE.scope(deadline, self.inner.call(function, payload, request));
            let finished = tokio::time::timeout(after, call).await.is_ok();
            random.count_timeout(finished);
            let note = if finished {
                " (injected at random: the function finished its work, its answer was lost)"
            } else {
                " (injected at random: the function was ended mid-way)"
            };
            let ran_ms = started.elapsed().as_millis() as u64;
            tracing::warn!(state = %request.state, ran_ms, finished, "injecting a random timeout");
            return Err(timed_out(request, sizing.timeout_seconds, timeout, note));
        }
        let measurement = (self.in_process && self.limits.memory_check).then(Measurement::start);
        let call = INVOCATION_DEADLINE.scope(deadline, self.inner.call(function, payload, request));
        let outcome = tokio::time::timeout(timeout, call).await;
        let peak = measurement.and_then(|m| m.finish(function));
        let output = match outcome {
            Ok(result) => result?,
            Err(_) => return Err(timed_out(request, sizing.timeout_seconds, timeout, "")),
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

/// A random Lambda service error that stopped the invoke before the function ran, as Step
/// Functions reports one: the error named after the exception, the cause in the SDK's words.
fn refused_at_random(error: &str) -> Failure {
    let code = error.strip_prefix("Lambda.").unwrap_or(error);
    let (status, message) = match code {
        "TooManyRequestsException" => (429, "Rate Exceeded."),
        _ => (500, "Service error."),
    };
    Failure::new(
        error,
        format!(
            "{message} (Service: AWSLambda; Status Code: {status}; Error Code: {code}; \
             injected at random: the function did not run)"
        ),
    )
}

/// A function run past its `Timeout`. `note` says why, when Lambda's own words do not.
fn timed_out(request: &TaskRequest, timeout_seconds: u64, scaled: Duration, note: &str) -> Failure {
    let scale_note = if scaled.as_secs_f64() == timeout_seconds as f64 {
        String::new()
    } else {
        format!(" (scaled locally to {:.3} s)", scaled.as_secs_f64())
    };
    unhandled(
        LAMBDA_UNKNOWN,
        &format!(
            "RequestId: {} Error: Task timed out after {timeout_seconds}.00 seconds{scale_note}{note}",
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
            random_faults: None,
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

    fn with_random(faults: &RandomFaults) -> LimitedFunctions<Echo> {
        let limits = LambdaLimits {
            memory_check: false,
            random_faults: Some(faults.clone()),
            ..LambdaLimits::default()
        };
        LimitedFunctions::new(Echo, limits, Vec::new(), false)
    }

    #[test]
    fn random_fault_rates_are_checked() {
        for (errors, timeouts) in [(-0.1, 0.0), (0.0, 1.5), (0.6, 0.6)] {
            assert!(RandomFaults::throttles_and_timeouts(1, errors, timeouts).is_err());
        }
        assert!(RandomFaults::new(1, 0.1, Vec::new(), 0.0).is_err());
        assert!(RandomFaults::new(1, 0.0, Vec::new(), 0.1).is_ok());
    }

    #[tokio::test]
    async fn random_throttles_fail_before_the_function_runs_and_are_counted() {
        let faults = RandomFaults::throttles_and_timeouts(7, 1.0, 0.0).unwrap();
        let limited = with_random(&faults);
        for _ in 0..3 {
            let failure = limited
                .call("f", json!({"sleep": true}), &request("T"))
                .await
                .unwrap_err();
            assert_eq!(failure.error, LAMBDA_THROTTLED);
            assert!(
                failure.cause.contains("Status Code: 429"),
                "{}",
                failure.cause
            );
        }
        let counts = faults.counts();
        assert_eq!(counts.invokes, 3);
        assert_eq!(
            counts.refused,
            BTreeMap::from([(LAMBDA_THROTTLED.to_string(), 3)])
        );
    }

    #[tokio::test]
    async fn random_timeouts_are_reported_as_lambda_reports_a_timeout() {
        let faults = RandomFaults::throttles_and_timeouts(7, 0.0, 1.0).unwrap();
        let limited = with_random(&faults);
        // A function that takes 5 s is ended mid-way; one that answers at once has done its
        // work, and its answer is lost all the same.
        for payload in [json!({"sleep": true}), json!({"sleep": false})] {
            let failure = limited.call("f", payload, &request("T")).await.unwrap_err();
            assert_eq!(failure.error, LAMBDA_UNKNOWN);
            assert!(
                failure.cause.contains("Sandbox.Timedout"),
                "{}",
                failure.cause
            );
            assert!(
                failure.cause.contains("Task timed out after"),
                "{}",
                failure.cause
            );
        }
        let counts = faults.counts();
        assert_eq!(
            (counts.timeouts_cut_short, counts.timeouts_after_work),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn a_seed_fixes_the_sequence_and_clones_share_it() {
        async fn outcomes(seed: u64) -> Vec<bool> {
            let faults = RandomFaults::throttles_and_timeouts(seed, 0.3, 0.0).unwrap();
            let (a, b) = (with_random(&faults), with_random(&faults.clone()));
            let mut seen = Vec::new();
            for i in 0..40 {
                let limited = if i % 2 == 0 { &a } else { &b };
                seen.push(limited.call("f", json!(1), &request("T")).await.is_ok());
            }
            assert_eq!(faults.counts().invokes, 40);
            seen
        }
        let first = outcomes(3).await;
        assert_eq!(first, outcomes(3).await);
        assert_ne!(first, outcomes(4).await);
        let failed = first.iter().filter(|ok| !**ok).count();
        assert!(
            (4..=20).contains(&failed),
            "{failed} of 40 at a rate of 0.3"
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
