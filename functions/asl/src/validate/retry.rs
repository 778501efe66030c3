//! `Retry` and `Catch`: each element's fields, its `ErrorEquals`, and `States.ALL` alone in
//! the last element (the spec's rule). A catcher's `Next` target is `graph`'s business.

use serde_json::{Map, Value};

use super::paths::{self, PathKind};
use super::state::State;
use super::{jsonata, messages, values, Lang, Loc, Report};
use crate::fields::{CATCHER, RETRIER};

const STATES_ALL: &str = "States.ALL";

pub(super) fn retriers_and_catchers(report: &mut Report, state: &State<'_>) {
    for (field, check) in [
        (
            "Retry",
            retrier as fn(&mut Report, &Map<String, Value>, &Loc, Lang),
        ),
        ("Catch", catcher),
    ] {
        let Some(value) = state.get(field) else {
            continue;
        };
        let loc = state.at(field);
        let Some(items) = values::array(report, value, &loc) else {
            continue;
        };
        let last = items.len().saturating_sub(1);
        for (i, item) in items.iter().enumerate() {
            let item_loc = loc.index(i);
            let Some(object) = values::object(report, item, &item_loc) else {
                continue;
            };
            let matches_all = error_equals(report, object, &item_loc);
            if matches_all && i != last {
                report.schema(
                    &item_loc.field("ErrorEquals"),
                    messages::states_all_last(field),
                );
            }
            check(report, object, &item_loc, state.lang);
        }
    }
}

/// Checks `ErrorEquals`; whether it matches `States.ALL`.
fn error_equals(report: &mut Report, object: &Map<String, Value>, loc: &Loc) -> bool {
    let Some(value) = object.get("ErrorEquals") else {
        report.schema(loc, messages::required(&["ErrorEquals"]));
        return false;
    };
    let loc = loc.field("ErrorEquals");
    let Some(names) = values::array(report, value, &loc) else {
        return false;
    };
    if names.is_empty() {
        report.schema(&loc, messages::non_empty("ErrorEquals"));
    }
    for (i, name) in names.iter().enumerate() {
        values::string(report, name, &loc.index(i));
    }
    let matches_all = names.iter().any(|n| n.as_str() == Some(STATES_ALL));
    if matches_all && names.len() > 1 {
        report.schema(&loc, messages::STATES_ALL_ALONE);
    }
    matches_all
}

fn unknown_fields(report: &mut Report, object: &Map<String, Value>, loc: &Loc, allowed: &[&str]) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            report.schema(loc, messages::not_supported(key));
        }
    }
}

fn retrier(report: &mut Report, object: &Map<String, Value>, loc: &Loc, lang: Lang) {
    unknown_fields(report, object, loc, RETRIER);
    for (field, min) in [
        ("IntervalSeconds", 1),
        ("MaxAttempts", 0),
        ("MaxDelaySeconds", 1),
    ] {
        if let Some(value) = object.get(field) {
            values::integer(report, value, &loc.field(field), min, lang);
        }
    }
    if let Some(rate) = object.get("BackoffRate") {
        values::number(report, rate, &loc.field("BackoffRate"), (1.0, None), lang);
    }
    if let Some(jitter) = object.get("JitterStrategy") {
        values::one_of(
            report,
            jitter,
            &loc.field("JitterStrategy"),
            &["FULL", "NONE"],
        );
    }
    if let Some(comment) = object.get("Comment") {
        values::string(report, comment, &loc.field("Comment"));
    }
}

fn catcher(report: &mut Report, object: &Map<String, Value>, loc: &Loc, lang: Lang) {
    unknown_fields(report, object, loc, CATCHER);
    jsonata::other_language_fields(report, object, loc, lang, CATCHER);
    match object.get("Next") {
        Some(next) => {
            values::string(report, next, &loc.field("Next"));
        }
        None => report.schema(loc, messages::required(&["Next"])),
    }
    if let Some(path) = object.get("ResultPath").filter(|_| lang == Lang::JsonPath) {
        let path_loc = loc.field("ResultPath");
        paths::path_field(
            report,
            path,
            &path_loc,
            "ResultPath",
            PathKind::Result,
            true,
        );
    }
    if let Some(assign) = object.get("Assign") {
        let assign_loc = loc.field("Assign");
        if values::object(report, assign, &assign_loc).is_some() && lang == Lang::JsonPath {
            paths::template(report, assign, &assign_loc);
        }
    }
    if let Some(comment) = object.get("Comment") {
        values::string(report, comment, &loc.field("Comment"));
    }
}
