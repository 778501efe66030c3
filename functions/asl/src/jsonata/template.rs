//! A field's value in which strings of the form `{% expression %}` are evaluated, at any depth of
//! objects and arrays.
//!
//! Source: "Writing JSONata expressions in JSON strings",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html#writing-jsonata-expressions-in-json-strings>:
//! the string must start with `{%` and end with `%}`, with no space outside them; any other
//! string is a literal, and object keys are never evaluated.

use serde_json::{Map, Value};

use super::engine;
use super::errors::{FieldPath, QueryError};
use super::values::JsonType;
use super::Scope;

/// The expression a field's string holds, without its delimiters and the spaces inside them;
/// `None` for a literal string.
pub fn expression(text: &str) -> Option<&str> {
    text.strip_prefix("{%")
        .and_then(|rest| rest.strip_suffix("%}"))
        .map(str::trim)
}

/// The value of a field (`Arguments`, `Output`, an `Assign` entry, `ItemSelector`, `Items`…),
/// every expression in it evaluated. An expression that evaluates to nothing fails the field,
/// wherever it is: the service has no "drop the key" for JSONata.
pub fn evaluate_template(
    template: &Value,
    field: &FieldPath,
    scope: &Scope<'_>,
) -> Result<Value, QueryError> {
    match template {
        Value::String(text) => match expression(text) {
            Some(source) => evaluate_expression(source, field, scope),
            None => Ok(template.clone()),
        },
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, value) in fields {
                out.insert(
                    key.clone(),
                    evaluate_template(value, &field.key(key), scope)?,
                );
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| evaluate_template(item, &field.index(index), scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        literal => Ok(literal.clone()),
    }
}

/// The value of one expression (the text between the delimiters), failing when it is
/// undefined.
pub fn evaluate_expression(
    source: &str,
    field: &FieldPath,
    scope: &Scope<'_>,
) -> Result<Value, QueryError> {
    engine::evaluate(source, field, scope)?.ok_or_else(|| QueryError::Undefined {
        expression: source.to_string(),
        field: field.clone(),
    })
}

/// A field that takes one type of value (`Items` an array, `Seconds` a number, `Error` a
/// string): an expression giving another type fails the field. A literal is returned as it is;
/// checking literals is the definition validator's business.
pub fn evaluate_typed(
    template: &Value,
    field: &FieldPath,
    scope: &Scope<'_>,
    expected: JsonType,
) -> Result<Value, QueryError> {
    let Some(source) = template.as_str().and_then(expression) else {
        return evaluate_template(template, field, scope);
    };
    let value = evaluate_expression(source, field, scope)?;
    let actual = JsonType::of(&value);
    if actual == expected {
        Ok(value)
    } else {
        Err(QueryError::UnexpectedType {
            expression: source.to_string(),
            field: field.clone(),
            expected: expected.name(),
            actual: actual.name(),
        })
    }
}

/// A Choice rule's `Condition`: a boolean, or an expression that evaluates to one.
pub fn evaluate_condition(
    condition: &Value,
    field: &FieldPath,
    scope: &Scope<'_>,
) -> Result<bool, QueryError> {
    let value = evaluate_typed(condition, field, scope, JsonType::Boolean)?;
    value.as_bool().ok_or_else(|| QueryError::UnexpectedType {
        expression: value.to_string(),
        field: field.clone(),
        expected: JsonType::Boolean.name(),
        actual: JsonType::of(&value).name(),
    })
}
