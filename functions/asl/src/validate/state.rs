//! The structure of a (sub-)machine and of each state: known fields, required fields,
//! field types and the fields each state type adds. Transitions between states are
//! `graph`'s business.

use serde_json::{Map, Value};

use super::paths::{self, PathKind};
use super::{choice, codes, jsonata, messages, retry, values, Lang, Loc, Report};
use crate::fields::{self, StateType};

/// Which object holds `StartAt` and `States`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Top,
    Branch,
    Processor,
}

/// `StartAt`, `States` and the container's other fields, then every state in it.
pub(super) fn machine(
    report: &mut Report,
    object: &Map<String, Value>,
    loc: &Loc,
    machine_lang: Lang,
    container: Container,
) {
    let allowed = match container {
        Container::Top => fields::TOP,
        Container::Branch => fields::BRANCH,
        Container::Processor => fields::PROCESSOR,
    };
    unknown_fields(report, object, loc, allowed);
    let missing: Vec<&str> = ["States", "StartAt"]
        .into_iter()
        .filter(|f| !object.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        report.schema(loc, messages::required(&missing));
    }
    if let Some(comment) = object.get("Comment") {
        values::string(report, comment, &loc.field("Comment"));
    }
    if let Some(start) = object.get("StartAt") {
        values::string(report, start, &loc.field("StartAt"));
    }
    if let Some(config) = object.get("ProcessorConfig") {
        processor_config(report, config, &loc.field("ProcessorConfig"));
    }
    let states_loc = loc.field("States");
    let Some(states) = object
        .get("States")
        .and_then(|s| values::object(report, s, &states_loc))
    else {
        return;
    };
    for (name, value) in states {
        state(report, value, &states_loc.field(name), machine_lang);
    }
}

fn unknown_fields(report: &mut Report, object: &Map<String, Value>, loc: &Loc, allowed: &[&str]) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            report.schema(loc, messages::not_supported(key));
        }
    }
}

fn processor_config(report: &mut Report, value: &Value, loc: &Loc) {
    let Some(config) = values::object(report, value, loc) else {
        return;
    };
    unknown_fields(report, config, loc, &["Mode", "ExecutionType"]);
    if let Some(mode) = config.get("Mode") {
        values::one_of(report, mode, &loc.field("Mode"), &["INLINE", "DISTRIBUTED"]);
    }
    if let Some(kind) = config.get("ExecutionType") {
        values::one_of(
            report,
            kind,
            &loc.field("ExecutionType"),
            &["STANDARD", "EXPRESS"],
        );
    }
}

/// One state as the checks of its type see it.
pub(super) struct State<'a> {
    pub(super) object: &'a Map<String, Value>,
    pub(super) loc: &'a Loc,
    pub(super) kind: StateType,
    pub(super) lang: Lang,
    pub(super) machine_lang: Lang,
}

impl<'a> State<'a> {
    /// The field, when this state type has it and the state's language uses it (a field of
    /// the other language is reported once, not checked as well).
    pub(super) fn get(&self, field: &str) -> Option<&'a Value> {
        let usable = self.kind.fields().contains(&field) && jsonata::belongs_to(field, self.lang);
        self.object.get(field).filter(|_| usable)
    }

    pub(super) fn at(&self, field: &str) -> Loc {
        self.loc.field(field)
    }
}

/// Everything about one state but its transitions' targets.
pub(super) fn state(report: &mut Report, value: &Value, loc: &Loc, machine_lang: Lang) {
    let Some(object) = values::object(report, value, loc) else {
        return;
    };
    let Some(type_value) = object.get("Type") else {
        report.schema(loc, messages::required(&["Type"]));
        return;
    };
    let Some(kind) = type_value.as_str().and_then(StateType::parse) else {
        report.schema(&loc.field("Type"), messages::one_of(&StateType::NAMES));
        return;
    };
    let (lang, downgraded) = jsonata::state_language(report, object, loc, machine_lang);
    unknown_fields(report, object, loc, kind.fields());
    if !downgraded {
        jsonata::other_language_fields(report, object, loc, lang, kind.fields());
    }
    let state = State {
        object,
        loc,
        kind,
        lang,
        machine_lang,
    };
    transition(report, &state);
    common(report, &state);
    match kind {
        StateType::Pass => pass(report, &state),
        StateType::Task => task(report, &state),
        StateType::Choice => choice::state(report, &state),
        StateType::Wait => wait(report, &state),
        StateType::Succeed => {}
        StateType::Fail => fail(report, &state),
        StateType::Parallel => parallel(report, &state),
        StateType::Map => map(report, &state),
    }
    if kind != StateType::Choice {
        retry::retriers_and_catchers(report, &state);
    }
    if lang == Lang::Jsonata {
        jsonata::expressions(report, object, loc);
    }
}

