//! The checks on one state's values at load: variable names, paths and templates that
//! parse, and fields whose combination the service refuses.

use serde_json::Value;

use super::{variable_names, Catcher, PathField, State};
use crate::path::{JsonPath, Root};
use crate::{choice, intrinsics, variables};

pub fn state(name: &str, state: &State) -> Result<(), String> {
    let fail = |e: String| format!("state {name:?}: {e}");
    if let Some(template) = state.assign() {
        assign(template).map_err(fail)?;
    }
    if let Some(io) = state.io() {
        for field in [&io.input_path, &io.output_path] {
            if let PathField::Path(text) = field {
                JsonPath::parse(text).map_err(fail)?;
            }
        }
    }
    match state {
        State::Pass(s) => {
            template(s.parameters.as_ref(), "Parameters").map_err(fail)?;
            result_path(&s.result_path).map_err(fail)?;
        }
        State::Task(s) => {
            template(s.parameters.as_ref(), "Parameters").map_err(fail)?;
            task_like(s.result_selector.as_ref(), &s.result_path, &s.catch).map_err(fail)?;
            optional_path(s.timeout_seconds_path.as_deref()).map_err(fail)?;
        }
        State::Parallel(s) => {
            template(s.parameters.as_ref(), "Parameters").map_err(fail)?;
            task_like(s.result_selector.as_ref(), &s.result_path, &s.catch).map_err(fail)?;
        }
        State::Map(s) => {
            template(s.item_selector.as_ref(), "ItemSelector").map_err(fail)?;
            task_like(s.result_selector.as_ref(), &s.result_path, &s.catch).map_err(fail)?;
            optional_path(s.items_path.as_deref()).map_err(fail)?;
            optional_path(s.max_concurrency_path.as_deref()).map_err(fail)?;
            super::distributed::check(s).map_err(fail)?;
        }
        State::Choice(s) => {
            for rule in &s.choices {
                choice::validate_rule(rule, true).map_err(fail)?;
                if let Some(template) = rule.get("Assign") {
                    assign(template).map_err(fail)?;
                }
            }
        }
        State::Wait(s) => {
            let given = [
                s.seconds.is_some(),
                s.seconds_path.is_some(),
                s.timestamp.is_some(),
                s.timestamp_path.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(fail("a Wait state needs exactly one of Seconds, SecondsPath, Timestamp and TimestampPath".into()));
            }
            optional_path(s.seconds_path.as_deref()).map_err(fail)?;
            optional_path(s.timestamp_path.as_deref()).map_err(fail)?;
        }
        State::Fail(s) => {
            if s.error.is_some() && s.error_path.is_some()
                || s.cause.is_some() && s.cause_path.is_some()
            {
                return Err(fail(
                    "Error and ErrorPath, like Cause and CausePath, exclude each other".into(),
                ));
            }
            path_or_intrinsic(s.error_path.as_deref()).map_err(fail)?;
            path_or_intrinsic(s.cause_path.as_deref()).map_err(fail)?;
        }
        State::Succeed(_) => {}
    }
    Ok(())
}

fn assign(template: &Value) -> Result<(), String> {
    if !template.is_object() {
        return Err("Assign must be an object".into());
    }
    for name in variable_names(template) {
        variables::check_name(&name)?;
    }
    self::template(Some(template), "Assign")
}

fn task_like(selector: Option<&Value>, path: &PathField, catch: &[Catcher]) -> Result<(), String> {
    template(selector, "ResultSelector")?;
    result_path(path)?;
    for catcher in catch {
        result_path(&catcher.result_path)?;
        if let Some(template) = &catcher.assign {
            assign(template)?;
        }
    }
    Ok(())
}

/// `ResultPath` writes into the state input, so it names one node there.
fn result_path(field: &PathField) -> Result<(), String> {
    let PathField::Path(text) = field else {
        return Ok(());
    };
    let path = JsonPath::parse(text)?;
    if path.root != Root::Input || !path.is_definite() {
        return Err(format!(
            "ResultPath {text:?} must be a definite path into the state input ($…)"
        ));
    }
    Ok(())
}

pub(super) fn optional_path(text: Option<&str>) -> Result<(), String> {
    text.map_or(Ok(()), |t| JsonPath::parse(t).map(|_| ()))
}

/// `ErrorPath` / `CausePath` take a path or an intrinsic function.
fn path_or_intrinsic(text: Option<&str>) -> Result<(), String> {
    match text {
        Some(t) if intrinsics::is_intrinsic(t) => intrinsics::parse(t).map(|_| ()),
        other => optional_path(other),
    }
}

/// Every `.$` field of a payload template holds a path or an intrinsic function.
pub(super) fn template(template: Option<&Value>, field: &str) -> Result<(), String> {
    match template {
        Some(Value::Object(fields)) => {
            for (key, value) in fields {
                if key.ends_with(".$") {
                    let text = value.as_str().ok_or_else(|| {
                        format!(
                            "{field}: the value of {key:?} must be a path or an intrinsic function"
                        )
                    })?;
                    path_or_intrinsic(Some(text)).map_err(|e| format!("{field}: {key:?}: {e}"))?;
                } else {
                    self::template(Some(value), field)?;
                }
            }
            Ok(())
        }
        Some(Value::Array(items)) => items
            .iter()
            .try_for_each(|i| self::template(Some(i), field)),
        _ => Ok(()),
    }
}
