//! Running a state whose query language is JSONata.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>. `Arguments`
//! (default: the state input) is what the Task, or each Parallel branch, gets; `Output`
//! replaces `ResultSelector`, `ResultPath` and `OutputPath`, and defaults to `$states.result`
//! after a Task, Parallel or Map succeeded, to `$states.errorOutput` after a Catcher caught, and
//! to `$states.input` elsewhere. `Assign` and `Output` are evaluated side by side, against the
//! variables from before the state. Every evaluation failure is `States.QueryEvaluationError`,
//! which Retry and Catch can name.
//!
//! A [`Scope`] borrows the variables without `Sync`, so one is only ever built in a
//! synchronous helper, never held across an `.await`.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::task_like::Outcome;
use super::wait::{parse_timestamp, whole_number, MAX_WAIT_SECONDS};
use super::{MapItem, Runner, Transition, Visit};
use crate::jsonata::{
    evaluate_condition, evaluate_template, evaluate_typed, FieldPath, JsonType, Scope,
    VariableLookup, QUERY_EVALUATION_ERROR,
};
use crate::limits;
use crate::model::query_language::{JsonataOutcome, JsonataState};
use crate::model::{Catcher, ChoiceState, Flow, MapState, ParallelState, State, TaskState};
use crate::variables::{check_sizes, Variables};
use crate::{errors, Failure};

impl VariableLookup for Variables {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// What every expression of one state entry sees, `$states.result` and
/// `$states.errorOutput` aside.
fn scope<'a>(visit: Visit<'a>, input: &'a Value, context: &'a Value) -> Scope<'a> {
    Scope::new(input, visit.vars)
        .with_context(context)
        .with_clock(visit.entered.timestamp_millis())
}

fn next_of(flow: &Flow) -> Option<String> {
    flow.next.clone().filter(|_| !flow.end)
}

/// A value the expression gave that the field cannot take (a negative `Seconds`, a zero
/// `TimeoutSeconds`).
fn out_of_range(field: &str, value: &Value, expected: &str) -> Failure {
    Failure::new(
        QUERY_EVALUATION_ERROR,
        format!("The value {value} for the field '{field}' is out of range: expected {expected}"),
    )
}

/// The state output (`output`, else `default`) and the variables `assign` sets.
fn output_and_assign(
    scope: &Scope<'_>,
    (output, output_field): (Option<&Value>, FieldPath),
    (assign, assign_field): (Option<&Value>, FieldPath),
    default: &Value,
) -> Result<(Value, Map<String, Value>), Failure> {
    let assigned = match assign {
        Some(template) => match evaluate_template(template, &assign_field, scope)? {
            Value::Object(assigned) => assigned,
            // Refused at load: Assign is an object, and its keys are never evaluated.
            _ => Map::new(),
        },
        None => Map::new(),
    };
    check_sizes(&assigned)?;
    let output = match output {
        Some(template) => evaluate_template(template, &output_field, scope)?,
        None => default.clone(),
    };
    Ok((output, assigned))
}

/// A number field (`TimeoutSeconds`, `HeartbeatSeconds`, `MaxConcurrency`, `Seconds`): a
/// non-negative integer, positive where `positive`.
fn whole(
    template: Option<&Value>,
    field: &str,
    scope: &Scope<'_>,
    positive: bool,
) -> Result<Option<u64>, Failure> {
    let Some(template) = template else {
        return Ok(None);
    };
    let value = evaluate_typed(template, &FieldPath::new(field), scope, JsonType::Number)?;
    match whole_number(&value) {
        Some(n) if n > 0 || !positive => Ok(Some(n)),
        _ if positive => Err(out_of_range(field, &value, "a positive integer")),
        _ => Err(out_of_range(field, &value, "a non-negative integer")),
    }
}

/// `Arguments`, or the state input without it.
fn arguments(
    visit: Visit<'_>,
    fields: &JsonataState,
    input: &Value,
    context: &Value,
) -> Result<Value, Failure> {
    match &fields.arguments {
        Some(template) => Ok(evaluate_template(
            template,
            &FieldPath::new("Arguments"),
            &scope(visit, input, context),
        )?),
        None => Ok(input.clone()),
    }
}

