//! Type and range checks of single field values, with AWS's type wording.

use serde_json::{Map, Value};

use super::{messages, Lang, Loc, Report};

/// `{% … %}`: a JSONata expression, which a JSONata state may put where a number goes.
pub(super) fn is_expression(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.starts_with("{%") && s.ends_with("%}") && s.len() >= 4)
}

/// An integer of at least `min` (or, in a JSONata state, an expression).
pub(super) fn integer(report: &mut Report, value: &Value, loc: &Loc, min: i64, lang: Lang) {
    if lang == Lang::Jsonata && is_expression(value) {
        return;
    }
    match value.as_i64() {
        Some(n) if n < min => report.schema(loc, messages::minimum(min)),
        Some(_) => {}
        // Past i64 is still an integer (AWS caps it at run time).
        None if value.is_u64() => {}
        None => report.schema(loc, messages::expected_type("INTEGER")),
    }
}

/// A number within `[min, max]` (or, in a JSONata state, an expression).
pub(super) fn number(
    report: &mut Report,
    value: &Value,
    loc: &Loc,
    range: (f64, Option<f64>),
    lang: Lang,
) {
    if lang == Lang::Jsonata && is_expression(value) {
        return;
    }
    let Some(n) = value.as_f64() else {
        report.schema(loc, messages::expected_type("NUMBER"));
        return;
    };
    let (min, max) = range;
    if n < min {
        report.schema(loc, messages::minimum(min));
    } else if let Some(max) = max.filter(|max| n > *max) {
        report.schema(loc, messages::maximum(max));
    }
}

pub(super) fn string<'a>(report: &mut Report, value: &'a Value, loc: &Loc) -> Option<&'a str> {
    let text = value.as_str();
    if text.is_none() {
        report.schema(loc, messages::expected_type("STRING"));
    }
    text
}

pub(super) fn boolean(report: &mut Report, value: &Value, loc: &Loc) -> Option<bool> {
    let flag = value.as_bool();
    if flag.is_none() {
        report.schema(loc, messages::expected_type("BOOLEAN"));
    }
    flag
}

pub(super) fn object<'a>(
    report: &mut Report,
    value: &'a Value,
    loc: &Loc,
) -> Option<&'a Map<String, Value>> {
    let map = value.as_object();
    if map.is_none() {
        report.schema(loc, messages::expected_type("OBJECT"));
    }
    map
}

pub(super) fn array<'a>(report: &mut Report, value: &'a Value, loc: &Loc) -> Option<&'a [Value]> {
    let items = value.as_array().map(Vec::as_slice);
    if items.is_none() {
        report.schema(loc, messages::expected_type("ARRAY"));
    }
    items
}

/// A string from a fixed set.
pub(super) fn one_of(report: &mut Report, value: &Value, loc: &Loc, allowed: &[&str]) {
    if let Some(text) = string(report, value, loc) {
        if !allowed.contains(&text) {
            report.schema(loc, messages::one_of(allowed));
        }
    }
}

/// At most one of `fields` may be present; more is reported at the first of them. Returns
/// how many are present.
pub(super) fn exclusive(
    report: &mut Report,
    object: &Map<String, Value>,
    loc: &Loc,
    fields: &[&str],
) -> usize {
    let present: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| object.contains_key(*f))
        .collect();
    if present.len() > 1 {
        report.schema(&loc.field(present[0]), messages::exactly_one(&present));
    }
    present.len()
}
