//! The run loop: states, transitions, Retry and Catch, Map and Parallel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::model::{Catcher, Io, Machine, PathField, Retrier, State};
use crate::template::{expand, place, read, select};
use crate::{choice, errors, Event, Failure, TaskInvoker, TaskRequest};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub execution_name: String,
    pub state_machine_name: String,
    /// Multiplies every Wait and Retry interval: 0.01 turns a 5-minute retry into 3 seconds.
    pub time_scale: f64,
}

impl RunOptions {
    pub fn new(state_machine_name: &str, execution_name: &str) -> Self {
        Self {
            execution_name: execution_name.to_string(),
            state_machine_name: state_machine_name.to_string(),
            time_scale: 1.0,
        }
    }
}

pub struct Execution {
    pub output: Result<Value, Failure>,
    pub history: Vec<Event>,
}

/// Runs a state machine to completion.
pub async fn execute(
    machine: &Machine,
    input: Value,
    invoker: Arc<dyn TaskInvoker>,
    options: RunOptions,
) -> Execution {
    let started = Utc::now();
    let runner = Runner {
        invoker,
        history: Mutex::new(Vec::new()),
        execution: json!({
            "Id": format!("arn:aws:states:local:000000000000:execution:{}:{}", options.state_machine_name, options.execution_name),
            "Name": options.execution_name,
            "Input": input.clone(),
            "StartTime": started.to_rfc3339_opts(SecondsFormat::Millis, true),
        }),
        state_machine: json!({
            "Id": format!("arn:aws:states:local:000000000000:stateMachine:{}", options.state_machine_name),
            "Name": options.state_machine_name,
        }),
        options,
    };
    let run = runner.run_machine(machine, input, None);
    let output = match machine.timeout_seconds {
        Some(seconds) => match tokio::time::timeout(runner.scaled(seconds as f64), run).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                errors::TIMEOUT,
                format!("the execution ran longer than its TimeoutSeconds ({seconds} s)"),
            )),
        },
        None => run.await,
    };
    match &output {
        Ok(_) => runner.record(Event::ExecutionSucceeded),
        Err(f) => runner.record(Event::ExecutionFailed {
            error: f.error.clone(),
            cause: f.cause.clone(),
        }),
    }
    let history = runner
        .history
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Execution { output, history }
}

struct Runner {
    invoker: Arc<dyn TaskInvoker>,
    options: RunOptions,
    history: Mutex<Vec<Event>>,
    execution: Value,
    state_machine: Value,
}

/// The Map item a state runs for, if any: `$$.Map.Item`.
type MapItem = Option<(usize, Value)>;

enum Transition {
    Next(String, Value),
    End(Value),
}

fn runtime<T>(result: Result<T, String>) -> Result<T, Failure> {
    result.map_err(Failure::runtime)
}

