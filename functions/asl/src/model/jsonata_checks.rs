//! The checks on a JSONata state at load, as the service makes them when the state machine
//! is created: every `{% … %}` expression parses (as JSONata 2.0.6), reads `$states.result`
//! only in a Task, Parallel or Map state's `Output` and `Assign` and `$states.errorOutput` only
//! in a Catcher's, never reads the input document's top level directly, and the variable
//! names and Wait fields are valid.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>.

use serde_json::Value;

use super::query_language::JsonataState;
use super::State;
use crate::executor::parse_timestamp;
use crate::jsonata::{compile, expression, states_members, top_level_field};
use crate::variables;

const BEFORE: &[&str] = &["input", "context"];
const AFTER_SUCCESS: &[&str] = &["input", "context", "result"];
const IN_CATCH: &[&str] = &["input", "context", "errorOutput"];

pub fn state(name: &str, state: &State, fields: &JsonataState) -> Result<(), String> {
    let fail = |e: String| format!("state {name:?}: {e}");
    let task_like = matches!(state, State::Task(_) | State::Parallel(_) | State::Map(_));
    let before = [
        ("Arguments", &fields.arguments),
        ("Items", &fields.items),
        ("ItemSelector", &fields.item_selector),
        ("Seconds", &fields.seconds),
        ("Timestamp", &fields.timestamp),
        ("TimeoutSeconds", &fields.timeout_seconds),
        ("HeartbeatSeconds", &fields.heartbeat_seconds),
        ("MaxConcurrency", &fields.max_concurrency),
        ("Error", &fields.error),
        ("Cause", &fields.cause),
    ];
    for (field, value) in before {
        optional(value.as_ref(), field, BEFORE).map_err(fail)?;
    }
    let after = if task_like { AFTER_SUCCESS } else { BEFORE };
    optional(fields.output.as_ref(), "Output", after).map_err(fail)?;
    assign(fields.assign.as_ref(), "Assign", after).map_err(fail)?;
    for (i, catcher) in fields.catch.iter().enumerate() {
        let field = format!("Catch[{i}]");
        optional(
            catcher.output.as_ref(),
            &format!("{field}/Output"),
            IN_CATCH,
        )
        .map_err(fail)?;
        assign(
            catcher.assign.as_ref(),
            &format!("{field}/Assign"),
            IN_CATCH,
        )
        .map_err(fail)?;
    }
    for (i, rule) in fields.choices.iter().enumerate() {
        let field = format!("Choices[{i}]");
        let condition = rule
            .condition
            .as_ref()
            .ok_or_else(|| fail(format!("{field}: These fields are required: [Condition]")))?;
        expressions(condition, &format!("{field}/Condition"), BEFORE).map_err(fail)?;
        optional(rule.output.as_ref(), &format!("{field}/Output"), BEFORE).map_err(fail)?;
        assign(rule.assign.as_ref(), &format!("{field}/Assign"), BEFORE).map_err(fail)?;
    }
    match state {
        State::Wait(_) => wait(fields).map_err(fail),
        State::Map(map) if map.is_distributed() => Err(fail(
            "a distributed Map runs locally in JSONPath states only".into(),
        )),
        _ => Ok(()),
    }
}

fn optional(value: Option<&Value>, field: &str, members: &[&str]) -> Result<(), String> {
    value.map_or(Ok(()), |v| expressions(v, field, members))
}

/// `Assign` is an object of variables, each a value or template.
fn assign(value: Option<&Value>, field: &str, members: &[&str]) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    let entries = value
        .as_object()
        .ok_or_else(|| format!("{field}: Expected value of type [OBJECT]"))?;
    for name in entries.keys() {
        variables::check_name(name).map_err(|e| format!("{field}: {e}"))?;
    }
    expressions(value, field, members)
}

/// Every string in `value` that is an expression, at any depth.
fn expressions(value: &Value, field: &str, members: &[&str]) -> Result<(), String> {
    match value {
        Value::String(text) => one(text, field, members),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| expressions(item, &format!("{field}[{i}]"), members)),
        Value::Object(entries) => entries
            .iter()
            .try_for_each(|(key, item)| expressions(item, &format!("{field}/{key}"), members)),
        _ => Ok(()),
    }
}

fn one(text: &str, field: &str, members: &[&str]) -> Result<(), String> {
    if text.starts_with("{%") != text.ends_with("%}") {
        return Err(format!(
            "The value for the field '{field}' must start with '{{%' and end with '%}}' to be a JSONata expression"
        ));
    }
    let Some(source) = expression(text) else {
        return Ok(());
    };
    let compiled = compile(source).map_err(|e| {
        format!(
            "The JSONata expression '{source}' specified for the field '{field}' is invalid: {e}"
        )
    })?;
    for member in states_members(&compiled) {
        if matches!(member.as_str(), "result" | "errorOutput")
            && !members.contains(&member.as_str())
        {
            return Err(format!(
                "The JSONata expression '{source}' specified for the field '{field}' reads $states.{member}, which is not available there"
            ));
        }
    }
    if let Some(name) = top_level_field(&compiled) {
        return Err(format!(
            "The JSONata expression '{source}' specified for the field '{field}' reads '{name}' from the top level: read the state input from $states.input"
        ));
    }
    Ok(())
}

/// Exactly one of `Seconds` and `Timestamp`; a literal one must be valid as it stands.
fn wait(fields: &JsonataState) -> Result<(), String> {
    match (&fields.seconds, &fields.timestamp) {
        (Some(Value::String(text)), None) if expression(text).is_some() => Ok(()),
        (Some(seconds), None) => match seconds.as_u64() {
            Some(_) => Ok(()),
            None => Err(format!(
                "Seconds {seconds}: Expected a non-negative integer"
            )),
        },
        (None, Some(Value::String(text))) if expression(text).is_some() => Ok(()),
        (None, Some(Value::String(text))) if parse_timestamp(text).is_some() => Ok(()),
        (None, Some(other)) => Err(format!(
            "The value for the field 'Timestamp' must be a valid RFC3339 timestamp: {other}"
        )),
        _ => Err("Exactly one of these fields is required: [Seconds, Timestamp]".into()),
    }
}
