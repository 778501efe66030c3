//! Choice rules: `Variable` + one comparison, or `And` / `Or` / `Not`.

use crate::fields::Lang;
use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::path::JsonPath;
use crate::template::{evaluate, Roots};

const COMPARISONS: &[&str] = &[
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
    "StringMatches",
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
    "BooleanEquals",
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
    "IsNull",
    "IsPresent",
    "IsNumeric",
    "IsString",
    "IsBoolean",
    "IsTimestamp",
];

/// The single comparison operator in a rule (`NumericEquals`, `StringEqualsPath`, …).
fn operator(rule: &serde_json::Map<String, Value>) -> Result<(&str, &Value), String> {
    let mut found = rule.iter().filter(|(key, _)| is_operator(key));
    match (found.next(), found.next()) {
        (Some((key, value)), None) => Ok((key.as_str(), value)),
        (None, _) => Err("rule has no comparison operator".into()),
        (Some(_), Some(_)) => Err("rule has more than one comparison operator".into()),
    }
}

/// Checks a rule's shape when the definition is loaded. `top` rules (the elements of
/// `Choices`) also carry `Next` and may carry `Assign`; nested ones may not.
pub fn validate_rule(rule: &Value, top: bool) -> Result<(), String> {
    let object = rule.as_object().ok_or("a choice rule must be an object")?;
    for key in object.keys() {
        let known = matches!(key.as_str(), "Variable" | "And" | "Or" | "Not" | "Comment")
            || (top && matches!(key.as_str(), "Next" | "Assign"))
            || is_operator(key);
        if !known {
            if Lang::Jsonata.own_rule_fields().contains(&key.as_str()) {
                return Err(Lang::JsonPath.refuse(key));
            }
            return Err(format!(
                "the field {key:?} is not supported in a choice rule"
            ));
        }
    }
    if let Some(all) = object.get("And").or_else(|| object.get("Or")) {
        let rules = all.as_array().ok_or("And/Or takes an array of rules")?;
        return rules.iter().try_for_each(|r| validate_rule(r, false));
    }
    if let Some(inner) = object.get("Not") {
        return validate_rule(inner, false);
    }
    let variable = object
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or("rule has no Variable")?;
    JsonPath::parse(variable)?;
    let (op, operand) = operator(object)?;
    if op.ends_with("Path") {
        JsonPath::parse(
            operand
                .as_str()
                .ok_or("a ...Path operand must be a path string")?,
        )?;
    }
    Ok(())
}

fn is_operator(key: &str) -> bool {
    let base = key.strip_suffix("Path").unwrap_or(key);
    COMPARISONS.contains(&base) && key != "IsPresentPath"
}

