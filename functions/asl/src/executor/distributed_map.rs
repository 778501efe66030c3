//! One attempt of a distributed Map state (`ProcessorConfig.Mode: DISTRIBUTED`): a Map Run.
//! The items come from the `ItemReader` (or `ItemsPath`), in the order "Map state input and
//! output fields" gives: `ItemReader` → `ItemsPath` → `ItemSelector` → `ItemBatcher` →
//! `ResultWriter`. Each item or batch runs as a child workflow execution
//! ([`super::child_execution`]); the tolerated failure threshold decides whether the run
//! fails.
//!
//! Sources:
//! - <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-fields-dist-map.html>
//! - "Tolerated failure threshold for Distributed Map state",
//!   <https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html>: the
//!   failed share is failed (or timed-out) items over all items; with neither threshold set
//!   no failure is tolerated; with both, exceeding either fails the run, with
//!   `States.ExceedToleratedFailureThreshold`. The docs do not quote its Cause; the one used
//!   is what the service reports (as reproduced by LocalStack's TestState support).

use serde_json::Value;

use super::{runtime, wait, MapItem, Runner, Visit};
use crate::errors::{EXCEED_TOLERATED_FAILURE_THRESHOLD, RESULT_WRITER_FAILED};
use crate::item_batcher::{self, Batch};
use crate::item_store::ItemStore;
use crate::limits::{self, check_payload, Payload};
use crate::map_run::MapRun;
use crate::model::distributed::{ItemBatcher, ResultWriter};
use crate::model::MapState;
use crate::result_writer::{self, Destination};
use crate::template::{expand, read, Roots};
use crate::{item_reader, Event, Failure};

const EXCEEDED_CAUSE: &str = "The specified tolerated failure threshold was exceeded";

/// `ToleratedFailureCount` and `ToleratedFailurePercentage`, resolved.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tolerance {
    count: Option<u64>,
    percentage: Option<f64>,
}

impl Tolerance {
    /// Whether `failed` of `total` items is past the threshold.
    pub(super) fn exceeded(self, failed: usize, total: usize) -> bool {
        if failed == 0 {
            return false;
        }
        if self.count.is_none() && self.percentage.is_none() {
            return true;
        }
        self.count.is_some_and(|count| failed as u64 > count)
            || self
                .percentage
                .is_some_and(|p| failed as f64 * 100.0 / total.max(1) as f64 > p)
    }
}

/// A whole number at `path` in the effective input, for a `…Path` field.
fn whole_at(path: &str, field: &str, effective: &Value, roots: Roots<'_>) -> Result<u64, Failure> {
    let value = runtime(read(path, effective, roots))?;
    wait::whole_number(&value).ok_or_else(|| {
        Failure::runtime(format!(
            "The {field}Path field refers to value {value} which is not a valid non-negative integer"
        ))
    })
}

/// A field given as a value or as a path.
fn resolved(
    value: Option<u64>,
    path: Option<&str>,
    field: &str,
    effective: &Value,
    roots: Roots<'_>,
) -> Result<Option<u64>, Failure> {
    match path {
        Some(path) => whole_at(path, field, effective, roots).map(Some),
        None => Ok(value),
    }
}

fn tolerance(map: &MapState, effective: &Value, roots: Roots<'_>) -> Result<Tolerance, Failure> {
    let fields = &map.distributed;
    let count = resolved(
        fields.tolerated_failure_count,
        fields.tolerated_failure_count_path.as_deref(),
        "ToleratedFailureCount",
        effective,
        roots,
    )?;
    let percentage = match &fields.tolerated_failure_percentage_path {
        None => fields.tolerated_failure_percentage,
        Some(path) => {
            let value = runtime(read(path, effective, roots))?;
            let p = value.as_f64().filter(|p| (0.0..=100.0).contains(p));
            Some(p.ok_or_else(|| {
                Failure::runtime(format!(
                    "The ToleratedFailurePercentagePath field refers to value {value} which is not a number between 0 and 100"
                ))
            })?)
        }
    };
    Ok(Tolerance { count, percentage })
}

/// A batch limit as AWS takes it: at least 1 (a 0 is not "no limit").
fn positive(limit: Option<u64>, field: &str) -> Result<Option<u64>, Failure> {
    match limit {
        Some(0) => Err(Failure::runtime(format!(
            "The {field} field must be a positive integer, but it is 0"
        ))),
        limit => Ok(limit),
    }
}

