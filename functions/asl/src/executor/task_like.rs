//! What Task, Parallel and Map states share around their work: Retry and Catch when it
//! fails, and `ResultSelector` → `ResultPath` → `OutputPath` when it succeeds.

use std::future::Future;

use serde_json::{json, Value};

use super::{assigned, expand_or_keep, finish, runtime, Runner, Transition, Visit};
use crate::model::{Catcher, Flow, Io, MapState, ParallelState, PathField, Retrier, TaskState};
use crate::template::{place, select, Roots};
use crate::{errors, limits, Event, Failure};

/// The fields of a task-like state that decide what becomes of its work.
pub(super) struct TaskLike<'a> {
    io: &'a Io,
    flow: &'a Flow,
    result_selector: Option<&'a Value>,
    result_path: &'a PathField,
    retry: &'a [Retrier],
    catch: &'a [Catcher],
    assign: Option<&'a Value>,
    /// Keep the work's result for the observer ([`super::Observed::result`]): a Task's, not
    /// a Parallel's or a Map's (every branch's or item's output).
    keeps_result: bool,
}

macro_rules! task_like_from {
    ($($state:ty),+) => {$(
        impl<'a> From<&'a $state> for TaskLike<'a> {
            fn from(state: &'a $state) -> Self {
                TaskLike {
                    io: &state.io,
                    flow: &state.flow,
                    result_selector: state.result_selector.as_ref(),
                    result_path: &state.result_path,
                    retry: &state.retry,
                    catch: &state.catch,
                    assign: state.assign.as_ref(),
                    keeps_result: false,
                }
            }
        }
    )+};
}

task_like_from!(TaskState, ParallelState, MapState);

impl TaskLike<'_> {
    /// The same state, its result kept for the observer.
    pub(super) fn keeping_result(self) -> Self {
        Self {
            keeps_result: true,
            ..self
        }
    }

    /// The transition after the work returned `result`: `ResultSelector` shapes it,
    /// `Assign` reads it, `ResultPath` places it in the raw input, `OutputPath` selects
    /// from that.
    fn succeeded(
        &self,
        raw: Value,
        result: Value,
        roots: Roots<'_>,
    ) -> Result<Transition, Failure> {
        let result = expand_or_keep(self.result_selector, result, roots)?;
        let assigned = assigned(self.assign, &result, roots)?;
        let output = runtime(place(self.result_path, raw, result))?;
        finish(self.io, self.flow, output, roots, assigned)
    }

    /// The first Catcher that names `error`.
    #[cfg(test)]
    fn catcher(&self, error: &str) -> Option<&Catcher> {
        self.catch
            .iter()
            .find(|c| error_matches(&c.error_equals, error))
    }
}

/// The transition a Catcher makes: `{"Error", "Cause"}` (what its `Assign` reads) placed in
/// the raw input at its `ResultPath`, on to its `Next`.
fn caught(
    catcher: &Catcher,
    raw: Value,
    failure: &Failure,
    roots: Roots<'_>,
) -> Result<Transition, Failure> {
    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
    let assigned = assigned(catcher.assign.as_ref(), &error_output, roots)?;
    let output = runtime(place(&catcher.result_path, raw, error_output))?;
    Ok(Transition {
        next: Some(catcher.next.clone()),
        output,
        assigned,
        observed_result: None,
    })
}

/// `States.ALL` matches every error but the terminal `States.Runtime` and
/// `States.DataLimitExceeded`; `States.TaskFailed` every error but those and `States.Timeout`.
fn error_matches(names: &[String], error: &str) -> bool {
    let terminal = error == errors::RUNTIME || error == errors::DATA_LIMIT_EXCEEDED;
    names.iter().any(|name| {
        name == error
            || (name == errors::ALL && !terminal)
            || (name == errors::TASK_FAILED && !terminal && error != errors::TIMEOUT)
    })
}

/// How far a state's Retriers have got. Each Retrier counts its own attempts, so its
/// `MaxAttempts` and `BackoffRate` ignore retries another Retrier made.
struct Retries<'a> {
    retriers: &'a [Retrier],
    attempts: Vec<u32>,
    count: u32,
}

impl<'a> Retries<'a> {
    fn new(retriers: &'a [Retrier]) -> Self {
        Self {
            retriers,
            attempts: vec![0; retriers.len()],
            count: 0,
        }
    }

    /// Retries so far, all Retriers together: `$$.State.RetryCount`.
    fn count(&self) -> u32 {
        self.count
    }

