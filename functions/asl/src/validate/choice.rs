//! Choice states: `Choices` and its rules. A JSONPath rule is one comparison of a `Variable`
//! (or an `And`/`Or`/`Not` of nested rules); a JSONata rule is a `Condition`. Only top-level
//! rules carry `Next` (whose target is `graph`'s business).

use serde_json::{Map, Value};

use super::paths::{self, PathKind};
use super::state::State;
use super::{jsonata, messages, values, Lang, Loc, Report};
use crate::fields::CHOICE_RULE_JSONATA;

/// What a comparison operator's operand must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    String,
    Number,
    Boolean,
    Path,
}

/// Every comparison operator and its operand (AWS's set, `Is*` and `StringMatches` included).
const OPERATORS: &[(&str, Operand)] = &[
    ("StringEquals", Operand::String),
    ("StringEqualsPath", Operand::Path),
    ("StringLessThan", Operand::String),
    ("StringLessThanPath", Operand::Path),
    ("StringGreaterThan", Operand::String),
    ("StringGreaterThanPath", Operand::Path),
    ("StringLessThanEquals", Operand::String),
    ("StringLessThanEqualsPath", Operand::Path),
    ("StringGreaterThanEquals", Operand::String),
    ("StringGreaterThanEqualsPath", Operand::Path),
    ("StringMatches", Operand::String),
    ("NumericEquals", Operand::Number),
    ("NumericEqualsPath", Operand::Path),
    ("NumericLessThan", Operand::Number),
    ("NumericLessThanPath", Operand::Path),
    ("NumericGreaterThan", Operand::Number),
    ("NumericGreaterThanPath", Operand::Path),
    ("NumericLessThanEquals", Operand::Number),
    ("NumericLessThanEqualsPath", Operand::Path),
    ("NumericGreaterThanEquals", Operand::Number),
    ("NumericGreaterThanEqualsPath", Operand::Path),
    ("BooleanEquals", Operand::Boolean),
    ("BooleanEqualsPath", Operand::Path),
    ("TimestampEquals", Operand::String),
    ("TimestampEqualsPath", Operand::Path),
    ("TimestampLessThan", Operand::String),
    ("TimestampLessThanPath", Operand::Path),
    ("TimestampGreaterThan", Operand::String),
    ("TimestampGreaterThanPath", Operand::Path),
    ("TimestampLessThanEquals", Operand::String),
    ("TimestampLessThanEqualsPath", Operand::Path),
    ("TimestampGreaterThanEquals", Operand::String),
    ("TimestampGreaterThanEqualsPath", Operand::Path),
    ("IsNull", Operand::Boolean),
    ("IsPresent", Operand::Boolean),
    ("IsNumeric", Operand::Boolean),
    ("IsString", Operand::Boolean),
    ("IsBoolean", Operand::Boolean),
    ("IsTimestamp", Operand::Boolean),
];

const BOOLEAN_OPERATORS: &[&str] = &["And", "Or", "Not"];