/// The batches of an `ItemBatcher`, or one child input per item.
fn child_inputs(
    batcher: Option<&ItemBatcher>,
    items: Vec<Value>,
    effective: &Value,
    roots: Roots<'_>,
) -> Result<Vec<Batch>, Failure> {
    let Some(batcher) = batcher else {
        return Ok(items
            .into_iter()
            .map(|input| Batch { input, items: 1 })
            .collect());
    };
    let max_items = positive(
        resolved(
            batcher.max_items_per_batch,
            batcher.max_items_per_batch_path.as_deref(),
            "MaxItemsPerBatch",
            effective,
            roots,
        )?,
        "MaxItemsPerBatch",
    )?;
    let max_bytes = positive(
        resolved(
            batcher.max_input_bytes_per_batch,
            batcher.max_input_bytes_per_batch_path.as_deref(),
            "MaxInputBytesPerBatch",
            effective,
            roots,
        )?,
        "MaxInputBytesPerBatch",
    )?
    .map(|n| n.min(limits::PAYLOAD_LIMIT_BYTES as u64));
    let batch_input = match &batcher.batch_input {
        Some(template) => Some(runtime(expand(template, effective, roots))?),
        None => None,
    };
    item_batcher::batches(items, max_items, max_bytes, batch_input.as_ref())
}

/// The `ResultWriter`'s bucket and prefix, when it exports.
fn destination(
    writer: Option<&ResultWriter>,
    effective: &Value,
    roots: Roots<'_>,
) -> Result<Option<Destination>, Failure> {
    let Some(writer) = writer else {
        return Ok(None);
    };
    let Some(template) = writer
        .parameters
        .as_ref()
        .filter(|_| writer.resource.is_some())
    else {
        return Ok(None);
    };
    let parameters = runtime(expand(template, effective, roots))?;
    let text = |name: &str| parameters.get(name).and_then(Value::as_str);
    let bucket = text("Bucket").ok_or_else(|| {
        Failure::new(
            RESULT_WRITER_FAILED,
            "the ResultWriter's Parameters must give the Bucket as a string",
        )
    })?;
    Ok(Some(Destination {
        bucket: bucket.to_string(),
        prefix: text("Prefix").unwrap_or_default().to_string(),
        config: writer.writer_config,
    }))
}

impl Runner {
    /// The store, when this Map needs one: a run without one fails saying what is missing.
    fn item_store(&self, name: &str, map: &MapState) -> Result<Option<&dyn ItemStore>, Failure> {
        let fields = &map.distributed;
        let needs = fields
            .item_reader
            .as_ref()
            .map(|r| r.resource.as_str())
            .or_else(|| {
                fields
                    .result_writer
                    .as_ref()
                    .and_then(|w| w.resource.as_deref())
            });
        match (needs, &self.options.item_store) {
            (_, Some(store)) => Ok(Some(store.as_ref())),
            (None, None) => Ok(None),
            (Some(resource), None) => Err(Failure::runtime(format!(
                "The distributed Map state '{name}' calls {resource}, but this run has no item \
                 store to reach S3 with (RunOptions::item_store is not set)"
            ))),
        }
    }

    /// The items: read by the `ItemReader` (then cut to `MaxItems`), or at `ItemsPath`.
    async fn dataset(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        store: Option<&dyn ItemStore>,
        effective: &Value,
        roots: Roots<'_>,
    ) -> Result<Vec<Value>, Failure> {
        let Some(reader) = &map.distributed.item_reader else {
            let items = match &map.items_path {
                Some(p) => runtime(read(p, effective, roots))?,
                None => effective.clone(),
            };
            return match items {
                Value::Array(items) => Ok(items),
                _ => Err(Failure::runtime(format!(
                    "Map state {:?}: ItemsPath must select an array",
                    visit.name
                ))),
            };
        };
        let parameters = match &reader.parameters {
            Some(template) => runtime(expand(template, effective, roots))?,
            None => Value::Null,
        };
        let store = store.ok_or_else(|| Failure::runtime("no item store"))?;
        let config = &reader.reader_config;
        let max = resolved(
            config.max_items,
            config.max_items_path.as_deref(),
            "MaxItems",
            effective,
            roots,
        )?
        .filter(|&m| m > 0)
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        let mut items = item_reader::read(store, reader, &parameters, max).await?;
        if let Some(max) = max {
            items.truncate(max);
        }
        Ok(items)
    }

