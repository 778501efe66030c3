//! Redrive, as the service documents it: the steps that completed are not run again, a Map or
//! Parallel resumes only its failed iterations and branches, a caught failure stays caught.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use super::{execute, Execution, RunOptions};
use crate::redrive::Redrive;
use crate::{Event, Failure, Machine, TaskInvoker, TaskRequest};

/// Fails the states named in `failing` (with `Boom`), answers the others with their
/// parameters, and counts the invokes per state.
#[derive(Default)]
struct Scripted {
    failing: Mutex<BTreeSet<String>>,
    invokes: Mutex<BTreeMap<String, u32>>,
}

impl Scripted {
    fn failing(states: &[&str]) -> Arc<Self> {
        let scripted = Self::default();
        *scripted.failing.lock().unwrap() = states.iter().map(|s| (*s).to_string()).collect();
        Arc::new(scripted)
    }

    fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    /// The invokes per state since the last call.
    fn take_invokes(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.invokes.lock().unwrap())
    }
}

impl TaskInvoker for Scripted {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
        async move {
            *self
                .invokes
                .lock()
                .unwrap()
                .entry(request.state.clone())
                .or_insert(0) += 1;
            if self.failing.lock().unwrap().contains(&request.state) {
                Err(Failure::new("Boom", format!("{} failed", request.state)))
            } else {
                Ok(request.parameters)
            }
        }
        .boxed()
    }
}

async fn run(
    definition: &Value,
    input: &Value,
    invoker: &Arc<Scripted>,
    redrive: Option<Redrive>,
) -> Execution {
    let machine = Machine::from_json(&definition.to_string()).unwrap();
    let mut options = RunOptions::new("test", "exec");
    options.time_scale = 0.0;
    options.redrive = redrive;
    let invoker: Arc<dyn TaskInvoker> = invoker.clone();
    execute(&machine, input.clone(), invoker, options).await
}

fn redrive_of(earlier: &Execution, count: u32) -> Option<Redrive> {
    Some(Redrive {
        journal: earlier.journal.clone(),
        count,
        prior_events: earlier.service_events.values().sum(),
    })
}

fn invokes(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(s, n)| ((*s).to_string(), *n)).collect()
}

fn task(next: Option<&str>) -> Value {
    let mut state = json!({"Type": "Task", "Resource": "r", "Parameters": {"input.$": "$"}, "ResultPath": null});
    match next {
        Some(next) => state["Next"] = json!(next),
        None => state["End"] = json!(true),
    }
    state
}

#[tokio::test]
async fn a_parallel_resumes_only_its_failed_branch_and_what_follows() {
    let definition = json!({
        "StartAt": "Hire",
        "States": {
            "Hire": task(Some("Publish")),
            "Publish": {"Type": "Parallel", "Next": "Record", "ResultPath": "$.published", "Branches": [
                {"StartAt": "Export", "States": {"Export": task(None)}},
                {"StartAt": "Sync", "States": {"Sync": task(None)}}
            ]},
            "Record": task(None)
        }
    });
    let input = json!({"day": "2026-11-03"});
    let invoker = Scripted::failing(&["Sync"]);
    let first = run(&definition, &input, &invoker, None).await;
    assert_eq!(first.output.as_ref().unwrap_err().error, "Boom");
    assert_eq!(
        invoker.take_invokes(),
        invokes(&[("Hire", 1), ("Export", 1), ("Sync", 1)])
    );

    invoker.heal();
    let redriven = run(&definition, &input, &invoker, redrive_of(&first, 0)).await;
    assert_eq!(
        invoker.take_invokes(),
        invokes(&[("Sync", 1), ("Record", 1)])
    );

    let clean = run(&definition, &input, &Scripted::failing(&[]), None).await;
    assert_eq!(redriven.output, clean.output);
    assert!(redriven.history.contains(&Event::ExecutionRedriven {
        redrive_count: 1,
        replayed_steps: first.journal.len(),
    }));
    // Hire's entry is replayed, not entered again.
    assert!(!redriven
        .history
        .iter()
        .any(|e| matches!(e, Event::StateEntered { state, .. } if state == "Hire")));
}

/// Fails the load of day "b" only.
struct FailB(Mutex<Vec<String>>, bool);
impl TaskInvoker for FailB {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
        async move {
            let day = request.parameters["day"].as_str().unwrap().to_string();
            self.0.lock().unwrap().push(day.clone());
            if self.1 && day == "b" {
                Err(Failure::new("Boom", "b failed"))
            } else {
                Ok(request.parameters)
            }
        }
        .boxed()
    }
}

