//! Why a JSONata field failed, worded as Step Functions words it.
//!
//! Every failure is `States.QueryEvaluationError` ("Handling expression errors",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>). The causes
//! follow what the service reports, e.g. "The JSONata expression '$states.input.pushLocation'
//! specified for the field 'Arguments/Input/pushLocation' returned nothing (undefined)."; the
//! executor puts its "An error occurred while executing the state 'S' (entered at the event id
//! #N). " prefix in front, as it does for every runtime error.

use std::fmt;

use crate::Failure;

/// The error name of every JSONata failure; Retry and Catch match it.
pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// Where in a state an expression was written, named as the service names it: `/` before each
/// object key and `[i]` after each array index, relative to the state (`Output`,
/// `Arguments/Input/id`, `Items[1]`, `Choices[0]/Condition`, `Catch[1]/Output/v`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A top-level field of the state, such as `Output` or `TimeoutSeconds`.
    pub fn new(field: &str) -> Self {
        Self(field.to_string())
    }

    /// The value of `key` in the object at this path.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}/{key}", self.0))
    }

    /// The element `index` of the array at this path.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JSONata expression in a field that could not give the field its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// JSONata raised an error (syntax, type, a Step Functions function refusing its arguments).
    /// `detail` is the JSONata code and message, "T2001: The left side of …", as the service
    /// prints them.
    #[error("The JSONata expression '{expression}' specified for the field '{field}' threw an error during evaluation: {detail}")]
    Evaluation {
        expression: String,
        field: FieldPath,
        detail: String,
    },
    /// JSON has no undefined: a field whose expression evaluates to nothing fails, at any depth
    /// of an object or array.
    #[error("The JSONata expression '{expression}' specified for the field '{field}' returned nothing (undefined).")]
    Undefined {
        expression: String,
        field: FieldPath,
    },
    /// The field takes values of another type (a Choice `Condition` takes a boolean, `Items` an
    /// array).
    #[error("The JSONata expression '{expression}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{actual}'")]
    UnexpectedType {
        expression: String,
        field: FieldPath,
        expected: &'static str,
        actual: &'static str,
    },
}

impl QueryError {
    /// The field the failing expression was written in.
    pub fn field(&self) -> &FieldPath {
        match self {
            Self::Evaluation { field, .. }
            | Self::Undefined { field, .. }
            | Self::UnexpectedType { field, .. } => field,
        }
    }
}

impl From<QueryError> for Failure {
    fn from(error: QueryError) -> Self {
        Failure::new(QUERY_EVALUATION_ERROR, error.to_string())
    }
}

/// An error code JSONata does not have: its detail is printed without a code, as the service
/// prints its own limits ("Expression evaluation memory limit exceeded: …").
pub(super) const UNCODED: &str = "";

/// The code and message as the service prints a JSONata error.
pub(super) fn detail(error: &jlens_core::Error) -> String {
    if error.code() == UNCODED {
        error.message()
    } else {
        format!("{}: {}", error.code(), error.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_are_named_as_the_service_names_them() {
        let output = FieldPath::new("Output");
        assert_eq!(output.key("a").key("b").index(0).as_str(), "Output/a/b[0]");
        assert_eq!(
            FieldPath::new("Choices")
                .index(1)
                .key("Condition")
                .to_string(),
            "Choices[1]/Condition"
        );
    }

    #[test]
    fn failures_are_query_evaluation_errors() {
        // The cause the service gave for a missing input field inside Arguments.
        let failure = Failure::from(QueryError::Undefined {
            expression: "$states.input.pushLocation".into(),
            field: FieldPath::new("Arguments").key("Input").key("pushLocation"),
        });
        assert_eq!(failure.error, "States.QueryEvaluationError");
        assert_eq!(
            failure.cause,
            "The JSONata expression '$states.input.pushLocation' specified for the field \
             'Arguments/Input/pushLocation' returned nothing (undefined)."
        );
    }
}