/// A Task's parameters and timeout for one attempt (`HeartbeatSeconds` is checked but has
/// nothing to time out on in a synchronous invocation).
fn task_call(
    visit: Visit<'_>,
    fields: &JsonataState,
    input: &Value,
    context: &Value,
) -> Result<(Value, Option<u64>), Failure> {
    let parameters = arguments(visit, fields, input, context)?;
    let scope = scope(visit, input, context);
    let timeout = whole(
        fields.timeout_seconds.as_ref(),
        "TimeoutSeconds",
        &scope,
        true,
    )?;
    whole(
        fields.heartbeat_seconds.as_ref(),
        "HeartbeatSeconds",
        &scope,
        true,
    )?;
    Ok((parameters, timeout))
}

/// A Map's items (`Items`, else the state input) and how many may run at once.
fn map_items(
    visit: Visit<'_>,
    fields: &JsonataState,
    input: &Value,
    context: &Value,
) -> Result<(Vec<Value>, usize), Failure> {
    let scope = scope(visit, input, context);
    let items = match &fields.items {
        Some(template) => {
            evaluate_typed(template, &FieldPath::new("Items"), &scope, JsonType::Array)?
        }
        None => input.clone(),
    };
    let Value::Array(items) = items else {
        return Err(Failure::runtime(format!(
            "Map state {:?}: without Items, the state input must be an array",
            visit.name
        )));
    };
    let max = whole(
        fields.max_concurrency.as_ref(),
        "MaxConcurrency",
        &scope,
        false,
    )?;
    Ok((items, limits::map_concurrency(max)))
}

/// The Fail state's error: `Error` and `Cause`, each a string.
fn failure(scope: &Scope<'_>, fields: &JsonataState) -> Failure {
    let text = |template: Option<&Value>, field: &str| -> Result<String, Failure> {
        let Some(template) = template else {
            return Ok(String::new());
        };
        let value = evaluate_typed(template, &FieldPath::new(field), scope, JsonType::String)?;
        Ok(value.as_str().unwrap_or_default().to_string())
    };
    match (
        text(fields.error.as_ref(), "Error"),
        text(fields.cause.as_ref(), "Cause"),
    ) {
        (Ok(error), Ok(cause)) => Failure::new(error, cause),
        (Err(failure), _) | (_, Err(failure)) => failure,
    }
}

/// A Wait state's delay in seconds: `Seconds`, or until `Timestamp` (0 once it is past).
fn wait_seconds(
    scope: &Scope<'_>,
    fields: &JsonataState,
    now: DateTime<Utc>,
) -> Result<f64, Failure> {
    let seconds = if let Some(seconds) = whole(fields.seconds.as_ref(), "Seconds", scope, false)? {
        seconds as f64
    } else if let Some(template) = &fields.timestamp {
        let value = evaluate_typed(
            template,
            &FieldPath::new("Timestamp"),
            scope,
            JsonType::String,
        )?;
        let target = value
            .as_str()
            .and_then(parse_timestamp)
            .ok_or_else(|| out_of_range("Timestamp", &value, "an RFC 3339 timestamp"))?;
        let millis = (target.with_timezone(&Utc) - now).num_milliseconds();
        (millis.max(0) as f64) / 1000.0
    } else {
        0.0
    };
    if seconds > MAX_WAIT_SECONDS {
        return Err(out_of_range(
            "Seconds",
            &json!(seconds),
            "at most the longest execution (one year)",
        ));
    }
    Ok(seconds)
}

