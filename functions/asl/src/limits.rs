//! The Step Functions quotas a local run must respect so that a definition passing here does
//! not fail on AWS: the payload size of a state's input and output, the execution history's
//! length and the inline Map's concurrency.
//!
//! Sources:
//! - Quotas (payload 256 KiB, history 25,000 events):
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>
//! - `States.DataLimitExceeded`, and that `States.ALL` does not catch it:
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>
//! - What happens at the 25,000th event:
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html>
//! - Inline Map runs at most 40 iterations at a time:
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html>

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::{errors, Failure};

/// 256 KiB of UTF-8 JSON: the most a state's input or output, or a Task's result, may hold.
pub const PAYLOAD_LIMIT_BYTES: usize = 262_144;

/// The hard quota of events in one execution's history.
pub const HISTORY_LIMIT_EVENTS: u64 = 25_000;

/// An inline Map never runs more iterations at once, whatever its `MaxConcurrency` says
/// (0, "as many as possible", also means 40).
pub const INLINE_MAP_MAX_CONCURRENCY: usize = 40;

/// A distributed Map runs at most this many child executions at once (also when its
/// `MaxConcurrency` is 0): <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>.
pub const DISTRIBUTED_MAP_MAX_CONCURRENCY: usize = 10_000;

/// The longest a retry may wait: 31,622,400 s (366 days), the largest `MaxDelaySeconds`
/// AWS accepts ("must be less than 31622401") and the longest a Standard execution runs.
/// A delay that `BackoffRate` grows past it (even to infinity) waits this long instead:
/// <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>.
pub const MAX_DELAY_SECONDS: f64 = 31_622_400.0;

/// The size of `value` as compact UTF-8 JSON, counted without building the text.
pub fn json_size<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing JSON values or maps to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// What crossed the quota, for the Cause text.
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    StateInput,
    StateOutput,
    TaskResult,
    ExecutionInput,
}

/// `States.DataLimitExceeded` when `value` is over [`PAYLOAD_LIMIT_BYTES`]. The Cause reads as
/// the service's ("The state/task '…' returned a result with a size exceeding the maximum
/// number of bytes service limit.").
pub fn check_payload(value: &Value, state: &str, what: Payload) -> Result<(), Failure> {
    let size = json_size(value);
    if size <= PAYLOAD_LIMIT_BYTES {
        return Ok(());
    }
    let subject = match what {
        Payload::StateInput => format!("The state '{state}' has an input"),
        Payload::StateOutput => format!("The state '{state}' has an output"),
        Payload::TaskResult => format!("The state/task '{state}' returned a result"),
        Payload::ExecutionInput => "The execution input has".to_string(),
    };
    Err(Failure::new(
        errors::DATA_LIMIT_EXCEEDED,
        format!(
            "{subject} with a size exceeding the maximum number of bytes service limit \
             ({size} bytes > {PAYLOAD_LIMIT_BYTES})."
        ),
    ))
}

/// The inline Map's effective concurrency for its `MaxConcurrency`.
pub fn map_concurrency(max_concurrency: Option<u64>) -> usize {
    match max_concurrency {
        Some(n) if n > 0 => usize::try_from(n)
            .unwrap_or(INLINE_MAP_MAX_CONCURRENCY)
            .min(INLINE_MAP_MAX_CONCURRENCY),
        _ => INLINE_MAP_MAX_CONCURRENCY,
    }
}

/// The execution history as Step Functions would write it, counted by event type
/// (`TaskScheduled`, `MapIterationStarted`, …) rather than kept: the engine's own
/// [`crate::Event`] log is coarser than the service's and is not what the quota counts.
#[derive(Debug, Default)]
pub struct History {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl History {
    /// A redriven execution's history: it goes on from the `prior` events its earlier attempts
    /// wrote (counted as `PriorAttempts`), and its first new event is `ExecutionRedriven`.
    pub fn redriven(prior: u64) -> Self {
        let history = Self::default();
        history
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert("PriorAttempts", prior);
        history
    }

    /// Records `events` in order. Past the quota the execution fails: when event 24,999 is
    /// written only `ExecutionSucceeded` may follow, anything else makes the service log
    /// `ExecutionFailed` as event 25,000.
    ///
    /// The docs do not name the error of that failure; `States.Runtime` is the documented
    /// error for "an execution failed due to some exception that could not be processed", and
    /// like the history failure it is neither retried nor caught. The Cause is the service's
    /// message (as quoted in <https://cloudonaut.io/step-functions-pitfall-maximum-number-of-history-events/>).
    pub fn record(&self, events: &[&'static str]) -> Result<(), Failure> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for &event in events {
            let total: u64 = counts.values().sum();
            if total + 1 >= HISTORY_LIMIT_EVENTS && event != "ExecutionSucceeded" {
                return Err(Failure::runtime(format!(
                    "The execution reached the maximum number of history events ({HISTORY_LIMIT_EVENTS})."
                )));
            }
            *counts.entry(event).or_insert(0) += 1;
        }
        Ok(())
    }

    /// The end of the execution: `ExecutionSucceeded` or `ExecutionFailed`, which always fits
    /// (the failure above is what makes room for it).
    pub fn finish(&self, succeeded: bool) {
        let event = if succeeded {
            "ExecutionSucceeded"
        } else {
            "ExecutionFailed"
        };
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(event).or_insert(0) += 1;
    }

    /// Events so far: the id of the last one written.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }

    /// Events so far, by type.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_sizes_are_utf8_bytes_of_compact_json() {
        assert_eq!(json_size(&json!({"a": [1, 2]})), 11);
        assert_eq!(json_size(&json!("é")), 4, "two UTF-8 bytes plus quotes");
        let at_limit = Value::String("x".repeat(PAYLOAD_LIMIT_BYTES - 2));
        assert!(check_payload(&at_limit, "S", Payload::StateOutput).is_ok());
        let over = Value::String("x".repeat(PAYLOAD_LIMIT_BYTES - 1));
        let failure = check_payload(&over, "S", Payload::StateOutput).unwrap_err();
        assert_eq!(failure.error, errors::DATA_LIMIT_EXCEEDED);
        assert!(failure.cause.contains("'S'"), "{}", failure.cause);
    }

    #[test]
    fn map_concurrency_is_capped_at_forty() {
        assert_eq!(map_concurrency(None), 40);
        assert_eq!(map_concurrency(Some(0)), 40);
        assert_eq!(map_concurrency(Some(3)), 3);
        assert_eq!(map_concurrency(Some(40)), 40);
        assert_eq!(map_concurrency(Some(1000)), 40);
    }

    #[test]
    fn only_execution_succeeded_may_be_the_25000th_event() {
        let at_24_999 = || {
            let history = History::default();
            for _ in 0..HISTORY_LIMIT_EVENTS - 1 {
                history.record(&["PassStateEntered"]).unwrap();
            }
            history
        };
        assert!(at_24_999().record(&["ExecutionSucceeded"]).is_ok());
        let history = at_24_999();
        let failure = history.record(&["PassStateExited"]).unwrap_err();
        assert_eq!(failure.error, errors::RUNTIME);
        assert!(failure.cause.contains("25000"), "{}", failure.cause);
    }
}
