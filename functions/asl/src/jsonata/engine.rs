//! One JSONata expression, compiled and evaluated with the `$states` variable, the workflow
//! variables and the Step Functions functions bound.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use jlens_core::{Bindings, Error, Expression, NodeKind, Options};
use serde_json::Value;

use super::errors::{detail, FieldPath, QueryError};
use super::functions::BINDINGS;
use super::values::normalize_numbers;
use super::Scope;

/// The service bounds evaluation without documenting the bound; a runaway recursive expression
/// fails the field after this long instead of hanging the local execution.
pub(super) const EVALUATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Compiles an expression as the service's JSONata 2.0.6 reads it.
///
/// The engine implements JSONata 2.2, whose `??` and `?:` operators 2.0.6 does not have: there
/// the second character starts a new operand and parsing fails with S0211, which is what these
/// operators give here too.
pub fn compile(expression: &str) -> Result<Expression, Error> {
    let compiled = Expression::compile(expression)?;
    let mut newer_operator = None;
    compiled.ast().root.walk(&mut |node| {
        if let NodeKind::Fallback { op, .. } = &node.kind {
            newer_operator.get_or_insert(op.symbol());
        }
    });
    match newer_operator.and_then(|symbol| symbol.get(1..)) {
        Some(unary) => Err(Error::new("S0211").with("token", unary)),
        None => Ok(compiled),
    }
}

/// Compiled expressions by their text: a state entered once per Map item would otherwise
/// parse the same expressions for every item.
static COMPILED: LazyLock<Mutex<HashMap<String, Arc<Expression>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Enough for every expression of many machines; past it the cache starts over rather than
/// grow without bound in a long-lived process.
const COMPILED_CAPACITY: usize = 4096;

/// [`compile`], once per distinct expression text.
fn compiled(expression: &str) -> Result<Arc<Expression>, Error> {
    let cache = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(hit) = cache().get(expression) {
        return Ok(Arc::clone(hit));
    }
    let fresh = Arc::new(compile(expression)?);
    let mut cache = cache();
    if cache.len() >= COMPILED_CAPACITY {
        cache.clear();
    }
    cache.insert(expression.to_string(), Arc::clone(&fresh));
    Ok(fresh)
}

/// Evaluates `expression` (the text between `{%` and `%}`), `None` when it is undefined.
pub(super) fn evaluate(
    expression: &str,
    field: &FieldPath,
    scope: &Scope<'_>,
) -> Result<Option<Value>, QueryError> {
    let failed = |error: &Error| QueryError::Evaluation {
        expression: expression.to_string(),
        field: field.clone(),
        detail: detail(error),
    };
    let compiled = compiled(expression).map_err(|e| failed(&e))?;
    let bindings = bindings(&compiled, scope);
    let mut options = Options::new().timeout(EVALUATION_TIMEOUT);
    if let Some(now) = scope.now_millis {
        options = options.now(now);
    }
    // No input document: the service refuses top-level paths, `$states.input` is the input.
    compiled
        .evaluate_with(None, &bindings, &options)
        .map(|value| value.map(normalize_numbers))
        .map_err(|e| failed(&e))
}

/// Binds only the variables the expression names: copying every workflow variable into each
/// evaluation would cost far more than the expressions themselves.
fn bindings(compiled: &Expression, scope: &Scope<'_>) -> Bindings {
    let mut names = BTreeSet::new();
    compiled.ast().root.walk(&mut |node| {
        if let NodeKind::Variable { name } = &node.kind {
            names.insert(name.as_str());
        }
    });
    let mut bindings = BINDINGS.clone();
    for name in names.iter().filter(|name| **name != "states") {
        if let Some(value) = scope.variables.lookup(name) {
            bindings = bindings.var(*name, value.clone());
        }
    }
    // Last, so that no workflow variable can stand in for the reserved one.
    if names.contains("states") {
        bindings = bindings.var("states", scope.states());
    }
    bindings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_is_compiled_once_and_its_errors_are_not_kept() {
        let first = compiled("1 + 41").unwrap();
        let again = compiled("1 + 41").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(compiled("1 +").is_err());
        assert!(
            compiled("1 +").is_err(),
            "a failed compile is not cached as a success"
        );
    }
}
