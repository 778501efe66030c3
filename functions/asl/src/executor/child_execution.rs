//! The child workflow executions of a Map Run. Each runs the item processor as an execution
//! of its own: its own name and ARN (`…:execution:<state machine>/<label>:<uuid>`, under the
//! state machine `<state machine>/<label>`), its own context object (`$$.Execution` is the
//! child's; `$$.Map` is not set, the item having been handed over by `ItemSelector`), no
//! variables from the parent, and its own history and 25,000-event quota, which is what
//! lets a distributed Map run more iterations than one history holds.
//!
//! Source: "Using Map state in Distributed mode" ("Each child workflow execution has its
//! own, separate execution history from that of the parent workflow"),
//! <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use rand::RngExt;
use serde_json::{json, Value};

use super::distributed_map::Tolerance;
use super::{RunOptions, Runner};
use crate::item_batcher::Batch;
use crate::limits::{check_payload, History, Payload};
use crate::map_run::{ChildExecution, ChildStatus};
use crate::model::distributed::ExecutionType;
use crate::model::MapState;
use crate::variables::Variables;
use crate::Event;

const ACCOUNT: &str = "arn:aws:states:local:000000000000";

/// A version 4 UUID: the names of Map Runs and child executions.
pub(super) fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// How far the run has got towards its failure threshold: once past it, children not yet
/// started stay `PENDING` ("Step Functions may continue to run child workflows … after the
/// threshold is exceeded": those already running finish).
struct Progress {
    tolerance: Tolerance,
    total_items: usize,
    failed_items: AtomicUsize,
    stopped: AtomicBool,
}

impl Runner {
    /// Runs every child, at most `concurrency` at a time, and returns them in item order.
    pub(super) async fn run_children(
        &self,
        map: &MapState,
        (state, label, key): (&str, &str, &str),
        batches: Vec<Batch>,
        concurrency: usize,
        (tolerance, total_items): (Tolerance, usize),
    ) -> Vec<ChildExecution> {
        let progress = Progress {
            tolerance,
            total_items,
            failed_items: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        };
        let progress = &progress;
        futures::stream::iter(batches.into_iter().enumerate())
            .map(|(index, batch)| async move {
                if progress.stopped.load(Ordering::SeqCst) {
                    return pending(batch);
                }
                // A child's states are keyed under the Map state's entry and the child's
                // place among the batches, so a redrive replays the children that succeeded.
                let keys = crate::redrive::iteration_scope(key, index);
                let child = self.run_child(map, (state, label), batch, &keys).await;
                if matches!(child.status, ChildStatus::Failed(_)) {
                    let failed = progress
                        .failed_items
                        .fetch_add(child.items, Ordering::SeqCst)
                        + child.items;
                    if progress.tolerance.exceeded(failed, progress.total_items) {
                        progress.stopped.store(true, Ordering::SeqCst);
                    }
                }
                child
            })
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    /// A runner for a new execution of the item processor, sharing the invoker, the store
    /// and where Map Runs are reported.
    fn child_runner(&self, options: RunOptions, arn: &str, input: &Value) -> Runner {
        let started = options.start_time.unwrap_or_else(Utc::now);
        Runner {
            invoker: Arc::clone(&self.invoker),
            history: Mutex::new(Vec::new()),
            event_times: Mutex::default(),
            service_history: History::default(),
            execution: json!({
                "Id": arn,
                "Name": options.execution_name,
                "Input": input,
                "RoleArn": options.role_arn,
                "StartTime": started.to_rfc3339_opts(SecondsFormat::Millis, true),
                "RedriveCount": 0,
            }),
            state_machine: json!({
                "Id": format!("{ACCOUNT}:stateMachine:{}", options.state_machine_name),
                "Name": options.state_machine_name,
            }),
            map_runs: Arc::clone(&self.map_runs),
            recorder: Arc::clone(&self.recorder),
            options,
        }
    }

    /// Runs one child execution to its end.
    /// `state` is the Map state's name, which a Cause about the child's input names.
    async fn run_child(
        &self,
        map: &MapState,
        (state, label): (&str, &str),
        batch: Batch,
        keys: &str,
    ) -> ChildExecution {
        let name = uuid();
        let state_machine_name = format!("{}/{label}", self.options.state_machine_name);
        let arn = format!("{ACCOUNT}:execution:{state_machine_name}:{name}");
        let start = Utc::now();
        let options = RunOptions {
            execution_name: name.clone(),
            state_machine_name: state_machine_name.clone(),
            start_time: Some(start),
            ..self.options.clone()
        };
        let child = self.child_runner(options, &arn, &batch.input);
        let run = async {
            check_payload(&batch.input, state, Payload::ExecutionInput)?;
            child.service_history.record(&["ExecutionStarted"])?;
            child
                .run_machine(
                    &map.item_processor,
                    batch.input.clone(),
                    None,
                    Variables::default(),
                    keys,
                )
                .await
        };
        let output = run.await;
        child.service_history.finish(output.is_ok());
        child.record(match &output {
            Ok(_) => Event::ExecutionSucceeded,
            Err(f) => Event::ExecutionFailed {
                error: f.error.clone(),
                cause: f.cause.clone(),
            },
        });
        let execution_type = match map.processor_config().execution_type {
            Some(ExecutionType::Express) => "EXPRESS",
            _ => "STANDARD",
        };
        ChildExecution {
            arn,
            name,
            state_machine_arn: format!("{ACCOUNT}:stateMachine:{state_machine_name}"),
            execution_type,
            input: batch.input,
            items: batch.items,
            status: match output {
                Ok(value) => ChildStatus::Succeeded(value),
                Err(failure) => ChildStatus::Failed(failure),
            },
            start_date: Some(start),
            stop_date: Some(Utc::now()),
            history: child
                .history
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            service_events: child.service_history.counts(),
        }
    }
}

/// A child that was never started.
fn pending(batch: Batch) -> ChildExecution {
    ChildExecution {
        arn: String::new(),
        name: String::new(),
        state_machine_arn: String::new(),
        execution_type: "STANDARD",
        input: batch.input,
        items: batch.items,
        status: ChildStatus::Pending,
        start_date: None,
        stop_date: None,
        history: Vec::new(),
        service_events: Default::default(),
    }
}
