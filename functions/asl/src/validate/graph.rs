//! Transitions: duplicate state names, targets that name no state, states nothing reaches,
//! and a top level with no terminal state. Each Parallel branch and Map processor is a scope
//! of its own: its transitions stay inside it.
//!
//! As AWS does: a dangling target is `Missing 'Next' target: X` whatever its field
//! (`StartAt`, `Default`, a catcher's `Next`), located at that field; an unreachable state is a
//! `MISSING_TRANSITION_TARGET` error, not a warning; `MISSING_END_STATE` is for the top level
//! only, comes last, and replaces the top level's unreachable-state reports.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::{codes, messages, Loc, Report, Severity};

pub(super) fn check(report: &mut Report, top: &Map<String, Value>) {
    let Some(states) = top.get("States").and_then(Value::as_object) else {
        return;
    };
    duplicates(report, top, &Loc::root(), &mut HashSet::new());
    let no_terminal = !states.values().any(is_terminal);
    scope(report, top, &Loc::root(), no_terminal);
    if no_terminal {
        report.push(
            Severity::Error,
            codes::MISSING_END_STATE,
            None,
            messages::NO_TERMINAL_STATE,
        );
    }
}

fn is_terminal(state: &Value) -> bool {
    state.get("End") == Some(&Value::Bool(true))
        || matches!(
            state.get("Type").and_then(Value::as_str),
            Some("Succeed" | "Fail")
        )
}

/// The scopes nested in a state: its branches and its item processor.
fn nested<'a>(state: &'a Value, loc: &Loc) -> Vec<(Loc, &'a Map<String, Value>)> {
    let mut scopes = Vec::new();
    if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
        let branches_loc = loc.field("Branches");
        for (i, branch) in branches.iter().enumerate() {
            if let Some(branch) = branch.as_object() {
                scopes.push((branches_loc.index(i), branch));
            }
        }
    }
    for field in ["ItemProcessor", "Iterator"] {
        if let Some(processor) = state.get(field).and_then(Value::as_object) {
            scopes.push((loc.field(field), processor));
        }
    }
    scopes
}

/// State names are unique across the whole machine, nested scopes included.
fn duplicates(
    report: &mut Report,
    container: &Map<String, Value>,
    loc: &Loc,
    seen: &mut HashSet<String>,
) {
    let Some(states) = container.get("States").and_then(Value::as_object) else {
        return;
    };
    let states_loc = loc.field("States");
    for name in states.keys() {
        if !seen.insert(name.clone()) {
            report.error(
                codes::DUPLICATE_STATE_NAME,
                &states_loc.field(name),
                messages::duplicate_state(name),
            );
        }
    }
    for (name, state) in states {
        for (inner_loc, inner) in nested(state, &states_loc.field(name)) {
            duplicates(report, inner, &inner_loc, seen);
        }
    }
}

/// Where a state can go next, with the location of each field naming a target.
fn targets(state: &Value, loc: &Loc) -> Vec<(String, Loc)> {
    let mut found = Vec::new();
    for field in ["Next", "Default"] {
        if let Some(target) = state.get(field).and_then(Value::as_str) {
            found.push((target.to_string(), loc.field(field)));
        }
    }
    for field in ["Choices", "Catch"] {
        let Some(items) = state.get(field).and_then(Value::as_array) else {
            continue;
        };
        let field_loc = loc.field(field);
        for (i, item) in items.iter().enumerate() {
            if let Some(target) = item.get("Next").and_then(Value::as_str) {
                found.push((target.to_string(), field_loc.index(i).field("Next")));
            }
        }
    }
    found
}

/// One scope's dangling targets and unreachable states, then its nested scopes'.
fn scope(report: &mut Report, container: &Map<String, Value>, loc: &Loc, skip_unreachable: bool) {
    let Some(states) = container.get("States").and_then(Value::as_object) else {
        return;
    };
    let states_loc = loc.field("States");
    let start = container.get("StartAt").and_then(Value::as_str);
    if let Some(start) = start.filter(|s| !states.contains_key(*s)) {
        report.error(
            codes::MISSING_TRANSITION_TARGET,
            &loc.field("StartAt"),
            messages::missing_target(start),
        );
    }
    let mut edges: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, state) in states {
        for (target, target_loc) in targets(state, &states_loc.field(name)) {
            if !states.contains_key(&target) {
                report.error(
                    codes::MISSING_TRANSITION_TARGET,
                    &target_loc,
                    messages::missing_target(&target),
                );
            }
            edges.entry(name.as_str()).or_default().push(target);
        }
    }
    if let Some(start) = start.filter(|_| !skip_unreachable) {
        let reached = reachable(start, &edges);
        for name in states.keys().filter(|n| !reached.contains(n.as_str())) {
            report.error(
                codes::MISSING_TRANSITION_TARGET,
                &states_loc.field(name),
                messages::unreachable(name),
            );
        }
    }
    for (name, state) in states {
        for (inner_loc, inner) in nested(state, &states_loc.field(name)) {
            scope(report, inner, &inner_loc, false);
        }
    }
}

/// The states a walk from `start` reaches (`start` itself only if it exists, which the
/// caller's `edges`/`states` decide: a missing start reaches nothing).
fn reachable<'a>(start: &'a str, edges: &'a HashMap<&str, Vec<String>>) -> HashSet<&'a str> {
    let mut reached = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(name) = queue.pop_front() {
        for target in edges.get(name).into_iter().flatten() {
            if reached.insert(target.as_str()) {
                queue.push_back(target.as_str());
            }
        }
    }
    reached
}
