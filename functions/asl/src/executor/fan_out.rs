//! What Map and Parallel states do alike in JSONPath and JSONata: run their branches or
//! iterations in a child scope of variables, and book the service's history events around
//! them. Only how each iteration's input is built differs by query language.

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::{MapItem, Runner, Visit};
use crate::model::{MapState, ParallelState};
use crate::redrive;
use crate::{Event, Failure};

impl Runner {
    /// One attempt of a Parallel state: every branch on `input` at once, the results in
    /// branch order; the first failure fails them all.
    pub(super) async fn run_branches(
        &self,
        visit: Visit<'_>,
        parallel: &ParallelState,
        input: Value,
    ) -> Result<Value, Failure> {
        self.service_history.record(&["ParallelStateStarted"])?;
        // One scope for all branches: each gets a cheap handle on the same outer variables.
        let scope = visit.vars.inner();
        let branches = parallel.branches.iter().enumerate().map(|(index, branch)| {
            let input = input.clone();
            let vars = scope.clone();
            let keys = redrive::branch_scope(visit.key, index);
            async move { self.run_machine(branch, input, None, vars, &keys).await }
        });
        let result = futures::future::try_join_all(branches)
            .await
            .map(Value::Array);
        self.service_history.record(&[if result.is_ok() {
            "ParallelStateSucceeded"
        } else {
            "ParallelStateFailed"
        }])?;
        result
    }

    /// One attempt of an inline Map: the item processor over every item, at most `limit`
    /// at a time, the results in item order. `item_input` builds an iteration's input from
    /// the item's visit (whose `item` is `$$.Map.Item`) and the item itself.
    pub(super) async fn run_iterations<F>(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        items: Vec<Value>,
        limit: usize,
        item_input: F,
    ) -> Result<Value, Failure>
    where
        F: Fn(Visit<'_>, Value) -> Result<Value, Failure>,
    {
        tracing::info!(state = %visit.name, items = items.len(), max_concurrency = limit, "map fan-out");
        self.service_history.record(&["MapStateStarted"])?;
        self.record(Event::MapStateStarted {
            state: visit.name.to_string(),
            length: items.len(),
        });
        // One scope for all iterations, as for Parallel branches.
        let scope = visit.vars.inner();
        let iterations = items.into_iter().enumerate().map(|(index, value)| {
            let item: MapItem = Some((index, value.clone()));
            let input = item_input(
                Visit {
                    item: &item,
                    ..visit
                },
                value,
            );
            let vars = scope.clone();
            let keys = redrive::iteration_scope(visit.key, index);
            let name = visit.name;
            async move {
                // The service history's events are counted as before; the recorded ones
                // mirror them, one start and one end per iteration.
                self.service_history.record(&["MapIterationStarted"])?;
                self.record(Event::MapIterationStarted {
                    state: name.to_string(),
                    index,
                });
                let input = match input {
                    Ok(input) => input,
                    Err(failure) => {
                        self.record(Event::MapIterationFailed {
                            state: name.to_string(),
                            index,
                        });
                        return Err(failure);
                    }
                };
                let result = self
                    .run_machine(&map.item_processor, input, item, vars, &keys)
                    .await;
                self.service_history.record(&[if result.is_ok() {
                    "MapIterationSucceeded"
                } else {
                    "MapIterationFailed"
                }])?;
                self.record(if result.is_ok() {
                    Event::MapIterationSucceeded {
                        state: name.to_string(),
                        index,
                    }
                } else {
                    Event::MapIterationFailed {
                        state: name.to_string(),
                        index,
                    }
                });
                result
            }
        });
        let result = futures::stream::iter(iterations)
            .buffered(limit)
            .try_collect::<Vec<_>>()
            .await
            .map(Value::Array);
        self.service_history.record(&[if result.is_ok() {
            "MapStateSucceeded"
        } else {
            "MapStateFailed"
        }])?;
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::future::BoxFuture;
    use futures::FutureExt;
    use serde_json::{json, Value};

    use crate::{execute, Event, Failure, Machine, Observer, RunOptions, TaskInvoker, TaskRequest};

    /// Answers `{"rows": <the item>}` as a Lambda invoke does (under `Payload`), and fails
    /// the item `"bad"`.
    struct Rows;

    impl TaskInvoker for Rows {
        fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
            let answer = match request.parameters.get("item") {
                Some(Value::String(bad)) => Err(Failure::new("Bad", bad.clone())),
                item => Ok(json!({"Payload": {"rows": item}, "StatusCode": 200})),
            };
            futures::future::ready(answer).boxed()
        }
    }

    /// Every event the observer saw, with the result it was given.
    type Seen = Arc<Mutex<Vec<(Event, Option<Value>)>>>;

    async fn run_observed(definition: Value, input: Value) -> (crate::Execution, Seen) {
        let machine = Machine::from_json(&definition.to_string()).unwrap();
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let mut options = RunOptions::new("sm", "exec");
        options.time_scale = 0.0;
        options.observer = Some(Observer::new(move |observed| {
            sink.lock()
                .unwrap()
                .push((observed.event.clone(), observed.result.cloned()));
        }));
        let exec = execute(&machine, input, Arc::new(Rows), options).await;
        (exec, seen)
    }

    fn map_of_tasks() -> Value {
        json!({
            "StartAt": "Each",
            "States": {"Each": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "ItemProcessor": {"StartAt": "Load", "States": {"Load": {
                    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "ResultSelector": {"n.$": "$.Payload.rows"}, "End": true
                }}},
                "End": true
            }}
        })
    }