pub(super) fn state(report: &mut Report, state: &State<'_>) {
    if let Some(default) = state.get("Default") {
        values::string(report, default, &state.at("Default"));
    }
    let Some(choices) = state.get("Choices") else {
        report.schema(state.loc, messages::required(&["Choices"]));
        return;
    };
    let loc = state.at("Choices");
    let Some(rules) = values::array(report, choices, &loc) else {
        return;
    };
    if rules.is_empty() {
        report.schema(&loc, messages::non_empty("Choices"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rule_loc = loc.index(i);
        let Some(object) = values::object(report, rule, &rule_loc) else {
            continue;
        };
        top_rule(report, object, &rule_loc, state.lang);
    }
}

/// A rule of `Choices` itself: it has `Next`, and may `Assign` (and `Output` in JSONata).
fn top_rule(report: &mut Report, rule: &Map<String, Value>, loc: &Loc, lang: Lang) {
    match rule.get("Next") {
        Some(next) => {
            values::string(report, next, &loc.field("Next"));
        }
        None => report.schema(loc, messages::required(&["Next"])),
    }
    if let Some(assign) = rule.get("Assign") {
        let assign_loc = loc.field("Assign");
        if values::object(report, assign, &assign_loc).is_some() && lang == Lang::JsonPath {
            paths::template(report, assign, &assign_loc);
        }
    }
    match lang {
        Lang::JsonPath => {
            jsonata::other_language_fields(report, rule, loc, lang, &["Output"]);
            comparison(report, rule, loc, &["Next", "Assign", "Output"]);
        }
        Lang::Jsonata => jsonata_rule(report, rule, loc),
    }
}

fn jsonata_rule(report: &mut Report, rule: &Map<String, Value>, loc: &Loc) {
    for key in rule.keys() {
        if !CHOICE_RULE_JSONATA.contains(&key.as_str()) {
            report.schema(loc, messages::not_supported(key));
        }
    }
    match rule.get("Condition") {
        None => report.schema(loc, messages::required(&["Condition"])),
        Some(condition) if !(condition.is_boolean() || values::is_expression(condition)) => {
            report.schema(&loc.field("Condition"), messages::expected_type("BOOLEAN"));
        }
        Some(_) => {}
    }
}

/// A JSONPath rule at any depth; `extra` are the fields its position adds.
fn comparison(report: &mut Report, rule: &Map<String, Value>, loc: &Loc, extra: &[&str]) {
    let operator = |key: &str| OPERATORS.iter().find(|(name, _)| *name == key);
    for key in rule.keys() {
        let known = key == "Comment"
            || key == "Variable"
            || extra.contains(&key.as_str())
            || BOOLEAN_OPERATORS.contains(&key.as_str())
            || operator(key).is_some();
        if !known {
            report.schema(loc, messages::not_supported(key));
        }
    }
    let booleans: Vec<&str> = BOOLEAN_OPERATORS
        .iter()
        .copied()
        .filter(|k| rule.contains_key(*k))
        .collect();
    let comparisons: Vec<(&str, Operand)> = OPERATORS
        .iter()
        .copied()
        .filter(|(name, _)| rule.contains_key(*name))
        .collect();
    if booleans.len() + comparisons.len() != 1 {
        report.schema(loc, messages::ONE_COMPARISON);
    }
    for name in booleans {
        boolean_operator(report, rule, loc, name);
    }
    if comparisons.is_empty() {
        return;
    }
    match rule.get("Variable") {
        None => report.schema(loc, messages::required(&["Variable"])),
        Some(variable) => {
            let var_loc = loc.field("Variable");
            paths::path_field(
                report,
                variable,
                &var_loc,
                "Variable",
                PathKind::Path,
                false,
            );
        }
    }
    for (name, operand) in comparisons {
        if let Some(value) = rule.get(name) {
            operand_value(report, value, &loc.field(name), name, operand);
        }
    }
}

/// `And`/`Or`: a non-empty array of rules; `Not`: one rule.
fn boolean_operator(report: &mut Report, rule: &Map<String, Value>, loc: &Loc, name: &str) {
    let Some(value) = rule.get(name) else {
        return;
    };
    let op_loc = loc.field(name);
    if name == "Not" {
        if let Some(inner) = values::object(report, value, &op_loc) {
            comparison(report, inner, &op_loc, &[]);
        }
        return;
    }
    let Some(inner_rules) = values::array(report, value, &op_loc) else {
        return;
    };
    if inner_rules.is_empty() {
        report.schema(&op_loc, messages::non_empty(name));
    }
    for (i, inner) in inner_rules.iter().enumerate() {
        let inner_loc = op_loc.index(i);
        if let Some(inner) = values::object(report, inner, &inner_loc) {
            comparison(report, inner, &inner_loc, &[]);
        }
    }
}

fn operand_value(report: &mut Report, value: &Value, loc: &Loc, name: &str, operand: Operand) {
    let expected = match operand {
        Operand::Path => {
            paths::path_field(report, value, loc, name, PathKind::Path, false);
            return;
        }
        Operand::String if value.is_string() => return,
        Operand::Number if value.is_number() => return,
        Operand::Boolean if value.is_boolean() => return,
        Operand::String => "STRING",
        Operand::Number => "NUMBER",
        Operand::Boolean => "BOOLEAN",
    };
    report.schema(loc, messages::expected_type(expected));
}