/// `Next` xor `End` on the states that move on.
fn transition(report: &mut Report, state: &State<'_>) {
    if !state.kind.has_transition() {
        return;
    }
    let next = state.object.get("Next");
    if let Some(next) = next {
        values::string(report, next, &state.at("Next"));
    }
    let end = state
        .object
        .get("End")
        .and_then(|end| values::boolean(report, end, &state.at("End")));
    if next.is_some() == (end == Some(true)) {
        report.schema(state.loc, messages::exactly_one(&["Next", "End"]));
    }
}

/// The fields several state types share.
fn common(report: &mut Report, state: &State<'_>) {
    if let Some(comment) = state.get("Comment") {
        values::string(report, comment, &state.at("Comment"));
    }
    for field in ["InputPath", "OutputPath"] {
        if let Some(path) = state.get(field) {
            paths::path_field(report, path, &state.at(field), field, PathKind::Path, true);
        }
    }
    if let Some(path) = state.get("ResultPath") {
        let loc = state.at("ResultPath");
        paths::path_field(report, path, &loc, "ResultPath", PathKind::Result, true);
    }
    for field in ["Parameters", "ResultSelector", "Assign"] {
        if let Some(template) = state.get(field) {
            let loc = state.at(field);
            if values::object(report, template, &loc).is_some() && state.lang == Lang::JsonPath {
                paths::template(report, template, &loc);
            }
        }
    }
}

fn pass(report: &mut Report, state: &State<'_>) {
    if let Some(result) = state.get("Result") {
        static_result(report, result, &state.at("Result"));
    }
}

/// `key.$` in a Pass state's `Result` is kept as it is: likely meant for `Parameters`.
fn static_result(report: &mut Report, value: &Value, loc: &Loc) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let field_loc = loc.field(key);
                if key.ends_with(".$") {
                    report.warning(
                        codes::PASS_RESULT_IS_STATIC,
                        &field_loc,
                        messages::pass_result_is_static(key),
                    );
                } else {
                    static_result(report, field, &field_loc);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                static_result(report, item, &loc.index(i));
            }
        }
        _ => {}
    }
}

fn task(report: &mut Report, state: &State<'_>) {
    match state.get("Resource") {
        None => report.schema(state.loc, messages::required(&["Resource"])),
        Some(resource) => {
            let loc = state.at("Resource");
            if let Some(arn) = values::string(report, resource, &loc) {
                if !is_arn(arn) {
                    report.error(
                        codes::INVALID_RESOURCE,
                        &loc,
                        messages::invalid_resource(arn),
                    );
                }
            }
        }
    }
    let timeout = seconds(report, state, "TimeoutSeconds");
    let heartbeat = seconds(report, state, "HeartbeatSeconds");
    if let (Some(heartbeat), Some(timeout)) = (heartbeat, timeout) {
        if heartbeat >= timeout {
            report.schema(
                &state.at("HeartbeatSeconds"),
                messages::HEARTBEAT_BELOW_TIMEOUT,
            );
        }
    }
    if let Some(credentials) = state.get("Credentials") {
        let loc = state.at("Credentials");
        if values::object(report, credentials, &loc).is_some() && state.lang == Lang::JsonPath {
            paths::template(report, credentials, &loc);
        }
    }
    if let Some(arguments) = state.get("Arguments") {
        if !arguments.is_object() && !values::is_expression(arguments) {
            report.schema(&state.at("Arguments"), messages::expected_type("OBJECT"));
        }
    }
}

/// `arn:partition:service:region:account:resource`, the last part possibly with colons.
fn is_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty()
}

/// `<field>` (a positive integer) or `<field>Path`, not both; the integer when given.
fn seconds(report: &mut Report, state: &State<'_>, field: &str) -> Option<i64> {
    let path_field = format!("{field}Path");
    values::exclusive(report, state.object, state.loc, &[field, &path_field]);
    if let Some(path) = state.get(&path_field) {
        let loc = state.at(&path_field);
        paths::path_field(report, path, &loc, &path_field, PathKind::Reference, false);
    }
    let value = state.get(field)?;
    values::integer(report, value, &state.at(field), 1, state.lang);
    value.as_i64().filter(|n| *n >= 1)
}