    /// Books a retry after `error` and returns the seconds to wait before it; `None` when
    /// no Retrier names the error or the first that does has used up its attempts.
    fn schedule(&mut self, error: &str) -> Option<f64> {
        let index = self
            .retriers
            .iter()
            .position(|r| error_matches(&r.error_equals, error))?;
        let retrier = &self.retriers[index];
        let attempts = self.attempts[index];
        if attempts >= retrier.max_attempts {
            return None;
        }
        let exponent = i32::try_from(attempts).unwrap_or(i32::MAX);
        let grown = retrier.interval_seconds * retrier.backoff_rate.powi(exponent);
        // A large BackoffRate overflows to infinity (or NaN from inf * 0); AWS never waits
        // longer than its largest MaxDelaySeconds, so neither do we, and FULL jitter then
        // draws from a finite range.
        let cap = retrier
            .max_delay_seconds
            .map_or(limits::MAX_DELAY_SECONDS, |max| {
                max.min(limits::MAX_DELAY_SECONDS)
            });
        let mut delay = if grown.is_nan() {
            cap
        } else {
            grown.clamp(0.0, cap.max(0.0))
        };
        if retrier.jitter_strategy.as_deref() == Some("FULL") {
            delay = rand::random_range(0.0..=delay);
        }
        self.attempts[index] += 1;
        self.count += 1;
        Some(delay)
    }
}

/// How the attempts of a task-like state's work ended, if not in an uncaught failure.
pub(super) enum Outcome {
    Succeeded(Value),
    /// The failure and the index of the first Catcher that names it.
    Caught(usize, Failure),
}

impl Runner {
    /// Runs a task-like state. `work` gets the retry count, the effective input (after
    /// `InputPath`) and the context object, and is called again on each retry. A
    /// `States.Runtime` failure is neither retried nor caught.
    pub(super) async fn run_task_like<W, Fut>(
        &self,
        visit: Visit<'_>,
        state: &TaskLike<'_>,
        raw: Value,
        work: W,
    ) -> Result<Transition, Failure>
    where
        W: Fn(u32, Value, Value) -> Fut,
        Fut: Future<Output = Result<Value, Failure>>,
    {
        let prepare = |context: &Value| {
            runtime(select(
                &state.io.input_path,
                raw.clone(),
                visit.roots(context),
            ))
        };
        let outcome = self
            .attempts(visit, state.retry, state.catch, prepare, work)
            .await?;
        // `$$.State.RetryCount` reads 0 here even after retries, as it always has.
        let context = self.context(visit, 0);
        match outcome {
            Outcome::Succeeded(result) => {
                let kept = (state.keeps_result && self.observed()).then(|| result.clone());
                let mut transition = state.succeeded(raw, result, visit.roots(&context))?;
                transition.observed_result = kept;
                Ok(transition)
            }
            Outcome::Caught(index, failure) => {
                caught(&state.catch[index], raw, &failure, visit.roots(&context))
            }
        }
    }

