//! Payload templates (`Parameters`, `ItemSelector`, `ResultSelector`, `Assign`) and the
//! input/output path steps every state applies, with the service's wording when a path
//! finds nothing.

use serde_json::{Map, Value};

use crate::intrinsics;
use crate::model::PathField;
use crate::path::{JsonPath, Root};
use crate::variables::Variables;

/// What paths other than `$` start from: the context object (`$$`) and the variables.
#[derive(Clone, Copy)]
pub struct Roots<'a> {
    pub context: &'a Value,
    pub vars: &'a Variables,
}

/// The value `path` selects, `None` when a definite path finds nothing.
pub fn evaluate(path: &JsonPath, input: &Value, roots: Roots<'_>) -> Option<Value> {
    match &path.root {
        Root::Input => path.query(input),
        Root::Context => path.query(roots.context),
        Root::Variable(name) => path.query(roots.vars.get(name)?),
    }
}

/// Expands a payload template: a key ending in `.$` takes its value from a path (`$…`,
/// `$$…`, `$var…`) or an intrinsic function (`States.…`).
pub fn expand(template: &Value, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let expr = value.as_str().ok_or_else(|| {
                            format!("The value for the field '{key}' must be a STRING that contains a JSONPath or an intrinsic function")
                        })?;
                        out.insert(name.to_string(), resolve(expr, key, input, roots)?);
                    }
                    None => {
                        out.insert(key.clone(), expand(value, input, roots)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| expand(item, input, roots))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// A `.$` field's value.
fn resolve(expr: &str, key: &str, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    if intrinsics::is_intrinsic(expr) {
        return intrinsics::evaluate(expr, input, roots).map_err(|e| {
            format!("The function '{expr}' specified for the field '{key}' failed: {e}")
        });
    }
    let path = JsonPath::parse(expr)?;
    evaluate(&path, input, roots).ok_or_else(|| {
        format!(
            "The JSONPath '{expr}' specified for the field '{key}' could not be found in the input '{}'",
            shown_root(&path, input, roots)
        )
    })
}

/// The document a path looked in, as the Cause of a miss quotes it.
fn shown_root(path: &JsonPath, input: &Value, roots: Roots<'_>) -> String {
    match &path.root {
        Root::Input => input.to_string(),
        Root::Context => roots.context.to_string(),
        Root::Variable(name) => roots
            .vars
            .get(name)
            .map_or_else(|| "null".to_string(), Value::to_string),
    }
}

/// The value at a path field (`InputPath`, `ItemsPath`, `SecondsPath`…), which must exist.
pub fn read(expr: &str, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    let path = JsonPath::parse(expr)?;
    evaluate(&path, input, roots).ok_or_else(|| match &path.root {
        Root::Variable(name) if roots.vars.get(name).is_none() => {
            format!("Invalid path '{expr}' : The variable '{name}' is not defined")
        }
        Root::Variable(name) => format!(
            "Invalid path '{expr}' : {}",
            path.describe_miss(roots.vars.get(name).unwrap_or(&Value::Null))
        ),
        Root::Input => format!("Invalid path '{expr}' : {}", path.describe_miss(input)),
        Root::Context => format!(
            "Invalid path '{expr}' : {}",
            path.describe_miss(roots.context)
        ),
    })
}

/// `InputPath` / `OutputPath`: absent keeps everything, `null` keeps nothing (`{}`).
pub fn select(field: &PathField, value: Value, roots: Roots<'_>) -> Result<Value, String> {
    match field {
        PathField::Absent => Ok(value),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => read(p, &value, roots),
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

/// A state's `Assign`: the variables it sets, evaluated against `value` (the state's input,
/// result or error output) and the variables from before the state.
pub fn assign(
    template: Option<&Value>,
    value: &Value,
    roots: Roots<'_>,
) -> Result<Map<String, Value>, String> {
    match template {
        None => Ok(Map::new()),
        Some(template) => match expand(template, value, roots)? {
            Value::Object(assigned) => Ok(assigned),
            _ => Err("Assign must be an object".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roots<'a>(context: &'a Value, vars: &'a Variables) -> Roots<'a> {
        Roots { context, vars }
    }

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
        let vars = Variables::default();
        assert_eq!(
            expand(&template, &input, roots(&context, &vars)).unwrap(),
            json!({"static": 1, "date": "2026-11-25", "nested": {"item": "x", "list": [{"n": 2}]}, "label": "run-2026-11-25"})
        );
        let err = expand(
            &json!({"x.$": "$.missing"}),
            &json!({"a": 1}),
            roots(&context, &vars),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "The JSONPath '$.missing' specified for the field 'x.$' could not be found in the input '{\"a\":1}'"
        );
    }

    #[test]
    fn select_and_place_follow_the_spec() {
        let ctx = json!({});
        let vars = Variables::default();
        let r = roots(&ctx, &vars);
        assert_eq!(
            select(&PathField::Null, json!({"a": 1}), r).unwrap(),
            json!({})
        );
        assert_eq!(
            select(&PathField::Path("$.a".into()), json!({"a": 1}), r).unwrap(),
            json!(1)
        );
        assert_eq!(
            select(&PathField::Path("$.b".into()), json!({"a": 1}), r).unwrap_err(),
            "Invalid path '$.b' : No results for path: $['b']"
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