    /// The iteration events of `index`, in the order they were recorded.
    fn iteration_events(history: &[Event], index: usize) -> Vec<&'static str> {
        history
            .iter()
            .filter_map(|e| match e {
                Event::MapIterationStarted { index: i, state }
                    if *i == index && state == "Each" =>
                {
                    Some("started")
                }
                Event::MapIterationSucceeded { index: i, .. } if *i == index => Some("succeeded"),
                Event::MapIterationFailed { index: i, .. } if *i == index => Some("failed"),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn an_inline_map_records_its_length_and_each_iteration_start_and_end() {
        let (exec, _) = run_observed(map_of_tasks(), json!({"items": [10, 20, 30]})).await;
        assert_eq!(
            exec.output.unwrap(),
            json!([{"n": 10}, {"n": 20}, {"n": 30}])
        );
        let started = exec
            .history
            .iter()
            .position(|e| {
                *e == Event::MapStateStarted {
                    state: "Each".into(),
                    length: 3,
                }
            })
            .expect("MapStateStarted with the item count");
        let entered = exec
            .history
            .iter()
            .position(|e| matches!(e, Event::StateEntered { state, .. } if state == "Each"));
        assert_eq!(entered, Some(started - 1), "right after the Map's entry");
        for index in 0..3 {
            assert_eq!(
                iteration_events(&exec.history, index),
                ["started", "succeeded"],
                "iteration {index}"
            );
        }
        // The service's count is what it was: one start and one end per iteration.
        let counted = |name: &str| exec.service_events.get(name).copied();
        assert_eq!(counted("MapStateStarted"), Some(1));
        assert_eq!(counted("MapIterationStarted"), Some(3));
        assert_eq!(counted("MapIterationSucceeded"), Some(3));
        // Each iteration's Task comes between its start and its end.
        let first_start = exec
            .history
            .iter()
            .position(|e| matches!(e, Event::MapIterationStarted { index: 0, .. }));
        let first_task = exec
            .history
            .iter()
            .position(|e| matches!(e, Event::StateEntered { state, .. } if state == "Load"));
        assert!(first_start < first_task, "{:?}", exec.history);
    }

    #[tokio::test]
    async fn a_failed_iteration_is_recorded_as_failed() {
        let (exec, _) = run_observed(map_of_tasks(), json!({"items": [1, "bad"]})).await;
        assert_eq!(exec.output.unwrap_err().error, "Bad");
        assert_eq!(iteration_events(&exec.history, 1), ["started", "failed"]);
        assert_eq!(exec.service_events.get("MapIterationFailed"), Some(&1));
    }

    #[tokio::test]
    async fn the_observer_gets_each_task_result_on_its_exit_and_nothing_else() {
        let (exec, seen) = run_observed(map_of_tasks(), json!({"items": [7, 8]})).await;
        let seen = seen.lock().unwrap().clone();
        let events: Vec<Event> = seen.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(
            events, exec.history,
            "the observer sees the history, in order"
        );
        let mut results: Vec<Value> = seen
            .iter()
            .filter_map(|(event, result)| match event {
                Event::StateExited { state } if state == "Load" => result.clone(),
                _ => {
                    assert!(result.is_none(), "{event:?} came with {result:?}");
                    None
                }
            })
            .collect();
        results.sort_by_key(|r| r["Payload"]["rows"].as_u64());
        // The resource's own result, before the ResultSelector shaped it.
        assert_eq!(
            results,
            [
                json!({"Payload": {"rows": 7}, "StatusCode": 200}),
                json!({"Payload": {"rows": 8}, "StatusCode": 200})
            ]
        );
        // The Map's exit carries no result (it would be every item's output).
        assert!(seen.iter().any(
            |(e, r)| matches!(e, Event::StateExited { state } if state == "Each") && r.is_none()
        ));
    }

    #[tokio::test]
    async fn a_jsonata_task_gives_the_observer_its_result_too() {
        let definition = json!({
            "QueryLanguage": "JSONata",
            "StartAt": "Load",
            "States": {"Load": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"item": 5}, "Output": "{% $states.result.Payload.rows %}",
                "End": true
            }}
        });
        let (exec, seen) = run_observed(definition, json!({})).await;
        assert_eq!(exec.output.unwrap(), json!(5));
        let seen = seen.lock().unwrap();
        let exited = seen
            .iter()
            .find(|(e, _)| matches!(e, Event::StateExited { .. }))
            .expect("the Task exited");
        assert_eq!(
            exited.1,
            Some(json!({"Payload": {"rows": 5}, "StatusCode": 200}))
        );
    }
}