impl Runner {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn step_jsonata(
        &self,
        name: &str,
        key: &str,
        state: &State,
        fields: &JsonataState,
        input: Value,
        item: &MapItem,
        vars: &Variables,
    ) -> Result<Transition, Failure> {
        let visit = Visit::new(name, key, item, vars);
        match state {
            State::Task(task) => self.jsonata_task(visit, task, fields, input).await,
            State::Parallel(parallel) => {
                self.jsonata_parallel(visit, parallel, fields, input).await
            }
            State::Map(map) => self.jsonata_map(visit, map, fields, input).await,
            State::Pass(pass) => self.jsonata_plain(visit, fields, &input, next_of(&pass.flow)),
            State::Succeed(_) => self.jsonata_plain(visit, fields, &input, None),
            State::Choice(choice) => self.jsonata_choice(visit, choice, fields, &input),
            State::Wait(wait) => {
                let context = self.context(visit, 0);
                let seconds = wait_seconds(&scope(visit, &input, &context), fields, Utc::now())?;
                let transition = self.jsonata_plain(visit, fields, &input, next_of(&wait.flow))?;
                tokio::time::sleep(self.scaled(seconds)).await;
                Ok(transition)
            }
            State::Fail(_) => {
                let context = self.context(visit, 0);
                Err(failure(&scope(visit, &input, &context), fields))
            }
        }
    }

    /// A Pass, Succeed or Wait state: `Output` (default: the input) and `Assign`.
    fn jsonata_plain(
        &self,
        visit: Visit<'_>,
        fields: &JsonataState,
        input: &Value,
        next: Option<String>,
    ) -> Result<Transition, Failure> {
        let context = self.context(visit, 0);
        let (output, assigned) = output_and_assign(
            &scope(visit, input, &context),
            (fields.output.as_ref(), FieldPath::new("Output")),
            (fields.assign.as_ref(), FieldPath::new("Assign")),
            input,
        )?;
        Ok(Transition {
            next,
            output,
            assigned,
            observed_result: None,
        })
    }

    /// The first rule whose `Condition` holds picks `Next`, with its own `Assign` and `Output`
    /// (the state's `Output` when it has none); with no rule, `Default` takes the state's.
    fn jsonata_choice(
        &self,
        visit: Visit<'_>,
        choice: &ChoiceState,
        fields: &JsonataState,
        input: &Value,
    ) -> Result<Transition, Failure> {
        let context = self.context(visit, 0);
        let scope = scope(visit, input, &context);
        let state_output = (fields.output.as_ref(), FieldPath::new("Output"));
        let mut chosen = None;
        for (i, (rule, own)) in choice.choices.iter().zip(&fields.choices).enumerate() {
            let Some(condition) = &own.condition else {
                continue;
            };
            let field = FieldPath::new("Choices").index(i);
            if evaluate_condition(condition, &field.key("Condition"), &scope)? {
                let next = rule.get("Next").and_then(Value::as_str).unwrap_or_default();
                let output = match &own.output {
                    Some(output) => (Some(output), field.key("Output")),
                    None => state_output.clone(),
                };
                chosen = Some((
                    next.to_string(),
                    output,
                    (own.assign.as_ref(), field.key("Assign")),
                ));
                break;
            }
        }
        let (next, output, assign) = match (chosen, &choice.default) {
            (Some(chosen), _) => chosen,
            (None, Some(default)) => (
                default.clone(),
                state_output,
                (fields.assign.as_ref(), FieldPath::new("Assign")),
            ),
            (None, None) => {
                return Err(Failure::new(
                    errors::NO_CHOICE_MATCHED,
                    format!(
                        "No Choice matched and no Default is specified in the state '{}'",
                        visit.name
                    ),
                ))
            }
        };
        let (output, assigned) = output_and_assign(&scope, output, assign, input)?;
        Ok(Transition {
            next: Some(next),
            output,
            assigned,
            observed_result: None,
        })
    }

