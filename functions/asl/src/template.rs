//! Payload templates (`Parameters`, `ItemSelector`, `ResultSelector`) and the input/output
//! path steps every state applies.

use serde_json::{Map, Value};

use crate::intrinsics;
use crate::model::PathField;
use crate::path::JsonPath;

/// Expands a payload template: a key ending in `.$` takes its value from a path into the
/// input (`$…`), the context object (`$$…`) or an intrinsic function (`States.…`).
pub fn expand(template: &Value, input: &Value, context: &Value) -> Result<Value, String> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let expr = value.as_str().ok_or_else(|| {
                            format!("field {key:?} must hold a path or intrinsic function string")
                        })?;
                        out.insert(
                            name.to_string(),
                            resolve(expr, input, context)
                                .map_err(|e| format!("field {key:?}: {e}"))?,
                        );
                    }
                    None => {
                        out.insert(key.clone(), expand(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| expand(item, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn resolve(expr: &str, input: &Value, context: &Value) -> Result<Value, String> {
    if intrinsics::is_intrinsic(expr) {
        return intrinsics::evaluate(expr, input, context);
    }
    read(expr, input, context)
}

/// The value at a path, which must exist.
pub fn read(expr: &str, input: &Value, context: &Value) -> Result<Value, String> {
    let path = JsonPath::parse(expr)?;
    let root = if path.context { context } else { input };
    path.get(root)
        .cloned()
        .ok_or_else(|| format!("the JSONPath {expr:?} could not be found in the input"))
}

/// `InputPath` / `OutputPath`: absent keeps everything, `null` keeps nothing (`{}`).
pub fn select(field: &PathField, value: Value, context: &Value) -> Result<Value, String> {
    match field {
        PathField::Absent => Ok(value),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => read(p, &value, context),
    }
}

/// `ResultPath`: where the result goes in the state's raw input. Absent replaces the input,
/// `null` discards the result.
pub fn place(field: &PathField, raw_input: Value, result: Value) -> Result<Value, String> {
    match field {
        PathField::Absent => Ok(result),
        PathField::Null => Ok(raw_input),
        PathField::Path(p) => JsonPath::parse(p)?.set(raw_input, result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_paths_context_and_intrinsics() {
        let template = json!({
            "static": 1,
            "date.$": "$.logical_date",
            "nested": {"item.$": "$$.Map.Item.Value", "list": [{"n.$": "$.n"}]},
            "label.$": "States.Format('run-{}', $.logical_date)"
        });
        let input = json!({"logical_date": "2026-11-25", "n": 2});
        let context = json!({"Map": {"Item": {"Value": "x"}}});
        assert_eq!(
            expand(&template, &input, &context).unwrap(),
            json!({"static": 1, "date": "2026-11-25", "nested": {"item": "x", "list": [{"n": 2}]}, "label": "run-2026-11-25"})
        );
        let err = expand(&json!({"x.$": "$.missing"}), &input, &context).unwrap_err();
        assert!(err.contains("x.$") && err.contains("$.missing"), "{err}");
    }

    #[test]
    fn select_and_place_follow_the_spec() {
        let ctx = json!({});
        assert_eq!(
            select(&PathField::Null, json!({"a": 1}), &ctx).unwrap(),
            json!({})
        );
        assert_eq!(
            select(&PathField::Path("$.a".into()), json!({"a": 1}), &ctx).unwrap(),
            json!(1)
        );
        assert_eq!(
            place(&PathField::Null, json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            place(&PathField::Absent, json!({"a": 1}), json!(2)).unwrap(),
            json!(2)
        );
        assert_eq!(
            place(&PathField::Path("$.r".into()), json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1, "r": 2})
        );
    }
}
