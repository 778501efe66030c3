//! The wording of every message, in one place so it can be compared with AWS's.
//!
//! Wordings marked "AWS" are the service's own, as recorded from real
//! `validate-state-machine-definition` responses in public emulator test suites and bug
//! reports; the others are ours, in the same style, for checks whose AWS text is not known.

/// AWS, for an empty or non-object definition.
pub(super) const NOT_AN_OBJECT: &str = "Definition must be a valid JSON object";

/// AWS (`MISSING_END_STATE`, no location).
pub(super) const NO_TERMINAL_STATE: &str = "Workflow has no terminal state";

/// AWS, a JSONata machine with a state declaring JSONPath.
pub(super) const QUERY_LANGUAGE_DOWNGRADE: &str =
    "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine";

/// AWS: a field the object does not have (`Field 'TimeoutSeconds' is not supported`).
pub(super) fn not_supported(field: &str) -> String {
    format!("Field '{field}' is not supported")
}

/// AWS: `These fields are required: [States, StartAt]`.
pub(super) fn required(fields: &[&str]) -> String {
    format!("These fields are required: [{}]", fields.join(", "))
}

/// AWS: `Expected value of type [STRING]`.
pub(super) fn expected_type(kind: &str) -> String {
    format!("Expected value of type [{kind}]")
}

/// AWS: `Value should be one of the following: [JSONPath, JSONata]`.
pub(super) fn one_of(allowed: &[&str]) -> String {
    format!(
        "Value should be one of the following: [{}]",
        allowed.join(", ")
    )
}

/// AWS: `Minimum value is 0`.
pub(super) fn minimum(value: impl std::fmt::Display) -> String {
    format!("Minimum value is {value}")
}

/// Ours, in the style of `minimum`.
pub(super) fn maximum(value: impl std::fmt::Display) -> String {
    format!("Maximum value is {value}")
}

/// Ours: fields that exclude each other (`Next`/`End`, `Seconds`/`SecondsPath`, …).
pub(super) fn exactly_one(fields: &[&str]) -> String {
    format!(
        "Exactly one of these fields is required: [{}]",
        fields.join(", ")
    )
}

/// Ours: an array that must not be empty.
pub(super) fn non_empty(field: &str) -> String {
    format!("The field '{field}' must contain at least one item")
}

/// AWS: a dangling transition names the target, always as `'Next'` (also for `Default`,
/// `StartAt` and a catcher's `Next`).
pub(super) fn missing_target(target: &str) -> String {
    format!("Missing 'Next' target: {target}")
}

/// AWS, with the trailing full stop.
pub(super) fn unreachable(state: &str) -> String {
    format!("State \"{state}\" is not reachable.")
}

/// Ours, under AWS's `DUPLICATE_STATE_NAME`.
pub(super) fn duplicate_state(state: &str) -> String {
    format!("Duplicate State name: {state}")
}

/// AWS, for `InputPath`, `OutputPath`, `ItemsPath`, a Choice rule's `Variable`, ….
pub(super) fn invalid_path(field: &str) -> String {
    format!("The value for the field '{field}' must be a valid JSONPath")
}

/// AWS, for `ResultPath` and the `*Path` fields that must name one node.
pub(super) fn invalid_reference_path(field: &str) -> String {
    format!("The value for the field '{field}' must be a valid ReferencePath")
}

/// AWS, for a `key.$` field (and `ErrorPath`/`CausePath`, which also take intrinsics).
pub(super) fn invalid_path_or_intrinsic(field: &str) -> String {
    format!("The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call")
}

/// AWS: `The QueryLanguage is set to 'JSONata', but field 'InputPath' is only supported for
/// the 'JSONPath' QueryLanguage` (and the mirror for `Output`, `Arguments`, `Items`).
pub(super) fn wrong_language(state_language: &str, field: &str, field_language: &str) -> String {
    format!(
        "The QueryLanguage is set to '{state_language}', but field '{field}' is only supported for the '{field_language}' QueryLanguage"
    )
}

/// Ours, under AWS's `INVALID_RESOURCE`.
pub(super) fn invalid_resource(resource: &str) -> String {
    format!("The value of the 'Resource' field is not a valid ARN: {resource}")
}

/// Ours: a Choice rule names no comparison, or several.
pub(super) const ONE_COMPARISON: &str =
    "A Choice Rule must have exactly one comparison operator, or one of And, Or, Not";

/// Ours: `States.ALL` shares its `ErrorEquals` (the spec: it MUST appear alone).
pub(super) const STATES_ALL_ALONE: &str =
    "'States.ALL' must appear alone in the 'ErrorEquals' array";

/// Ours: a retrier or catcher matching `States.ALL` is not the last one (the spec: it MUST be).
pub(super) fn states_all_last(field: &str) -> String {
    format!("The '{field}' element matching 'States.ALL' must be the last one")
}

/// Ours.
pub(super) const HEARTBEAT_BELOW_TIMEOUT: &str =
    "The field 'HeartbeatSeconds' must be smaller than 'TimeoutSeconds'";

/// Ours.
pub(super) fn invalid_timestamp(field: &str) -> String {
    format!("The value for the field '{field}' must be a valid RFC3339 timestamp")
}

/// Ours, under AWS's warning code `NO_DOLLAR`.
pub(super) fn no_dollar(field: &str) -> String {
    format!("The value for the field '{field}' looks like a JSONPath or intrinsic function, but the field name does not end with '.$': it is passed as a literal string")
}

/// Ours, under AWS's warning code `NO_PATH`.
pub(super) fn no_path(field: &str) -> String {
    format!("The value for the field '{field}' looks like a path, but the field name does not end with 'Path': it is passed as a literal string")
}

/// Ours, under AWS's warning code `PASS_RESULT_IS_STATIC`.
pub(super) fn pass_result_is_static(field: &str) -> String {
    format!("The field '{field}' in a Pass state's 'Result' is static: paths are not resolved there (use 'Parameters')")
}

/// Ours: an `Assign` key that is not a usable variable name.
pub(super) fn invalid_variable(name: &str) -> String {
    format!("Invalid variable name '{name}': a letter or '_' then letters, digits or '_', at most 80 characters, not 'states'")
}

/// Ours: an inner scope assigning an outer scope's variable.
pub(super) fn outer_variable(name: &str) -> String {
    format!("Variable '{name}' is assigned in an outer scope and cannot be assigned inside a Map or Parallel state")
}