impl Runner {
    fn record(&self, event: Event) {
        match &event {
            Event::StateEntered { state, state_type } => {
                tracing::info!(state = %state, state_type = %state_type, "state entered")
            }
            Event::TaskFailed {
                state,
                error,
                retry_count,
            } => {
                tracing::warn!(state = %state, error = %error, retry_count, "task failed")
            }
            Event::RetryScheduled {
                state,
                delay_seconds,
                retry_count,
                ..
            } => {
                tracing::info!(state = %state, retry_count, delay_seconds, "retry scheduled")
            }
            Event::Caught { state, error, next } => {
                tracing::warn!(state = %state, error = %error, next = %next, "error caught")
            }
            _ => tracing::debug!(?event),
        }
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.options.time_scale).clamp(0.0, 86_400.0 * 366.0))
    }

    fn context(
        &self,
        state: &str,
        entered: DateTime<Utc>,
        retry_count: u32,
        item: &MapItem,
    ) -> Value {
        let mut context = json!({
            "Execution": self.execution,
            "StateMachine": self.state_machine,
            "State": {
                "Name": state,
                "EnteredTime": entered.to_rfc3339_opts(SecondsFormat::Millis, true),
                "RetryCount": retry_count,
            },
        });
        if let Some((index, value)) = item {
            context["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        context
    }

    fn run_machine<'a>(
        &'a self,
        machine: &'a Machine,
        input: Value,
        item: MapItem,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        async move {
            let mut name = machine.start_at.clone();
            let mut input = input;
            loop {
                let state = machine
                    .state(&name)
                    .map_err(|e| Failure::runtime(e.to_string()))?;
                self.record(Event::StateEntered {
                    state: name.clone(),
                    state_type: state.type_name().to_string(),
                });
                let transition = self.step(&name, state, input, &item).await?;
                self.record(Event::StateExited {
                    state: name.clone(),
                });
                match transition {
                    Transition::Next(next, output) => {
                        name = next;
                        input = output;
                    }
                    Transition::End(output) => return Ok(output),
                }
            }
        }
        .boxed()
    }

    async fn step(
        &self,
        name: &str,
        state: &State,
        raw: Value,
        item: &MapItem,
    ) -> Result<Transition, Failure> {
        let entered = Utc::now();
        let context = self.context(name, entered, 0, item);
        match state {
            State::Pass(pass) => {
                let effective = runtime(input_of(&pass.io, raw.clone(), &context))?;
                let result = match (&pass.result, &pass.parameters) {
                    (Some(result), _) => result.clone(),
                    (None, Some(parameters)) => runtime(expand(parameters, &effective, &context))?,
                    (None, None) => effective,
                };
                let output = runtime(place(&pass.result_path, raw, result))?;
                finish(&pass.io, &pass.flow, output, &context)
            }
            State::Choice(state) => {
                let effective = runtime(input_of(&state.io, raw, &context))?;
                let mut next = None;
                for rule in &state.choices {
                    if runtime(choice::matches(rule, &effective, &context))? {
                        next = rule.get("Next").and_then(Value::as_str).map(str::to_string);
                        break;
                    }
                }
                let next = next.or_else(|| state.default.clone()).ok_or_else(|| {
                    Failure::new(
                        errors::NO_CHOICE_MATCHED,
                        format!("no Choices rule in {name:?} matched and there is no Default"),
                    )
                })?;
                let output = runtime(select(&state.io.output_path, effective, &context))?;
                Ok(Transition::Next(next, output))
            }
            State::Wait(wait) => {
                let effective = runtime(input_of(&wait.io, raw, &context))?;
                let seconds = match (
                    &wait.seconds,
                    &wait.seconds_path,
                    &wait.timestamp,
                    &wait.timestamp_path,
                ) {
                    (Some(s), _, _, _) => *s,
                    (_, Some(p), _, _) => runtime(read(p, &effective, &context))?
                        .as_f64()
                        .ok_or_else(|| {
                            Failure::runtime(format!("SecondsPath {p} is not a number"))
                        })?,
                    (_, _, Some(ts), _) => seconds_until(ts)?,
                    (_, _, _, Some(p)) => {
                        let ts = runtime(read(p, &effective, &context))?;
                        seconds_until(ts.as_str().unwrap_or_default())?
                    }
                    _ => {
                        return Err(Failure::runtime(format!(
                            "Wait state {name:?} has no Seconds or Timestamp"
                        )))
                    }
                };
                if seconds < 0.0 {
                    return Err(Failure::runtime(format!(
                        "Wait state {name:?}: negative seconds"
                    )));
                }
                tokio::time::sleep(self.scaled(seconds)).await;
                finish(&wait.io, &wait.flow, effective, &context)
            }
            State::Succeed(succeed) => {
                let effective = runtime(input_of(&succeed.io, raw, &context))?;
                let output = runtime(select(&succeed.io.output_path, effective, &context))?;
                Ok(Transition::End(output))
            }
            State::Fail(fail) => {
                let error = match &fail.error_path {
                    Some(p) => runtime(read(p, &raw, &context))?
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    None => fail.error.clone().unwrap_or_default(),
                };
                let cause = match &fail.cause_path {
                    Some(p) => runtime(read(p, &raw, &context))?
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    None => fail.cause.clone().unwrap_or_default(),
                };
                Err(Failure::new(error, cause))
            }
            State::Task(task) => {
                let attempt = |retry_count: u32| {
                    let raw = raw.clone();
                    async move {
                        let context = self.context(name, entered, retry_count, item);
                        let effective = runtime(input_of(&task.io, raw, &context))?;
                        let parameters = match &task.parameters {
                            Some(template) => runtime(expand(template, &effective, &context))?,
                            None => effective,
                        };
                        let request = TaskRequest {
                            resource: task.resource.clone(),
                            parameters,
                            state: name.to_string(),
                            retry_count,
                            execution_name: self.options.execution_name.clone(),
                        };
                        let call = self.invoker.invoke(request);
                        match task.timeout_seconds {
                            Some(limit) => tokio::time::timeout(Duration::from_secs(limit), call)
                                .await
                                .unwrap_or_else(|_| {
                                    Err(Failure::new(
                                        errors::TIMEOUT,
                                        format!("task ran longer than {limit} s"),
                                    ))
                                }),
                            None => call.await,
                        }
                    }
                };
                self.with_retry_and_catch(
                    name,
                    &task.retry,
                    &task.catch,
                    raw.clone(),
                    attempt,
                    |result| {
                        after_result(
                            &task.result_selector,
                            &task.result_path,
                            &task.io,
                            &task.flow,
                            raw.clone(),
                            result,
                            &context,
                        )
                    },
                )
                .await
            }
            State::Parallel(parallel) => {
                let attempt = |retry_count: u32| {
                    let raw = raw.clone();
                    async move {
                        let context = self.context(name, entered, retry_count, item);
                        let effective = runtime(input_of(&parallel.io, raw, &context))?;
                        let branch_input = match &parallel.parameters {
                            Some(template) => runtime(expand(template, &effective, &context))?,
                            None => effective,
                        };
                        let branches = parallel
                            .branches
                            .iter()
                            .map(|branch| self.run_machine(branch, branch_input.clone(), None));
                        futures::future::try_join_all(branches)
                            .await
                            .map(Value::Array)
                    }
                };
                self.with_retry_and_catch(
                    name,
                    &parallel.retry,
                    &parallel.catch,
                    raw.clone(),
                    attempt,
                    |result| {
                        after_result(
                            &parallel.result_selector,
                            &parallel.result_path,
                            &parallel.io,
                            &parallel.flow,
                            raw.clone(),
                            result,
                            &context,
                        )
                    },
                )
                .await
            }
            State::Map(map) => {
                let attempt = |retry_count: u32| {
                    let raw = raw.clone();
                    async move {
                        let context = self.context(name, entered, retry_count, item);
                        let effective = runtime(input_of(&map.io, raw, &context))?;
                        let items = match &map.items_path {
                            Some(p) => runtime(read(p, &effective, &context))?,
                            None => effective.clone(),
                        };
                        let Value::Array(items) = items else {
                            return Err(Failure::runtime(format!(
                                "Map state {name:?}: ItemsPath must select an array"
                            )));
                        };
                        let limit = match map.max_concurrency {
                            Some(n) if n > 0 => n as usize,
                            _ => items.len().max(1),
                        };
                        tracing::info!(state = %name, items = items.len(), max_concurrency = limit, "map fan-out");
                        let iterations = items.into_iter().enumerate().map(|(index, value)| {
                            let item_ctx: MapItem = Some((index, value.clone()));
                            let input = match &map.item_selector {
                                Some(selector) => {
                                    let ctx = self.context(name, entered, retry_count, &item_ctx);
                                    expand(selector, &effective, &ctx).map_err(Failure::runtime)
                                }
                                None => Ok(value),
                            };
                            async move {
                                self.run_machine(&map.item_processor, input?, item_ctx)
                                    .await
                            }
                        });
                        futures::stream::iter(iterations)
                            .buffered(limit)
                            .try_collect::<Vec<_>>()
                            .await
                            .map(Value::Array)
                    }
                };
                self.with_retry_and_catch(
                    name,
                    &map.retry,
                    &map.catch,
                    raw.clone(),
                    attempt,
                    |result| {
                        after_result(
                            &map.result_selector,
                            &map.result_path,
                            &map.io,
                            &map.flow,
                            raw.clone(),
                            result,
                            &context,
                        )
                    },
                )
                .await
            }
        }
    }

    /// Runs `attempt` until it succeeds, a Retrier gives up, or no Retrier matches; then
    /// hands a failure to the first matching Catcher.
    async fn with_retry_and_catch<A, Fut, S>(
        &self,
        name: &str,
        retriers: &[Retrier],
        catchers: &[Catcher],
        raw: Value,
        attempt: A,
        on_success: S,
    ) -> Result<Transition, Failure>
    where
        A: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>>,
        S: FnOnce(Value) -> Result<Transition, Failure>,
    {
        let mut attempts_per_retrier = vec![0u32; retriers.len()];
        let mut retry_count = 0u32;
        let failure = loop {
            let failure = match attempt(retry_count).await {
                Ok(result) => return on_success(result),
                Err(failure) => failure,
            };
            self.record(Event::TaskFailed {
                state: name.to_string(),
                error: failure.error.clone(),
                retry_count,
            });
            if failure.error == errors::RUNTIME {
                return Err(failure);
            }
            let Some(index) = retriers
                .iter()
                .position(|r| error_matches(&r.error_equals, &failure.error))
            else {
                break failure;
            };
            let retrier = &retriers[index];
            if attempts_per_retrier[index] >= retrier.max_attempts {
                break failure;
            }
            let mut delay = retrier.interval_seconds
                * retrier
                    .backoff_rate
                    .powi(attempts_per_retrier[index] as i32);
            if let Some(max) = retrier.max_delay_seconds {
                delay = delay.min(max);
            }
            attempts_per_retrier[index] += 1;
            retry_count += 1;
            self.record(Event::RetryScheduled {
                state: name.to_string(),
                error: failure.error.clone(),
                retry_count,
                delay_seconds: delay,
            });
            tokio::time::sleep(self.scaled(delay)).await;
        };
        let Some(catcher) = catchers
            .iter()
            .find(|c| error_matches(&c.error_equals, &failure.error))
        else {
            return Err(failure);
        };
        self.record(Event::Caught {
            state: name.to_string(),
            error: failure.error.clone(),
            next: catcher.next.clone(),
        });
        let error_output = json!({"Error": failure.error, "Cause": failure.cause});
        let output = runtime(place(&catcher.result_path, raw, error_output))?;
        Ok(Transition::Next(catcher.next.clone(), output))
    }
}