    /// Runs `work` on the input `prepare` makes from each attempt's context object, retried
    /// as `retry` says, until it succeeds or fails for good; a failure a Catcher names is
    /// returned as [`Outcome::Caught`], any other is the state's.
    pub(super) async fn attempts<P, W, Fut>(
        &self,
        visit: Visit<'_>,
        retry: &[Retrier],
        catch: &[Catcher],
        prepare: P,
        work: W,
    ) -> Result<Outcome, Failure>
    where
        P: Fn(&Value) -> Result<Value, Failure>,
        W: Fn(u32, Value, Value) -> Fut,
        Fut: Future<Output = Result<Value, Failure>>,
    {
        let mut retries = Retries::new(retry);
        let failure = loop {
            let retry_count = retries.count();
            let context = self.context(visit, retry_count);
            let attempt = match prepare(&context) {
                Ok(effective) => work(retry_count, effective, context).await,
                Err(failure) => Err(failure),
            };
            let failure = match attempt {
                Ok(result) => return Ok(Outcome::Succeeded(result)),
                Err(failure) => failure,
            };
            self.record(Event::TaskFailed {
                state: visit.name.to_string(),
                error: failure.error.clone(),
                retry_count,
            });
            if failure.error == errors::RUNTIME {
                return Err(failure);
            }
            let Some(delay) = retries.schedule(&failure.error) else {
                break failure;
            };
            self.record(Event::RetryScheduled {
                state: visit.name.to_string(),
                error: failure.error.clone(),
                retry_count: retries.count(),
                delay_seconds: delay,
            });
            tokio::time::sleep(self.scaled(delay)).await;
        };
        let Some(index) = catch
            .iter()
            .position(|c| error_matches(&c.error_equals, &failure.error))
        else {
            return Err(failure);
        };
        self.record(Event::Caught {
            state: visit.name.to_string(),
            error: failure.error.clone(),
            next: catch[index].next.clone(),
        });
        Ok(Outcome::Caught(index, failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(errors: &[&str], max_attempts: u32, max_delay: Option<f64>) -> Retrier {
        Retrier {
            error_equals: errors.iter().map(ToString::to_string).collect(),
            interval_seconds: 2.0,
            max_attempts,
            backoff_rate: 3.0,
            max_delay_seconds: max_delay,
            jitter_strategy: None,
        }
    }

    fn names(errors: &[&str]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn wildcards_never_match_runtime_errors_and_task_failed_skips_timeouts() {
        let all = names(&[errors::ALL]);
        let task_failed = names(&[errors::TASK_FAILED]);
        assert!(error_matches(&all, "Custom"));
        assert!(error_matches(&all, errors::TIMEOUT));
        assert!(!error_matches(&all, errors::RUNTIME));
        assert!(error_matches(&task_failed, "Custom"));
        assert!(!error_matches(&task_failed, errors::TIMEOUT));
        assert!(!error_matches(&task_failed, errors::RUNTIME));
        assert!(!error_matches(&all, errors::DATA_LIMIT_EXCEEDED));
        assert!(!error_matches(&task_failed, errors::DATA_LIMIT_EXCEEDED));
        assert!(error_matches(
            &names(&[errors::DATA_LIMIT_EXCEEDED]),
            errors::DATA_LIMIT_EXCEEDED
        ));
        assert!(error_matches(&names(&[errors::TIMEOUT]), errors::TIMEOUT));
        assert!(!error_matches(&names(&["A", "B"]), "C"));
    }

    #[test]
    fn backoff_is_capped_and_counted_per_retrier() {
        let retriers = [
            retrier(&["A"], 3, Some(10.0)),
            retrier(&[errors::ALL], 1, None),
        ];
        let mut retries = Retries::new(&retriers);
        assert_eq!(retries.schedule("A"), Some(2.0));
        assert_eq!(
            retries.schedule("B"),
            Some(2.0),
            "B's first retry: no backoff yet"
        );
        assert_eq!(retries.schedule("A"), Some(6.0));
        assert_eq!(
            retries.schedule("A"),
            Some(10.0),
            "18 s capped by MaxDelaySeconds"
        );
        assert_eq!(retries.schedule("A"), None, "A's MaxAttempts is used up");
        assert_eq!(retries.schedule("B"), None);
        assert_eq!(retries.count(), 4);
    }

    #[test]
    fn huge_backoff_rates_wait_at_most_the_largest_delay() {
        let mut huge = retrier(&["A"], 5, None);
        huge.backoff_rate = 1e308;
        let mut capped = huge.clone();
        capped.error_equals = names(&["B"]);
        capped.max_delay_seconds = Some(7.0);
        let mut jittered = huge.clone();
        jittered.error_equals = names(&["C"]);
        jittered.jitter_strategy = Some("FULL".into());
        let retriers = [huge, capped, jittered];
        let mut retries = Retries::new(&retriers);
        assert_eq!(retries.schedule("A"), Some(2.0));
        assert_eq!(retries.schedule("A"), Some(limits::MAX_DELAY_SECONDS));
        assert_eq!(retries.schedule("A"), Some(limits::MAX_DELAY_SECONDS));
        assert_eq!(retries.schedule("B"), Some(2.0));
        assert_eq!(retries.schedule("B"), Some(7.0));
        for _ in 0..3 {
            let delay = retries.schedule("C").unwrap();
            assert!(
                (0.0..=limits::MAX_DELAY_SECONDS).contains(&delay),
                "{delay}"
            );
        }
    }

    #[test]
    fn the_first_matching_retrier_decides_even_when_exhausted() {
        let retriers = [retrier(&["A"], 0, None), retrier(&[errors::ALL], 5, None)];
        let mut retries = Retries::new(&retriers);
        assert_eq!(retries.schedule("A"), None);
        assert_eq!(retries.count(), 0);
    }

    #[test]
    fn results_and_caught_errors_are_placed_at_their_result_paths() {
        let selector = json!({"kept.$": "$.x"});
        let io = Io {
            output_path: PathField::Path("$.out".into()),
            ..Io::default()
        };
        let flow = Flow {
            next: Some("N".into()),
            end: false,
        };
        let state = TaskLike {
            io: &io,
            flow: &flow,
            result_selector: Some(&selector),
            result_path: &PathField::Path("$.out.result".into()),
            retry: &[],
            catch: &[Catcher {
                error_equals: names(&[errors::TASK_FAILED]),
                next: "Handler".into(),
                result_path: PathField::Path("$.error".into()),
                assign: None,
            }],
            assign: None,
            keeps_result: false,
        };
        let vars = crate::variables::Variables::default();
        let context = json!({});
        let roots = Roots {
            context: &context,
            vars: &vars,
        };
        let raw = json!({"out": {"a": 1}});
        let Ok(Transition {
            next: Some(next),
            output,
            ..
        }) = state.succeeded(raw.clone(), json!({"x": 5, "y": 6}), roots)
        else {
            panic!("expected a transition to Next");
        };
        assert_eq!(next, "N");
        assert_eq!(output, json!({"a": 1, "result": {"kept": 5}}));

        assert!(state.catcher(errors::TIMEOUT).is_none());
        let catcher = state
            .catcher("Boom")
            .expect("States.TaskFailed catches Boom");
        let Ok(Transition {
            next: Some(next),
            output,
            ..
        }) = caught(catcher, raw, &Failure::new("Boom", "it broke"), roots)
        else {
            panic!("expected a transition to the handler");
        };
        assert_eq!(next, "Handler");
        assert_eq!(
            output,
            json!({"out": {"a": 1}, "error": {"Error": "Boom", "Cause": "it broke"}})
        );
    }
}
