//! Variables (`Assign`): names follow identifier rules, at most 80 characters, `states`
//! reserved; and a state inside a Map or Parallel may not assign a variable an outer scope
//! assigns (the workflow-variables scope rule).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{messages, Loc, Report};

const MAX_NAME_CHARS: usize = 80;

pub(super) fn check(report: &mut Report, top: &Map<String, Value>) {
    scope(report, top, &Loc::root(), &HashSet::new());
}

/// Checks one scope's assignments against `outer`, then its nested scopes against both.
fn scope(report: &mut Report, container: &Map<String, Value>, loc: &Loc, outer: &HashSet<String>) {
    let Some(states) = container.get("States").and_then(Value::as_object) else {
        return;
    };
    let states_loc = loc.field("States");
    let mut here = outer.clone();
    for (name, state) in states {
        for (assign_loc, assign) in assignments(state, &states_loc.field(name)) {
            for key in assign.keys() {
                let variable = key.strip_suffix(".$").unwrap_or(key);
                if !is_valid_name(variable) {
                    report.schema(&assign_loc, messages::invalid_variable(variable));
                } else if outer.contains(variable) {
                    report.schema(&assign_loc, messages::outer_variable(variable));
                }
                here.insert(variable.to_string());
            }
        }
    }
    for (name, state) in states {
        let state_loc = states_loc.field(name);
        if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
            for (i, branch) in branches.iter().enumerate() {
                if let Some(branch) = branch.as_object() {
                    scope(report, branch, &state_loc.field("Branches").index(i), &here);
                }
            }
        }
        for field in ["ItemProcessor", "Iterator"] {
            if let Some(processor) = state.get(field).and_then(Value::as_object) {
                scope(report, processor, &state_loc.field(field), &here);
            }
        }
    }
}

/// A state's `Assign`, its catchers' and its choice rules'.
fn assignments<'a>(state: &'a Value, loc: &Loc) -> Vec<(Loc, &'a Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(assign) = state.get("Assign").and_then(Value::as_object) {
        found.push((loc.field("Assign"), assign));
    }
    for field in ["Catch", "Choices"] {
        let Some(items) = state.get(field).and_then(Value::as_array) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(assign) = item.get("Assign").and_then(Value::as_object) {
                found.push((loc.field(field).index(i).field("Assign"), assign));
            }
        }
    }
    found
}

/// A letter or `_`, then letters, digits or `_`; not `states`; at most 80 characters.
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    starts_well
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && name.chars().count() <= MAX_NAME_CHARS
        && name != "states"
}
