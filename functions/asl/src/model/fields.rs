//! Which fields each state type may carry. Anything else is refused by name at load: a field
//! this runner would silently ignore could change what the service does with the same
//! definition.

use serde_json::Value;

use super::query_language::{self, Lang};
use crate::fields::{self as asl_fields, StateType};

const MACHINE: &[&str] = &[
    "StartAt",
    "States",
    "Comment",
    "Version",
    "TimeoutSeconds",
    "QueryLanguage",
];

/// Whether a JSONPath state of `kind` may carry `field` here: AWS's fields for JSONPath,
/// less those the local runner refuses.
fn allowed(kind: StateType, field: &str) -> bool {
    kind.fields_in(Lang::JsonPath).any(|f| f == field)
        && !asl_fields::locally_unsupported(field, Lang::JsonPath)
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
    let Some(kind) = StateType::parse(state_type) else {
        return Err(format!("unknown state Type {state_type:?}"));
    };
    for key in object.keys() {
        if allowed(kind, key) {
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
    let catcher: Vec<&str> = asl_fields::CATCHER
        .iter()
        .copied()
        .filter(|f| Lang::JsonPath.allows(f))
        .collect();
    for (list, known) in [("Retry", asl_fields::RETRIER), ("Catch", &catcher[..])] {
        if let Some(key) = unknown_entry_field(object, list, known)? {
            return Err(format!(
                "the field {key:?} is not supported in a {list} entry"
            ));
        }
    }
    Ok(())
}

/// The first field of an entry of the array `list` (Retry, Catch, Choices) that `known` lacks.
pub(super) fn unknown_entry_field<'a>(
    state: &'a serde_json::Map<String, Value>,
    list: &str,
    known: &[&str],
) -> Result<Option<&'a str>, String> {
    for entry in state
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("{list} entries must be objects"))?;
        if let Some(key) = entry.keys().find(|k| !known.contains(&k.as_str())) {
            return Ok(Some(key));
        }
    }
    Ok(None)
}