    /// `ItemSelector` over every item, with `$$.Map.Item` set to it.
    fn select_items(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        retry_count: u32,
        items: Vec<Value>,
        effective: &Value,
    ) -> Result<Vec<Value>, Failure> {
        let Some(selector) = &map.item_selector else {
            return Ok(items);
        };
        items
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                let item: MapItem = Some((index, value));
                let context = self.context(
                    Visit {
                        item: &item,
                        ..visit
                    },
                    retry_count,
                );
                runtime(expand(selector, effective, visit.roots(&context)))
            })
            .collect()
    }

    /// One attempt of a distributed Map: reads, selects and batches the items, runs the
    /// children, and returns the results array or the `ResultWriter`'s summary.
    pub(super) async fn map_run(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        retry_count: u32,
        effective: Value,
        context: Value,
    ) -> Result<Value, Failure> {
        let roots = visit.roots(&context);
        let store = self.item_store(visit.name, map)?;
        let items = self.dataset(visit, map, store, &effective, roots).await?;
        let total = items.len();
        let items = self.select_items(visit, map, retry_count, items, &effective)?;
        let batches = child_inputs(
            map.distributed.item_batcher.as_ref(),
            items,
            &effective,
            roots,
        )?;
        let tolerance = tolerance(map, &effective, roots)?;
        let destination = destination(map.distributed.result_writer.as_ref(), &effective, roots)?;
        let concurrency = match wait::max_concurrency(map, &effective, roots)? {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => limits::DISTRIBUTED_MAP_MAX_CONCURRENCY,
        };
        let label = map.distributed.label.as_deref().unwrap_or(visit.name);
        let arn = format!(
            "arn:aws:states:local:000000000000:mapRun:{}/{label}:{}",
            self.options.state_machine_name,
            super::child_execution::uuid()
        );
        tracing::info!(state = %visit.name, items = total, children = batches.len(), concurrency, map_run = %arn, "map run");
        self.service_history
            .record(&["MapStateStarted", "MapRunStarted"])?;
        // The items read, before batching: what the Map goes over.
        self.record(Event::MapStateStarted {
            state: visit.name.to_string(),
            length: total,
        });
        self.record(Event::MapRunStarted {
            state: visit.name.to_string(),
            map_run_arn: arn.clone(),
        });
        let children = self
            .run_children(
                map,
                (visit.name, label, visit.key),
                batches,
                concurrency,
                (tolerance, total),
            )
            .await;
        let run = MapRun {
            arn,
            state: visit.name.to_string(),
            label: label.to_string(),
            children,
        };
        let writer = map.distributed.result_writer.as_ref();
        let result = self
            .finish_map_run(&run, tolerance, total, store, writer, destination)
            .await;
        self.end_map_run(visit.name, run, &result)?;
        let output = result?;
        check_payload(&output, visit.name, Payload::TaskResult)?;
        Ok(output)
    }

    /// The Map's result, once the children are done: written out when the `ResultWriter`
    /// exports (even when the run fails, so that the failures can be read), and the failure
    /// when the threshold was exceeded.
    async fn finish_map_run(
        &self,
        run: &MapRun,
        tolerance: Tolerance,
        total: usize,
        store: Option<&dyn ItemStore>,
        writer: Option<&ResultWriter>,
        destination: Option<Destination>,
    ) -> Result<Value, Failure> {
        let failed = run
            .children
            .iter()
            .filter(|c| matches!(c.status, crate::map_run::ChildStatus::Failed(_)))
            .map(|c| c.items)
            .sum();
        let output = match (destination, store) {
            (Some(destination), Some(store)) => {
                result_writer::write(store, &destination, run).await?
            }
            _ => result_writer::state_result(&run.children, writer.and_then(|w| w.writer_config)),
        };
        if tolerance.exceeded(failed, total) {
            return Err(Failure::new(
                EXCEED_TOLERATED_FAILURE_THRESHOLD,
                EXCEEDED_CAUSE,
            ));
        }
        Ok(output)
    }

    /// Records how the Map Run ended, in both histories, and keeps it for the report.
    fn end_map_run(
        &self,
        state: &str,
        run: MapRun,
        result: &Result<Value, Failure>,
    ) -> Result<(), Failure> {
        match result {
            Ok(_) => self.record(Event::MapRunSucceeded {
                state: state.to_string(),
            }),
            Err(failure) => self.record(Event::MapRunFailed {
                state: state.to_string(),
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            }),
        }
        self.map_runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(run);
        self.service_history.record(&if result.is_ok() {
            ["MapRunSucceeded", "MapStateSucceeded"]
        } else {
            ["MapRunFailed", "MapStateFailed"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use futures::future::BoxFuture;
    use futures::FutureExt;
    use serde_json::json;

    use crate::item_store::InMemoryItemStore;
    use crate::map_run::ChildStatus;
    use crate::{execute, Execution, Machine, RunOptions, TaskInvoker, TaskRequest};

    #[test]
    fn a_batch_limit_of_zero_is_refused_not_unlimited() {
        let failure = positive(Some(0), "MaxItemsPerBatch").unwrap_err();
        assert_eq!(failure.error, "States.Runtime");
        assert!(failure.cause.contains("MaxItemsPerBatch"), "{failure:?}");
        assert_eq!(positive(Some(3), "MaxItemsPerBatch"), Ok(Some(3)));
        assert_eq!(positive(None, "MaxItemsPerBatch"), Ok(None));
    }

    struct Echo;

    impl TaskInvoker for Echo {
        fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
            futures::future::ready(Ok(request.parameters)).boxed()
        }
    }

    async fn run(
        definition: Value,
        input: Value,
        store: Option<Arc<InMemoryItemStore>>,
    ) -> Execution {
        let machine = Machine::from_json(&definition.to_string()).unwrap();
        let mut options = RunOptions::new("sm", "parent");
        options.time_scale = 0.0;
        options.item_store = store.map(|s| s as Arc<dyn ItemStore>);
        execute(&machine, input, Arc::new(Echo), options).await
    }

    fn csv_map(result_writer: Option<Value>) -> Value {
        let mut map = json!({
            "Type": "Map", "End": true, "Label": "Rows",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket": "data", "Key": "rows.csv"}
            },
            "ItemBatcher": {"MaxItemsPerBatch": 2},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "T",
                "States": {"T": {"Type": "Task", "Resource": "echo", "End": true,
                                 "Parameters": {"rows.$": "$.Items", "me.$": "$$.Execution.Name"}}}
            }
        });
        if let Some(writer) = result_writer {
            map["ResultWriter"] = writer;
        }
        json!({"StartAt": "M", "States": {"M": map}})
    }

    #[tokio::test]
    async fn children_run_as_executions_of_their_own() {
        let store = Arc::new(InMemoryItemStore::new());
        store.insert("data", "rows.csv", "id\n1\n2\n3\n");
        let exec = run(csv_map(None), json!({}), Some(store)).await;
        let output = exec.output.unwrap();
        assert_eq!(output[0]["rows"], json!([{"id": "1"}, {"id": "2"}]));
        assert_eq!(output[1]["rows"], json!([{"id": "3"}]));

        let [run] = exec.map_runs.as_slice() else {
            panic!("one map run: {:?}", exec.map_runs);
        };
        assert!(run
            .arn
            .starts_with("arn:aws:states:local:000000000000:mapRun:sm/Rows:"));
        assert_eq!(run.children.len(), 2);
        for (child, out) in run.children.iter().zip(output.as_array().unwrap()) {
            assert_eq!(
                out["me"],
                child.name.as_str(),
                "$$.Execution is the child's"
            );
            assert!(child
                .arn
                .ends_with(&format!("execution:sm/Rows:{}", child.name)));
            assert!(matches!(child.status, ChildStatus::Succeeded(_)));
            assert_eq!(child.history.last(), Some(&Event::ExecutionSucceeded));
            assert_eq!(child.service_events.get("TaskScheduled"), Some(&1));
        }
        assert_eq!(run.children[0].items, 2);
        // The children's events are theirs: the parent only records the Map Run.
        assert_eq!(exec.service_events.get("TaskScheduled"), None);
        assert_eq!(exec.service_events.get("MapRunStarted"), Some(&1));
        assert!(exec
            .history
            .iter()
            .any(|e| matches!(e, Event::MapRunSucceeded { state } if state == "M")));
    }

    #[tokio::test]
    async fn the_observer_sees_the_parent_history_and_each_child_end_as_they_happen() {
        let store = Arc::new(InMemoryItemStore::new());
        store.insert("data", "rows.csv", "id\n1\n2\n3\n");
        let seen: Arc<std::sync::Mutex<Vec<(String, bool, Event)>>> = Arc::default();
        let mut options = RunOptions::new("sm", "parent");
        options.time_scale = 0.0;
        options.item_store = Some(store as Arc<dyn ItemStore>);
        let sink = Arc::clone(&seen);
        options.observer = Some(crate::Observer::new(move |observed| {
            if let Ok(mut seen) = sink.lock() {
                seen.push((
                    observed.state_machine.to_string(),
                    observed.child,
                    observed.event.clone(),
                ));
            }
        }));
        let machine = Machine::from_json(&csv_map(None).to_string()).unwrap();
        let exec = execute(&machine, json!({}), Arc::new(Echo), options).await;
        let seen = seen.lock().unwrap().clone();

        let parent: Vec<Event> = seen
            .iter()
            .filter(|(_, child, _)| !child)
            .map(|(_, _, event)| event.clone())
            .collect();
        assert_eq!(parent, exec.history, "the parent's events, in order");
        let children_done = seen
            .iter()
            .filter(|(machine, child, event)| {
                *child && machine == "sm/Rows" && *event == Event::ExecutionSucceeded
            })
            .count();
        assert_eq!(children_done, 2, "one end per child (2 batches): {seen:?}");
    }

    #[tokio::test]
    async fn the_result_writer_replaces_the_output_with_where_it_wrote() {
        let store = Arc::new(InMemoryItemStore::new());
        store.insert("data", "rows.csv", "id\n1\n");
        store.create_bucket("out");
        let writer = json!({"Resource": "arn:aws:states:::s3:putObject",
                            "Parameters": {"Bucket": "out", "Prefix": "runs"}});
        let exec = run(csv_map(Some(writer)), json!({}), Some(Arc::clone(&store))).await;
        let output = exec.output.unwrap();
        let id = exec.map_runs[0].id().to_string();
        assert_eq!(output["MapRunArn"], exec.map_runs[0].arn.as_str());
        assert_eq!(
            output["ResultWriterDetails"],
            json!({"Bucket": "out", "Key": format!("runs/{id}/manifest.json")})
        );
        assert_eq!(
            store.keys("out"),
            [
                format!("runs/{id}/SUCCEEDED_0.json"),
                format!("runs/{id}/manifest.json")
            ]
        );
    }

    #[tokio::test]
    async fn without_a_store_the_run_says_what_is_missing() {
        let exec = run(csv_map(None), json!({}), None).await;
        let failure = exec.output.unwrap_err();
        assert_eq!(failure.error, crate::errors::RUNTIME);
        assert!(
            failure.cause.contains("RunOptions::item_store"),
            "{}",
            failure.cause
        );
        assert!(failure.cause.contains("s3:getObject"), "{}", failure.cause);
    }

    #[tokio::test]
    async fn children_do_not_spend_the_parent_history_quota() {
        // 2,000 children of 15 events each: 30,000 events, more than one history holds.
        let definition = json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "End": true, "ItemsPath": "$.items", "ToleratedFailurePercentage": 0,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P0",
                "States": {
                    "P0": {"Type": "Pass", "Next": "P1"}, "P1": {"Type": "Pass", "Next": "P2"},
                    "P2": {"Type": "Pass", "Next": "P3"}, "P3": {"Type": "Pass", "Next": "P4"},
                    "P4": {"Type": "Pass", "Next": "P5"}, "P5": {"Type": "Pass", "Next": "P6"},
                    "P6": {"Type": "Pass", "End": true}
                }
            }
        }}});
        let items: Vec<Value> = (0..2000).map(|n| json!(n)).collect();
        let exec = run(definition, json!({"items": items}), None).await;
        assert_eq!(exec.output.unwrap().as_array().map(Vec::len), Some(2000));
        let parent: u64 = exec.service_events.values().sum();
        let children: u64 = exec.map_runs[0]
            .children
            .iter()
            .flat_map(|c| c.service_events.values())
            .sum();
        assert!(parent < 10, "{parent}");
        assert!(children > crate::limits::HISTORY_LIMIT_EVENTS, "{children}");
    }

    #[test]
    fn thresholds_are_exceeded_strictly_and_either_one_fails_the_run() {
        let none = Tolerance::default();
        assert!(!none.exceeded(0, 10));
        assert!(none.exceeded(1, 10), "no threshold tolerates nothing");
        let count = Tolerance {
            count: Some(2),
            percentage: None,
        };
        assert!(!count.exceeded(2, 10));
        assert!(count.exceeded(3, 10));
        let percentage = Tolerance {
            count: None,
            percentage: Some(20.0),
        };
        assert!(
            !percentage.exceeded(2, 10),
            "20% is at, not over, the threshold"
        );
        assert!(percentage.exceeded(3, 10));
        let both = Tolerance {
            count: Some(5),
            percentage: Some(20.0),
        };
        assert!(both.exceeded(3, 10), "over the percentage, under the count");
        let all = Tolerance {
            count: None,
            percentage: Some(100.0),
        };
        assert!(!all.exceeded(10, 10));
    }
}