/// Evaluates a rule against the state input. `Err` is a runtime error (`States.Runtime`).
pub fn matches(rule: &Value, input: &Value, roots: Roots<'_>) -> Result<bool, String> {
    let object = rule.as_object().ok_or("a choice rule must be an object")?;
    if let Some(rules) = object.get("And").and_then(Value::as_array) {
        for r in rules {
            if !matches(r, input, roots)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(rules) = object.get("Or").and_then(Value::as_array) {
        for r in rules {
            if matches(r, input, roots)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(inner) = object.get("Not") {
        return Ok(!matches(inner, input, roots)?);
    }
    comparison(object, input, roots)
}

/// A `Variable` rule: resolves the variable and a `…Path` operand, then compares.
fn comparison(
    rule: &serde_json::Map<String, Value>,
    input: &Value,
    roots: Roots<'_>,
) -> Result<bool, String> {
    let variable_text = rule
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or("rule has no Variable")?;
    let resolve = |path_text: &str| -> Result<Option<Value>, String> {
        Ok(evaluate(&JsonPath::parse(path_text)?, input, roots))
    };
    let variable = resolve(variable_text)?;
    let (op, operand) = operator(rule)?;

    if op == "IsPresent" {
        return Ok(operand.as_bool() == Some(variable.is_some()));
    }
    let Some(variable) = variable else {
        return Err(format!(
            "Invalid path '{variable_text}': The choice state's condition path references an invalid value."
        ));
    };
    let (base, operand) = match op.strip_suffix("Path") {
        Some(base) => {
            let path = operand
                .as_str()
                .ok_or("a ...Path operand must be a path string")?;
            let value = resolve(path)?.ok_or_else(|| {
                format!("Invalid path '{path}': The choice state's condition path references an invalid value.")
            })?;
            (base, value)
        }
        None => (op, operand.clone()),
    };
    compare(base, &variable, &operand)
}

/// `base` is the operator without its `Path` suffix; `operand` is already resolved.
fn compare(base: &str, variable: &Value, operand: &Value) -> Result<bool, String> {
    if let Some(is) = type_test(base, variable) {
        return Ok(operand.as_bool() == Some(is));
    }
    Ok(match base {
        "StringMatches" => match (variable.as_str(), operand.as_str()) {
            (Some(text), Some(pattern)) => wildcard_match(pattern, text),
            _ => false,
        },
        "BooleanEquals" => variable.as_bool().is_some() && variable.as_bool() == operand.as_bool(),
        _ => {
            // Operands of the wrong type make the rule false, not an error.
            let Some(ordering) = ordering(base, variable, operand) else {
                return Ok(false);
            };
            let relation = base
                .trim_start_matches("String")
                .trim_start_matches("Numeric")
                .trim_start_matches("Timestamp");
            holds(relation, ordering)?
        }
    })
}

/// What an `Is…` operator asks of the variable; `None` for the other operators.
fn type_test(base: &str, variable: &Value) -> Option<bool> {
    Some(match base {
        "IsNull" => variable.is_null(),
        "IsNumeric" => variable.is_number(),
        "IsString" => variable.is_string(),
        "IsBoolean" => variable.is_boolean(),
        "IsTimestamp" => variable.as_str().and_then(timestamp).is_some(),
        _ => return None,
    })
}

/// Orders the variable against the operand as the operator's family reads them: text,
/// numbers or timestamps. `None` when either is not of that type.
fn ordering(base: &str, variable: &Value, operand: &Value) -> Option<Ordering> {
    if base.starts_with("String") {
        variable
            .as_str()
            .zip(operand.as_str())
            .map(|(a, b)| a.cmp(b))
    } else if base.starts_with("Numeric") {
        variable
            .as_f64()
            .zip(operand.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b))
    } else {
        variable
            .as_str()
            .and_then(timestamp)
            .zip(operand.as_str().and_then(timestamp))
            .map(|(a, b)| a.cmp(&b))
    }
}

/// Whether `ordering` satisfies `Equals`, `LessThan`, … .
fn holds(relation: &str, ordering: Ordering) -> Result<bool, String> {
    Ok(match relation {
        "Equals" => ordering == Ordering::Equal,
        "LessThan" => ordering == Ordering::Less,
        "GreaterThan" => ordering == Ordering::Greater,
        "LessThanEquals" => ordering != Ordering::Greater,
        "GreaterThanEquals" => ordering != Ordering::Less,
        other => return Err(format!("unknown comparison {other}")),
    })
}

fn timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    crate::executor::parse_timestamp(text)
}

/// `*` matches any run of characters; `\*` is a literal star.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Token {
        Star,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Token::Char(chars.next().unwrap_or('\\'))),
            '*' => tokens.push(Token::Star),
            other => tokens.push(Token::Char(other)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // matched[i][j]: tokens[..i] match text[..j]
    let mut matched = vec![vec![false; text.len() + 1]; tokens.len() + 1];
    matched[0][0] = true;
    for i in 1..=tokens.len() {
        for j in 0..=text.len() {
            matched[i][j] = match tokens[i - 1] {
                Token::Star => matched[i - 1][j] || (j > 0 && matched[i][j - 1]),
                Token::Char(c) => j > 0 && text[j - 1] == c && matched[i - 1][j - 1],
            };
        }
    }
    matched[tokens.len()][text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &Value, input: &Value) -> Result<bool, String> {
        validate_rule(rule, false)?;
        let vars = crate::variables::Variables::default();
        matches(
            rule,
            input,
            Roots {
                context: &json!({}),
                vars: &vars,
            },
        )
    }

    #[test]
    fn comparisons() {
        let input = json!({"n": 5, "s": "b", "t": "2026-01-02T00:00:00Z", "flag": true, "m": 7});
        assert!(check(&json!({"Variable": "$.n", "NumericEquals": 5}), &input).unwrap());
        assert!(check(
            &json!({"Variable": "$.n", "NumericLessThanPath": "$.m"}),
            &input
        )
        .unwrap());
        assert!(check(
            &json!({"Variable": "$.s", "StringGreaterThanEquals": "b"}),
            &input
        )
        .unwrap());
        assert!(check(&json!({"Variable": "$.s", "StringMatches": "*b"}), &input).unwrap());
        assert!(check(
            &json!({"Variable": "$.t", "TimestampGreaterThan": "2026-01-01T00:00:00+00:00"}),
            &input
        )
        .unwrap());
        assert!(check(
            &json!({"Variable": "$.flag", "BooleanEquals": true}),
            &input
        )
        .unwrap());
        // A type mismatch is false, not an error.
        assert!(!check(&json!({"Variable": "$.s", "NumericEquals": 5}), &input).unwrap());
    }

    #[test]
    fn combinators_and_presence() {
        let input = json!({"n": 5});
        let rule = json!({"And": [
            {"Variable": "$.n", "IsPresent": true},
            {"Not": {"Variable": "$.gone", "IsPresent": true}},
            {"Or": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.n", "IsNumeric": true}]}
        ]});
        assert!(check(&rule, &input).unwrap());
        let missing =
            check(&json!({"Variable": "$.gone", "NumericEquals": 1}), &input).unwrap_err();
        assert!(missing.contains("$.gone"), "{missing}");
    }

    #[test]
    fn malformed_rules_are_refused_at_load() {
        assert!(validate_rule(&json!({"Variable": "$.a"}), false).is_err());
        assert!(validate_rule(
            &json!({"Variable": "$.a", "NumericEquals": 1, "StringEquals": "x"}),
            false
        )
        .is_err());
        assert!(validate_rule(&json!({"NumericEquals": 1}), false).is_err());
        assert!(validate_rule(
            &json!({"Variable": "$.a", "IsNull": true, "Next": "X"}),
            false
        )
        .is_err());
        assert!(validate_rule(&json!({"Condition": "{% true %}", "Next": "X"}), true).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("log-*.txt", "log-2026.txt"));
        assert!(!wildcard_match("log-*.txt", "log-2026.csv"));
        assert!(wildcard_match(r"a\*b", "a*b"));
        assert!(!wildcard_match(r"a\*b", "axb"));
    }
}
