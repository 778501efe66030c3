//! Static checks of a state machine definition, reported as AWS's
//! `ValidateStateMachineDefinition` reports them: a severity, a code, a message and a JSON
//! pointer-like location (`/States/A/Next`, `/States/C/Choices[0]/Next`).
//!
//! It works on the raw JSON, not on the interpreter's model, and accepts the whole AWS field
//! set (JSONata, Variables, distributed Map, …) whether or not the local runner implements it:
//! the point is to refuse locally what the service refuses at deploy time. Codes and wordings
//! follow what AWS returns where it is known (see `messages`); where AWS's exact wording is
//! not known the message keeps AWS's code and says plainly what is wrong.

mod choice;
mod graph;
mod jsonata;
mod messages;
mod paths;
mod retry;
mod state;
mod values;
mod variables;

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::fields::StateType;

/// The diagnostic codes this validator emits (AWS's names).
pub mod codes {
    pub const SCHEMA_VALIDATION_FAILED: &str = "SCHEMA_VALIDATION_FAILED";
    pub const INVALID_JSON_DESCRIPTION: &str = "INVALID_JSON_DESCRIPTION";
    pub const INVALID_RESOURCE: &str = "INVALID_RESOURCE";
    pub const MISSING_END_STATE: &str = "MISSING_END_STATE";
    pub const DUPLICATE_STATE_NAME: &str = "DUPLICATE_STATE_NAME";
    pub const MISSING_TRANSITION_TARGET: &str = "MISSING_TRANSITION_TARGET";
    pub const INVALID_JSONATA_EXPRESSION: &str = "INVALID_JSONATA_EXPRESSION";
    /// Warning: a field whose value looks like a path or intrinsic lacks the `.$` suffix.
    pub const NO_DOLLAR: &str = "NO_DOLLAR";
    /// Warning: a value looks like a path but the field name does not end with `Path`.
    pub const NO_PATH: &str = "NO_PATH";
    /// Warning: a Pass state's `Result` holds what looks like a path; it stays literal.
    pub const PASS_RESULT_IS_STATIC: &str = "PASS_RESULT_IS_STATIC";
}

/// `ERROR` blocks creating the state machine; `WARNING` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "ERROR",
            Self::Warning => "WARNING",
        })
    }
}

/// One finding, shaped like the API's `ValidateStateMachineDefinitionDiagnostic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    /// Where in the definition, when AWS gives one (`MISSING_END_STATE` has none).
    pub location: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `ERROR CODE at /States/A/Next: message` (without ` at …` when there is no location).
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.severity, self.code)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Checks a definition given as text: what is not JSON is `INVALID_JSON_DESCRIPTION`.
pub fn validate_str(text: &str) -> Vec<Diagnostic> {
    if text.trim().is_empty() {
        return vec![not_an_object()];
    }
    match serde_json::from_str::<Value>(text) {
        Ok(definition) => validate(&definition),
        Err(e) => vec![Diagnostic {
            severity: Severity::Error,
            code: codes::INVALID_JSON_DESCRIPTION.to_string(),
            message: e.to_string(),
            location: Some(format!("line {}, column {}", e.line(), e.column())),
        }],
    }
}

/// Every diagnostic for a parsed definition, errors and warnings, in a stable order.
pub fn validate(definition: &Value) -> Vec<Diagnostic> {
    let Some(top) = definition.as_object() else {
        return vec![not_an_object()];
    };
    let mut report = Report::default();
    let language = top_level(&mut report, top);
    state::machine(
        &mut report,
        top,
        &Loc::root(),
        language,
        state::Container::Top,
    );
    variables::check(&mut report, top);
    graph::check(&mut report, top);
    report.diagnostics
}

fn not_an_object() -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: codes::SCHEMA_VALIDATION_FAILED.to_string(),
        message: messages::NOT_AN_OBJECT.to_string(),
        location: None,
    }
}

/// The top level's own fields; returns the machine's query language.
fn top_level(report: &mut Report, top: &Map<String, Value>) -> Lang {
    let root = Loc::root();
    if let Some(timeout) = top.get("TimeoutSeconds") {
        values::integer(
            report,
            timeout,
            &root.field("TimeoutSeconds"),
            1,
            Lang::JsonPath,
        );
    }
    if let Some(version) = top.get("Version") {
        values::string(report, version, &root.field("Version"));
    }
    jsonata::declared(
        report,
        top.get("QueryLanguage"),
        &root.field("QueryLanguage"),
    )
    .unwrap_or(Lang::JsonPath)
}

/// The query language a state's fields are written in.
pub(crate) use crate::fields::Lang;

/// A location as AWS writes it: `/States/A/Catch[0]/Next`; the root is `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loc(String);

impl Loc {
    pub(crate) fn root() -> Self {
        Self(String::new())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        Self(format!("{}/{name}", self.0))
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    fn render(&self) -> String {
        if self.0.is_empty() {
            "/".to_string()
        } else {
            self.0.clone()
        }
    }
}

/// Collects diagnostics in the order the checks find them.
#[derive(Debug, Default)]
pub(crate) struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        code: &str,
        location: Option<&Loc>,
        message: impl Into<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            code: code.to_string(),
            message: message.into(),
            location: location.map(Loc::render),
        });
    }

    /// The common case: a `SCHEMA_VALIDATION_FAILED` error.
    pub(crate) fn schema(&mut self, location: &Loc, message: impl Into<String>) {
        self.push(
            Severity::Error,
            codes::SCHEMA_VALIDATION_FAILED,
            Some(location),
            message,
        );
    }

    pub(crate) fn error(&mut self, code: &str, location: &Loc, message: impl Into<String>) {
        self.push(Severity::Error, code, Some(location), message);
    }

    pub(crate) fn warning(&mut self, code: &str, location: &Loc, message: impl Into<String>) {
        self.push(Severity::Warning, code, Some(location), message);
    }
}

#[cfg(test)]
mod tests;
