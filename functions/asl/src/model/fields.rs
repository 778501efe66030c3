//! Which fields each state type may carry. Anything else is refused by name at load: a field
//! this runner would silently ignore could change what the service does with the same
//! definition.

use serde_json::Value;

use super::query_language::{self, Lang};

const MACHINE: &[&str] = &[
    "StartAt",
    "States",
    "Comment",
    "Version",
    "TimeoutSeconds",
    "QueryLanguage",
];
const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const IO: &[&str] = &["InputPath", "OutputPath"];
const FLOW: &[&str] = &["Next", "End"];
const TASK_LIKE: &[&str] = &["ResultSelector", "ResultPath", "Retry", "Catch", "Assign"];

fn allowed(state_type: &str) -> Option<Vec<&'static str>> {
    let own: &[&str] = match state_type {
        "Pass" => &["Parameters", "Result", "ResultPath", "Assign"],
        "Task" => &[
            "Resource",
            "Parameters",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            // A heartbeat only concerns activities and callbacks, which report progress; a
            // synchronous invocation, the only kind run here, has nothing to time out on.
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
        ],
        "Choice" => &["Choices", "Default", "Assign"],
        "Wait" => &[
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Assign",
        ],
        "Succeed" => &[],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &["Branches", "Parameters"],
        "Map" => &[
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
        ],
        _ => return None,
    };
    let mut fields: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    if state_type != "Fail" {
        fields.extend(IO);
    }
    if matches!(state_type, "Pass" | "Task" | "Wait" | "Parallel" | "Map") {
        fields.extend(FLOW);
    }
    if matches!(state_type, "Task" | "Parallel" | "Map") {
        fields.extend(TASK_LIKE);
    }
    if state_type == "Map" {
        fields.extend(super::distributed::DISTRIBUTED_FIELDS);
    }
    Some(fields)
}

/// Checks the fields of a machine (or a branch / item processor) and of all its states.
/// `top` is the machine's query language, which every state inherits unless it sets its own.
pub fn check_machine(
    raw: &Value,
    scope: &str,
    item_processor: bool,
    top: Lang,
) -> Result<(), String> {
    let object = raw
        .as_object()
        .ok_or_else(|| format!("{scope}a state machine must be an object"))?;
    for key in object.keys() {
        // Only the top level sets the machine's language: branches and item processors
        // inherit it (the scope names where a nested machine is).
        if key == "QueryLanguage" && !scope.is_empty() {
            return Err(format!("{scope}Field 'QueryLanguage' is not supported"));
        }
        if !(MACHINE.contains(&key.as_str()) || (item_processor && key == "ProcessorConfig")) {
            return Err(format!("{scope}the field {key:?} is not supported here"));
        }
    }
    let Some(states) = object.get("States").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, state) in states {
        check_state(name, state, top).map_err(|e| format!("{scope}state {name:?}: {e}"))?;
        for (i, branch) in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_machine(branch, &format!("{scope}{name}/branch {i}: "), false, top)?;
        }
        if let Some(processor) = state.get("ItemProcessor").or_else(|| state.get("Iterator")) {
            check_machine(processor, &format!("{scope}{name}/items: "), true, top)?;
        }
    }
    Ok(())
}

fn check_state(name: &str, state: &Value, top: Lang) -> Result<(), String> {
    let object = state.as_object().ok_or("a state must be an object")?;
    let state_type = object
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if query_language::state_language(object, top)? == Lang::Jsonata {
        return query_language::check_jsonata_fields(state_type, object);
    }
    let Some(fields) = allowed(state_type) else {
        return Err(format!("unknown state Type {state_type:?}"));
    };
    for key in object.keys() {
        if fields.contains(&key.as_str()) {
            continue;
        }
        if let Some(refusal) = query_language::foreign_in_jsonpath(key) {
            return Err(refusal);
        }
        return Err(format!(
            "the field {key:?} is not supported in a {state_type} state ({name})"
        ));
    }
    if state_type == "Map" {
        super::distributed::check_raw(object)?;
    }
    for (list, known) in [
        (
            "Retry",
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ][..],
        ),
        (
            "Catch",
            &["ErrorEquals", "Next", "ResultPath", "Assign", "Comment"][..],
        ),
    ] {
        for entry in object
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("{list} entries must be objects"))?;
            if let Some(key) = entry.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "the field {key:?} is not supported in a {list} entry"
                ));
            }
        }
    }
    Ok(())
}
