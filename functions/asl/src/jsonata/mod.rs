//! JSONata, the query language of states with `"QueryLanguage": "JSONata"`.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>. The service
//! runs JSONata 2.0.6 with `$eval` removed and six functions added ([`functions`]); every
//! failure is `States.QueryEvaluationError` ([`QueryError`]).
//!
//! The executor evaluates each JSONata field with [`evaluate_template`] (or
//! [`evaluate_typed`] / [`evaluate_condition`] for a field that takes one type), naming the
//! field with a [`FieldPath`] and giving what the state can see in a [`Scope`].

mod engine;
mod errors;
mod functions;
mod references;
mod template;
mod values;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

pub use engine::compile;
pub use errors::{FieldPath, QueryError, QUERY_EVALUATION_ERROR};
pub use references::{states_members, top_level_field};
pub use template::{
    evaluate_condition, evaluate_expression, evaluate_template, evaluate_typed, expression,
};
pub use values::JsonType;

/// Where the workflow variables a state reads (`$name`) come from.
pub trait VariableLookup {
    fn lookup(&self, name: &str) -> Option<&Value>;
}

impl VariableLookup for Map<String, Value> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl VariableLookup for BTreeMap<String, Value> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl<S: std::hash::BuildHasher> VariableLookup for HashMap<String, Value, S> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// No workflow variables.
impl VariableLookup for () {
    fn lookup(&self, _name: &str) -> Option<&Value> {
        None
    }
}

/// What an expression can see: the reserved `$states` variable, the workflow variables and the
/// execution's clock.
///
/// `$states.input` is the state's original input in every field. `$states.result` is the
/// Task/Parallel/Map result, for `Output` and `Assign` after it succeeded; `$states.errorOutput`
/// the error output, for a `Catch`'s `Output` and `Assign`; elsewhere they are left out, and an
/// expression reading them gets undefined (the service refuses such a definition at creation).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub input: &'a Value,
    pub result: Option<&'a Value>,
    pub error_output: Option<&'a Value>,
    /// The Context object (`$states.context`): `Execution`, `State`, `StateMachine`, `Task`,
    /// `Map`.
    pub context: Option<&'a Value>,
    pub variables: &'a dyn VariableLookup,
    /// The execution's clock for `$now()` and `$millis()`, in milliseconds since the epoch:
    /// JSONata reads it once per evaluation, so it makes a run reproducible. `None` reads the
    /// system clock.
    pub now_millis: Option<i64>,
}

impl<'a> Scope<'a> {
    pub fn new(input: &'a Value, variables: &'a dyn VariableLookup) -> Self {
        Self {
            input,
            result: None,
            error_output: None,
            context: None,
            variables,
            now_millis: None,
        }
    }

    #[must_use]
    pub fn with_result(self, result: &'a Value) -> Self {
        Self {
            result: Some(result),
            ..self
        }
    }

    #[must_use]
    pub fn with_error_output(self, error_output: &'a Value) -> Self {
        Self {
            error_output: Some(error_output),
            ..self
        }
    }

    #[must_use]
    pub fn with_context(self, context: &'a Value) -> Self {
        Self {
            context: Some(context),
            ..self
        }
    }

    #[must_use]
    pub fn with_clock(self, now_millis: i64) -> Self {
        Self {
            now_millis: Some(now_millis),
            ..self
        }
    }

    /// The value of `$states`, with only the members this field may read.
    fn states(&self) -> Value {
        let mut states = Map::new();
        states.insert("input".into(), self.input.clone());
        let optional = [
            ("result", self.result),
            ("errorOutput", self.error_output),
            ("context", self.context),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                states.insert(name.into(), value.clone());
            }
        }
        Value::Object(states)
    }
}
