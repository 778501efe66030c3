//! Workflow variables (`Assign`, `$name`): their scopes, names and size quotas.
//!
//! Source: "Passing data between states with variables",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html>.
//! A Map iteration or Parallel branch sees the variables of the states around it but cannot
//! assign them, and what it assigns is gone when it ends. All the assignments of one state
//! are evaluated against the values from before that state, and take effect when it exits.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::limits::json_size;
use crate::{errors, Failure};

/// A single variable, and everything one `Assign` sets, hold at most 256 KiB.
pub const VARIABLE_LIMIT_BYTES: usize = 262_144;
/// All the variables of an execution together.
pub const TOTAL_LIMIT_BYTES: usize = 10 * 1024 * 1024;
/// The longest variable name.
pub const NAME_LIMIT_CHARS: usize = 80;

/// The variables a state sees.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// The enclosing scopes', flattened: readable, never assigned from here. Shared by
    /// every iteration or branch started from the same scope.
    outer: Arc<Map<String, Value>>,
    /// The JSON size of `outer`, counted once since it never changes.
    outer_size: usize,
    own: Map<String, Value>,
}

impl Variables {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.own.get(name).or_else(|| self.outer.get(name))
    }

    /// The scope of a Map iteration or Parallel branch started from this one. Build it once
    /// per Map or Parallel attempt and clone it for each iteration or branch: a clone
    /// shares the outer variables instead of copying them.
    pub fn inner(&self) -> Variables {
        if self.own.is_empty() {
            return Variables {
                outer: Arc::clone(&self.outer),
                outer_size: self.outer_size,
                own: Map::new(),
            };
        }
        let mut outer = (*self.outer).clone();
        outer.extend(self.own.iter().map(|(k, v)| (k.clone(), v.clone())));
        Variables {
            outer_size: json_size(&outer),
            outer: Arc::new(outer),
            own: Map::new(),
        }
    }

    /// Stores what a state assigned, once it exits.
    pub fn apply(&mut self, assigned: Map<String, Value>) -> Result<(), Failure> {
        if assigned.is_empty() {
            return Ok(());
        }
        self.own.extend(assigned);
        // As two JSON objects, the outer scope's and this one's, so a name assigned in both
        // counts twice: both values are held.
        let total = self.outer_size + json_size(&self.own);
        if total > TOTAL_LIMIT_BYTES {
            return Err(Failure::new(
                errors::DATA_LIMIT_EXCEEDED,
                format!(
                    "The total size of the variables of this execution ({total} bytes) exceeds \
                     the maximum of {TOTAL_LIMIT_BYTES} bytes."
                ),
            ));
        }
        Ok(())
    }
}

/// Checks the values one `Assign` produced against the size quotas.
pub fn check_sizes(assigned: &Map<String, Value>) -> Result<(), Failure> {
    let limit = |text: String| Err(Failure::new(errors::DATA_LIMIT_EXCEEDED, text));
    for (name, value) in assigned {
        let size = json_size(value);
        if size > VARIABLE_LIMIT_BYTES {
            return limit(format!(
                "The variable '{name}' has a size of {size} bytes, exceeding the maximum of \
                 {VARIABLE_LIMIT_BYTES} bytes."
            ));
        }
    }
    let total: usize = assigned.values().map(json_size).sum();
    if total > VARIABLE_LIMIT_BYTES {
        return limit(format!(
            "The variables assigned in one state have a size of {total} bytes, exceeding the \
             maximum of {VARIABLE_LIMIT_BYTES} bytes."
        ));
    }
    Ok(())
}

/// A variable name: an identifier (letter or `_`, then letters, digits, `_`), at most
/// [`NAME_LIMIT_CHARS`] long, and not the reserved `states`.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| crate::path::is_name_char(c, true))
        && chars.all(|c| crate::path::is_name_char(c, false));
    if !valid {
        return Err(format!("{name:?} is not a valid variable name"));
    }
    if name.chars().count() > NAME_LIMIT_CHARS {
        return Err(format!(
            "the variable name {name:?} is longer than {NAME_LIMIT_CHARS} characters"
        ));
    }
    if name == "states" {
        return Err("the variable name \"states\" is reserved".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inner_scopes_read_outer_variables_and_keep_their_own() {
        let mut outer = Variables::default();
        let assigned: Map<String, Value> = [("x".to_string(), json!(1))].into_iter().collect();
        outer.apply(assigned).unwrap();
        let mut inner = outer.inner();
        assert_eq!(inner.get("x"), Some(&json!(1)));
        inner
            .apply([("y".to_string(), json!(2))].into_iter().collect())
            .unwrap();
        assert_eq!(inner.get("y"), Some(&json!(2)));
        assert_eq!(outer.get("y"), None);
    }

    #[test]
    fn inner_scopes_share_their_outer_variables() {
        let mut outer = Variables::default();
        outer
            .apply([("x".to_string(), json!([1, 2]))].into_iter().collect())
            .unwrap();
        let scope = outer.inner();
        let (a, b) = (scope.clone(), scope.clone());
        assert!(Arc::ptr_eq(&a.outer, &b.outer));
        // A scope that assigned nothing hands its outer variables on as they are.
        assert!(Arc::ptr_eq(&a.inner().outer, &scope.outer));
        assert_eq!(scope.outer_size, json_size(&json!({"x": [1, 2]})));
    }

    #[test]
    fn the_total_counts_outer_and_own_variables() {
        let big = |from: usize, to: usize| -> Map<String, Value> {
            (from..to)
                .map(|i| (format!("v{i:02}"), json!("x".repeat(250_000))))
                .collect()
        };
        let mut outer = Variables::default();
        outer.apply(big(0, 21)).unwrap();
        let mut inner = outer.inner();
        inner.apply(big(21, 41)).unwrap();
        let failure = inner.apply(big(41, 42)).unwrap_err();
        assert_eq!(failure.error, errors::DATA_LIMIT_EXCEEDED);
        assert!(failure.cause.contains("exceeds"), "{}", failure.cause);
    }

    #[test]
    fn names_and_sizes() {
        assert!(check_name("ok_name1").is_ok());
        assert!(check_name("_x").is_ok());
        for bad in ["1x", "a-b", "", "states", &"x".repeat(81)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let big: Map<String, Value> = [("b".to_string(), json!("x".repeat(VARIABLE_LIMIT_BYTES)))]
            .into_iter()
            .collect();
        assert_eq!(
            check_sizes(&big).unwrap_err().error,
            errors::DATA_LIMIT_EXCEEDED
        );
    }
}