/// `States.ALL` matches every error but `States.Runtime`; `States.TaskFailed` every error
/// but `States.Timeout` too.
fn error_matches(names: &[String], error: &str) -> bool {
    names.iter().any(|name| {
        name == error
            || (name == errors::ALL && error != errors::RUNTIME)
            || (name == errors::TASK_FAILED && error != errors::TIMEOUT && error != errors::RUNTIME)
    })
}

fn input_of(io: &Io, raw: Value, context: &Value) -> Result<Value, String> {
    select(&io.input_path, raw, context)
}

fn finish(
    io: &Io,
    flow: &crate::model::Flow,
    output: Value,
    context: &Value,
) -> Result<Transition, Failure> {
    let output = runtime(select(&io.output_path, output, context))?;
    Ok(match &flow.next {
        Some(next) if !flow.end => Transition::Next(next.clone(), output),
        _ => Transition::End(output),
    })
}

fn after_result(
    selector: &Option<Value>,
    result_path: &PathField,
    io: &Io,
    flow: &crate::model::Flow,
    raw: Value,
    result: Value,
    context: &Value,
) -> Result<Transition, Failure> {
    let result = match selector {
        Some(template) => runtime(expand(template, &result, context))?,
        None => result,
    };
    let output = runtime(place(result_path, raw, result))?;
    finish(io, flow, output, context)
}