#[tokio::test]
async fn a_map_resumes_its_failed_and_unstarted_iterations_only() {
    let definition = json!({
        "StartAt": "EachDay",
        "States": {"EachDay": {
            "Type": "Map", "ItemsPath": "$.days", "MaxConcurrency": 1, "End": true,
            "ItemSelector": {"day.$": "$$.Map.Item.Value"},
            "ItemProcessor": {"StartAt": "Load", "States": {"Load": {
                "Type": "Task", "Resource": "r", "Parameters": {"day.$": "$.day"}, "End": true
            }}}
        }}
    });
    let input = json!({"days": ["a", "b", "c"]});

    let machine = Machine::from_json(&definition.to_string()).unwrap();
    let go = |fail: bool, redrive: Option<Redrive>| {
        let invoker = Arc::new(FailB(Mutex::default(), fail));
        let mut options = RunOptions::new("test", "exec");
        options.redrive = redrive;
        let machine = &machine;
        let input = input.clone();
        async move {
            let dyn_invoker: Arc<dyn TaskInvoker> = invoker.clone();
            let execution = execute(machine, input, dyn_invoker, options).await;
            let loaded = invoker.0.lock().unwrap().clone();
            (execution, loaded)
        }
    };
    let (first, loaded) = go(true, None).await;
    assert!(first.output.is_err());
    assert_eq!(loaded, ["a", "b"], "c never started: one at a time");
    let (redriven, loaded) = go(false, redrive_of(&first, 0)).await;
    assert_eq!(loaded, ["b", "c"], "a is not loaded again");
    assert_eq!(
        redriven.output.unwrap(),
        json!([{"day": "a"}, {"day": "b"}, {"day": "c"}])
    );
}

#[tokio::test]
async fn a_caught_failure_stays_caught_and_variables_carry_over() {
    let definition = json!({
        "StartAt": "Probe",
        "States": {
            "Probe": {"Type": "Task", "Resource": "r", "Next": "Done",
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Note"}]},
            "Note": {"Type": "Pass", "Assign": {"noted.$": "$.error.Error"}, "Next": "Load"},
            "Load": {"Type": "Task", "Resource": "r", "Next": "Done",
                     "Parameters": {"noted.$": "$noted", "redrives.$": "$$.Execution.RedriveCount"}},
            "Done": {"Type": "Succeed"}
        }
    });
    let invoker = Scripted::failing(&["Probe", "Load"]);
    let first = run(&definition, &json!({}), &invoker, None).await;
    assert_eq!(first.output.as_ref().unwrap_err().cause, "Load failed");
    invoker.take_invokes();

    invoker.heal();
    let redriven = run(&definition, &json!({}), &invoker, redrive_of(&first, 0)).await;
    assert_eq!(invoker.take_invokes(), invokes(&[("Load", 1)]));
    assert_eq!(
        redriven.output.unwrap(),
        json!({"noted": "Boom", "redrives": 1})
    );
}

#[tokio::test]
async fn a_redrive_of_a_redrive_replays_both_earlier_attempts() {
    let definition = json!({
        "StartAt": "A",
        "States": {"A": task(Some("B")), "B": task(Some("C")), "C": task(None)}
    });
    let invoker = Scripted::failing(&["B", "C"]);
    let first = run(&definition, &json!({}), &invoker, None).await;
    invoker.failing.lock().unwrap().remove("B");
    let second = run(&definition, &json!({}), &invoker, redrive_of(&first, 0)).await;
    assert_eq!(second.output.as_ref().unwrap_err().cause, "C failed");
    invoker.heal();
    invoker.take_invokes();
    let third = run(&definition, &json!({}), &invoker, redrive_of(&second, 1)).await;
    assert!(third.output.is_ok(), "{:?}", third.output);
    assert_eq!(invoker.take_invokes(), invokes(&[("C", 1)]));
    assert!(third.history.contains(&Event::ExecutionRedriven {
        redrive_count: 2,
        replayed_steps: 2,
    }));
    // The earlier attempts' events count towards the quota.
    let prior: u64 = second.service_events.values().sum();
    assert_eq!(third.service_events.get("PriorAttempts"), Some(&prior));
}
