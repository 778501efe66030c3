//! The JSON values JSONata gives back, in the shape Step Functions gives them.

use serde_json::{Number, Value};

/// 2^63: the first whole number, upwards, that no `i64` holds.
const I64_END: f64 = 9_223_372_036_854_775_808.0;
/// 2^64: the first whole number that no `u64` holds.
const U64_END: f64 = 18_446_744_073_709_551_616.0;

/// JSONata computes in doubles, so `6 / 2` or a large sum can come back as `3.0`; the service
/// writes a whole number without a fraction, and so do we wherever an integer holds it exactly.
pub(super) fn normalize_numbers(value: Value) -> Value {
    match value {
        Value::Number(number) => Value::Number(integral(number)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, normalize_numbers(value)))
                .collect(),
        ),
        other => other,
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn integral(number: Number) -> Number {
    let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
        return number;
    };
    // The range checks make the casts exact: the value is whole and inside the target type.
    if float.fract() != 0.0 || !float.is_finite() {
        number
    } else if (-I64_END..I64_END).contains(&float) {
        Number::from(float as i64)
    } else if (0.0..U64_END).contains(&float) {
        Number::from(float as u64)
    } else {
        number
    }
}

/// The types a field can ask of an expression, named as JSONata's `$type` names them (the
/// service uses these names in "Expected 'boolean', but was 'string'").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_floats_become_integers_where_exact() {
        assert_eq!(normalize_numbers(json!(3.0)).to_string(), "3");
        assert_eq!(normalize_numbers(json!(-3.0)).to_string(), "-3");
        assert_eq!(normalize_numbers(json!(2.5)).to_string(), "2.5");
        assert_eq!(
            normalize_numbers(json!({"a": [1.0, {"b": 1e15}]})).to_string(),
            r#"{"a":[1,{"b":1000000000000000}]}"#
        );
        assert_eq!(
            normalize_numbers(json!(1.8e19)).to_string(),
            "18000000000000000000"
        );
        // Past u64 there is no integer type to hold it: it stays a double.
        assert!(normalize_numbers(json!(1e20)).is_f64());
    }

    #[test]
    fn type_names_are_jsonatas() {
        assert_eq!(JsonType::of(&json!([1])).name(), "array");
        assert_eq!(JsonType::of(&json!(null)).name(), "null");
        assert_eq!(JsonType::of(&json!("x")).name(), "string");
    }
}