fn seconds_until(timestamp: &str) -> Result<f64, Failure> {
    let target = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| Failure::runtime(format!("{timestamp:?} is not an RFC 3339 timestamp")))?;
    let millis = (target.with_timezone(&Utc) - Utc::now()).num_milliseconds();
    Ok((millis.max(0) as f64) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails the first `fail_times` calls of each resource with `error`, then echoes.
    struct Flaky {
        calls: AtomicU32,
        fail_times: u32,
        error: &'static str,
    }

    impl TaskInvoker for Flaky {
        fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
            async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if n < self.fail_times {
                    Err(Failure::new(self.error, format!("call {n} failed")))
                } else {
                    Ok(json!({"echo": request.parameters, "retry_count": request.retry_count}))
                }
            }
            .boxed()
        }
    }

    async fn run(definition: Value, input: Value, invoker: Flaky) -> Execution {
        let machine = Machine::from_json(&definition.to_string()).unwrap();
        let mut options = RunOptions::new("test", "exec");
        options.time_scale = 0.0;
        execute(&machine, input, Arc::new(invoker), options).await
    }

    fn flaky(fail_times: u32, error: &'static str) -> Flaky {
        Flaky {
            calls: AtomicU32::new(0),
            fail_times,
            error,
        }
    }

    #[tokio::test]
    async fn retry_then_succeed_with_result_path_and_selector() {
        let definition = json!({
            "StartAt": "T",
            "States": {"T": {
                "Type": "Task", "Resource": "r",
                "Parameters": {"d.$": "$.date"},
                "ResultSelector": {"got.$": "$.echo.d", "tries.$": "$.retry_count"},
                "ResultPath": "$.result",
                "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 300, "MaxAttempts": 2}],
                "End": true
            }}
        });
        let exec = run(
            definition,
            json!({"date": "2026-11-25"}),
            flaky(2, "Retryable"),
        )
        .await;
        assert_eq!(
            exec.output.unwrap(),
            json!({"date": "2026-11-25", "result": {"got": "2026-11-25", "tries": 2}})
        );
        let retries: Vec<f64> = exec
            .history
            .iter()
            .filter_map(|e| match e {
                Event::RetryScheduled { delay_seconds, .. } => Some(*delay_seconds),
                _ => None,
            })
            .collect();
        assert_eq!(retries, vec![300.0, 600.0]);
    }

    #[tokio::test]
    async fn exhausted_retries_fall_to_catch_and_runtime_errors_are_not_caught() {
        let definition = json!({
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "r", "End": true,
                      "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 1}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}]},
                "Handled": {"Type": "Pass", "End": true}
            }
        });
        let exec = run(definition.clone(), json!({"a": 1}), flaky(5, "Retryable")).await;
        assert_eq!(
            exec.output.unwrap(),
            json!({"a": 1, "error": {"Error": "Retryable", "Cause": "call 1 failed"}})
        );

        let exec = run(definition, json!({"a": 1}), flaky(5, "States.Runtime")).await;
        assert_eq!(exec.output.unwrap_err().error, "States.Runtime");
    }

    #[tokio::test]
    async fn non_matching_errors_fail_the_execution() {
        let definition = json!({
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
                "Retry": [{"ErrorEquals": ["Retryable"]}],
                "Catch": [{"ErrorEquals": ["InvalidInput"], "Next": "F"}]},
                "F": {"Type": "Fail", "Error": "Handled", "Cause": "bad input"}}
        });
        let exec = run(definition.clone(), json!({}), flaky(1, "Fatal")).await;
        assert_eq!(
            exec.output.unwrap_err(),
            Failure::new("Fatal", "call 0 failed")
        );
        let exec = run(definition, json!({}), flaky(1, "InvalidInput")).await;
        assert_eq!(
            exec.output.unwrap_err(),
            Failure::new("Handled", "bad input")
        );
    }

    #[tokio::test]
    async fn map_keeps_order_and_exposes_item_context() {
        let definition = json!({
            "StartAt": "M",
            "States": {"M": {
                "Type": "Map", "ItemsPath": "$.days", "MaxConcurrency": 2,
                "ItemSelector": {"day.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "run.$": "$.run"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                "ResultPath": "$.results", "OutputPath": "$.results", "End": true
            }}
        });
        let exec = run(
            definition,
            json!({"days": ["a", "b", "c"], "run": 7}),
            flaky(0, ""),
        )
        .await;
        assert_eq!(
            exec.output.unwrap(),
            json!([{"day": "a", "i": 0, "run": 7}, {"day": "b", "i": 1, "run": 7}, {"day": "c", "i": 2, "run": 7}])
        );
    }

    #[tokio::test]
    async fn parallel_choice_and_wait() {
        let definition = json!({
            "StartAt": "Both",
            "States": {
                "Both": {"Type": "Parallel", "Next": "Pick", "ResultPath": "$.branches", "Branches": [
                    {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "Next": "A"},
                                                 "A": {"Type": "Pass", "Result": 1, "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 2, "End": true}}}
                ]},
                "Pick": {"Type": "Choice", "Default": "Low", "Choices": [
                    {"Variable": "$.branches[1]", "NumericGreaterThan": 1, "Next": "High"}
                ]},
                "High": {"Type": "Succeed", "OutputPath": "$.branches"},
                "Low": {"Type": "Fail", "Error": "Low"}
            }
        });
        let exec = run(definition, json!({}), flaky(0, "")).await;
        assert_eq!(exec.output.unwrap(), json!([1, 2]));
    }

    #[tokio::test]
    async fn missing_paths_are_runtime_errors() {
        let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.nope", "End": true}}});
        let exec = run(definition, json!({}), flaky(0, "")).await;
        let failure = exec.output.unwrap_err();
        assert_eq!(failure.error, "States.Runtime");
        assert!(failure.cause.contains("$.nope"), "{}", failure.cause);
    }

    #[test]
    fn invalid_definitions_are_refused_at_load() {
        for (definition, expect) in [
            (json!({"StartAt": "X", "States": {}}), "StartAt"),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}),
                "missing state",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
                "neither Next nor End",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": true}}}),
                "Teleport",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true, "ItemReader": {},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}}}}),
                "distributed",
            ),
        ] {
            let err = Machine::from_json(&definition.to_string())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }
}