    /// The transition after a task-like state's attempts: `Output` and `Assign` with
    /// `$states.result`, or the Catcher's with `$states.errorOutput`.
    fn jsonata_outcome(
        &self,
        visit: Visit<'_>,
        (fields, catch): (&JsonataState, &[Catcher]),
        input: &Value,
        outcome: Outcome,
        next: Option<String>,
    ) -> Result<Transition, Failure> {
        let context = self.context(visit, 0);
        let scope = scope(visit, input, &context);
        match outcome {
            Outcome::Succeeded(result) => {
                let (output, assigned) = output_and_assign(
                    &scope.with_result(&result),
                    (fields.output.as_ref(), FieldPath::new("Output")),
                    (fields.assign.as_ref(), FieldPath::new("Assign")),
                    &result,
                )?;
                Ok(Transition {
                    next,
                    output,
                    assigned,
                    observed_result: None,
                })
            }
            Outcome::Caught(index, failure) => {
                let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                let own = fields
                    .catch
                    .get(index)
                    .cloned()
                    .unwrap_or_else(JsonataOutcome::default);
                let field = FieldPath::new("Catch").index(index);
                let (output, assigned) = output_and_assign(
                    &scope.with_error_output(&error_output),
                    (own.output.as_ref(), field.key("Output")),
                    (own.assign.as_ref(), field.key("Assign")),
                    &error_output,
                )?;
                Ok(Transition {
                    next: catch.get(index).map(|c| c.next.clone()),
                    output,
                    assigned,
                    observed_result: None,
                })
            }
        }
    }

    async fn jsonata_task(
        &self,
        visit: Visit<'_>,
        task: &TaskState,
        fields: &JsonataState,
        input: Value,
    ) -> Result<Transition, Failure> {
        let prepare = |_: &Value| Ok(input.clone());
        let work = move |retry_count, input: Value, context: Value| async move {
            let (parameters, timeout) = task_call(visit, fields, &input, &context)?;
            self.invoke_task(visit, &task.resource, parameters, retry_count, timeout)
                .await
        };
        let outcome = self
            .attempts(visit, &task.retry, &task.catch, prepare, work)
            .await?;
        // For the observer only, as in JSONPath (`TaskLike::keeping_result`).
        let kept = match &outcome {
            Outcome::Succeeded(result) if self.observed() => Some(result.clone()),
            _ => None,
        };
        let mut transition = self.jsonata_outcome(
            visit,
            (fields, &task.catch),
            &input,
            outcome,
            next_of(&task.flow),
        )?;
        transition.observed_result = kept;
        Ok(transition)
    }

    async fn jsonata_parallel(
        &self,
        visit: Visit<'_>,
        parallel: &ParallelState,
        fields: &JsonataState,
        input: Value,
    ) -> Result<Transition, Failure> {
        let prepare = |_: &Value| Ok(input.clone());
        let work = move |_, input: Value, context: Value| async move {
            let branch_input = arguments(visit, fields, &input, &context)?;
            self.run_branches(visit, parallel, branch_input).await
        };
        let outcome = self
            .attempts(visit, &parallel.retry, &parallel.catch, prepare, work)
            .await?;
        let catch = (fields, parallel.catch.as_slice());
        self.jsonata_outcome(visit, catch, &input, outcome, next_of(&parallel.flow))
    }

    async fn jsonata_map(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        fields: &JsonataState,
        input: Value,
    ) -> Result<Transition, Failure> {
        let prepare = |_: &Value| Ok(input.clone());
        let work = move |retry_count, input: Value, context: Value| {
            self.jsonata_iterations(visit, map, fields, retry_count, input, context)
        };
        let outcome = self
            .attempts(visit, &map.retry, &map.catch, prepare, work)
            .await?;
        let catch = (fields, map.catch.as_slice());
        self.jsonata_outcome(visit, catch, &input, outcome, next_of(&map.flow))
    }

    /// One attempt of an inline Map: the item processor over every item, at most
    /// `MaxConcurrency` at a time, the results in item order. `ItemSelector` sees the Map's
    /// input and `$states.context.Map.Item`.
    async fn jsonata_iterations(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        fields: &JsonataState,
        retry_count: u32,
        input: Value,
        context: Value,
    ) -> Result<Value, Failure> {
        let (items, limit) = map_items(visit, fields, &input, &context)?;
        let item_input = |item_visit: Visit<'_>, value: Value| match &fields.item_selector {
            Some(selector) => {
                let context = self.context(item_visit, retry_count);
                evaluate_template(
                    selector,
                    &FieldPath::new("ItemSelector"),
                    &scope(item_visit, &input, &context),
                )
                .map_err(Failure::from)
            }
            None => Ok(value),
        };
        self.run_iterations(visit, map, items, limit, item_input)
            .await
    }
}