fn wait(report: &mut Report, state: &State<'_>) {
    let fields = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"];
    let present = fields
        .iter()
        .filter(|f| state.object.contains_key(**f))
        .count();
    if present != 1 {
        let loc = if present == 0 {
            state.loc.clone()
        } else {
            state.at(fields
                .iter()
                .find(|f| state.object.contains_key(**f))
                .unwrap_or(&"Seconds"))
        };
        report.schema(&loc, messages::exactly_one(&fields));
    }
    if let Some(seconds) = state.get("Seconds") {
        values::integer(report, seconds, &state.at("Seconds"), 0, state.lang);
    }
    if let Some(timestamp) = state.get("Timestamp") {
        let loc = state.at("Timestamp");
        let is_expression = state.lang == Lang::Jsonata && values::is_expression(timestamp);
        if let Some(text) = values::string(report, timestamp, &loc) {
            if !is_expression && chrono::DateTime::parse_from_rfc3339(text).is_err() {
                report.schema(&loc, messages::invalid_timestamp("Timestamp"));
            }
        }
    }
    for field in ["SecondsPath", "TimestampPath"] {
        if let Some(path) = state.get(field) {
            let loc = state.at(field);
            paths::path_field(report, path, &loc, field, PathKind::Reference, false);
        }
    }
}

fn fail(report: &mut Report, state: &State<'_>) {
    for (field, path_field) in [("Error", "ErrorPath"), ("Cause", "CausePath")] {
        values::exclusive(report, state.object, state.loc, &[field, path_field]);
        if let Some(value) = state.get(field) {
            let loc = state.at(field);
            let text = values::string(report, value, &loc);
            if state.lang == Lang::JsonPath && text.is_some_and(paths::looks_like_path) {
                report.warning(codes::NO_PATH, &loc, messages::no_path(field));
            }
        }
        if let Some(value) = state.get(path_field) {
            paths::path_or_intrinsic(report, value, &state.at(path_field), path_field);
        }
    }
}

fn parallel(report: &mut Report, state: &State<'_>) {
    let Some(branches) = state.get("Branches") else {
        report.schema(state.loc, messages::required(&["Branches"]));
        return;
    };
    let loc = state.at("Branches");
    let Some(branches) = values::array(report, branches, &loc) else {
        return;
    };
    if branches.is_empty() {
        report.schema(&loc, messages::non_empty("Branches"));
    }
    for (i, branch) in branches.iter().enumerate() {
        let branch_loc = loc.index(i);
        if let Some(branch) = values::object(report, branch, &branch_loc) {
            machine(
                report,
                branch,
                &branch_loc,
                state.machine_lang,
                Container::Branch,
            );
        }
    }
}

fn map(report: &mut Report, state: &State<'_>) {
    let processors = ["ItemProcessor", "Iterator"];
    match values::exclusive(report, state.object, state.loc, &processors) {
        0 => report.schema(state.loc, messages::required(&["ItemProcessor"])),
        _ => {
            for field in processors {
                let Some(value) = state.get(field) else {
                    continue;
                };
                let loc = state.at(field);
                if let Some(processor) = values::object(report, value, &loc) {
                    machine(
                        report,
                        processor,
                        &loc,
                        state.machine_lang,
                        Container::Processor,
                    );
                }
            }
        }
    }
    map_items(report, state);
    map_limits(report, state);
}

/// Where the items come from and how each is shaped.
fn map_items(report: &mut Report, state: &State<'_>) {
    if let Some(path) = state.get("ItemsPath") {
        let loc = state.at("ItemsPath");
        paths::path_field(report, path, &loc, "ItemsPath", PathKind::Path, false);
    }
    if let Some(items) = state.get("Items") {
        if !items.is_array() && !values::is_expression(items) {
            report.schema(&state.at("Items"), messages::expected_type("ARRAY"));
        }
    }
    values::exclusive(
        report,
        state.object,
        state.loc,
        &["ItemSelector", "Parameters"],
    );
    if let Some(selector) = state.get("ItemSelector") {
        let loc = state.at("ItemSelector");
        if values::object(report, selector, &loc).is_some() && state.lang == Lang::JsonPath {
            paths::template(report, selector, &loc);
        }
    }
    for field in ["ItemReader", "ItemBatcher", "ResultWriter"] {
        if let Some(value) = state.get(field) {
            values::object(report, value, &state.at(field));
        }
    }
    if let Some(label) = state.get("Label") {
        values::string(report, label, &state.at("Label"));
    }
}

/// Concurrency and failure tolerance, each a value or a path to one.
fn map_limits(report: &mut Report, state: &State<'_>) {
    let pairs = [
        ("MaxConcurrency", "MaxConcurrencyPath"),
        ("ToleratedFailureCount", "ToleratedFailureCountPath"),
        (
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
        ),
    ];
    for (field, path_field) in pairs {
        values::exclusive(report, state.object, state.loc, &[field, path_field]);
        if let Some(path) = state.get(path_field) {
            let loc = state.at(path_field);
            paths::path_field(report, path, &loc, path_field, PathKind::Reference, false);
        }
        let Some(value) = state.get(field) else {
            continue;
        };
        let loc = state.at(field);
        if field == "ToleratedFailurePercentage" {
            values::number(report, value, &loc, (0.0, Some(100.0)), state.lang);
        } else {
            values::integer(report, value, &loc, 0, state.lang);
        }
    }
}
