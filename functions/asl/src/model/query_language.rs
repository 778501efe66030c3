//! Which query language each state uses, and the JSONata states' fields.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>. The top-level
//! `QueryLanguage` (default `JSONPath`) applies to every state, those of Map and Parallel
//! branches included, unless the state sets its own; a JSONPath machine may switch a state to
//! JSONata, a JSONata machine cannot switch one back. A JSONata state carries `Arguments` and
//! `Output` instead of the five JSONPath fields, and its numeric and text fields may hold
//! expressions, so it is kept here as raw values beside its typed JSONPath view (whose
//! expression-capable fields [`strip`] removes before it is typed).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{Machine, State};

pub use crate::fields::Lang;
use crate::fields::{self as asl_fields, StateType};

/// Fields of a JSONata state whose value may be an expression where the JSONPath view takes
/// a number or a fixed string: kept out of the typed state.
const EXPRESSION_CAPABLE: &[&str] = &[
    "Seconds",
    "Timestamp",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "MaxConcurrency",
    "Error",
    "Cause",
];

fn parse(value: &Value) -> Result<Lang, String> {
    match value.as_str() {
        Some("JSONPath") => Ok(Lang::JsonPath),
        Some("JSONata") => Ok(Lang::Jsonata),
        _ => Err(format!(
            "QueryLanguage {value}: Value should be one of the following: [JSONPath, JSONata]"
        )),
    }
}

/// The machine's language, from its top-level `QueryLanguage`.
pub fn top_language(raw: &Value) -> Result<Lang, String> {
    raw.get("QueryLanguage").map_or(Ok(Lang::JsonPath), parse)
}

/// A state's language: its own `QueryLanguage`, else the machine's.
pub fn state_language(state: &Map<String, Value>, top: Lang) -> Result<Lang, String> {
    match state.get("QueryLanguage").map(parse).transpose()? {
        None => Ok(top),
        Some(Lang::JsonPath) if top == Lang::Jsonata => Err(
            "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine"
                .into(),
        ),
        Some(lang) => Ok(lang),
    }
}

/// A JSONata field of a JSONPath state, refused in AWS's words.
pub fn foreign_in_jsonpath(field: &str) -> Option<String> {
    (!Lang::JsonPath.allows(field)).then(|| Lang::JsonPath.refuse(field))
}

/// Whether a JSONata state of `kind` may carry `field` here: AWS's fields for JSONata,
/// less those the local runner refuses.
fn jsonata_field(kind: StateType, field: &str) -> bool {
    kind.fields_in(Lang::Jsonata).any(|f| f == field)
        && !asl_fields::locally_unsupported(field, Lang::Jsonata)
}

/// Refuses what a JSONata state may not carry: the other language's fields by name, any
/// unknown field, and the distributed Map, which this runner runs in JSONPath states only.
pub fn check_jsonata_fields(state_type: &str, state: &Map<String, Value>) -> Result<(), String> {
    let kind =
        StateType::parse(state_type).ok_or_else(|| format!("unknown state Type {state_type:?}"))?;
    for key in state.keys() {
        if jsonata_field(kind, key) {
            continue;
        }
        if !Lang::Jsonata.allows(key) {
            return Err(Lang::Jsonata.refuse(key));
        }
        if asl_fields::DISTRIBUTED_MAP.contains(&key.as_str()) {
            return Err(format!(
                "Field '{key}' is not supported: a distributed Map runs locally in JSONPath states only"
            ));
        }
        return Err(format!("Field '{key}' is not supported"));
    }
    let catcher: Vec<&str> = asl_fields::CATCHER
        .iter()
        .copied()
        .filter(|f| Lang::Jsonata.allows(f))
        .collect();
    for (list, known) in [
        ("Catch", &catcher[..]),
        ("Choices", asl_fields::CHOICE_RULE_JSONATA),
    ] {
        if let Some(key) = super::fields::unknown_entry_field(state, list, known)? {
            let foreign =
                !Lang::Jsonata.allows(key) || Lang::JsonPath.own_rule_fields().contains(&key);
            return Err(if foreign {
                Lang::Jsonata.refuse(key)
            } else {
                format!("Field '{key}' is not supported in a {list} entry")
            });
        }
    }
    Ok(())
}

/// Deserializes a field that is present, `null` included (which `Option` alone reads as
/// absent: `"Output": null` outputs null).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A JSONata state's own fields, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JsonataState {
    #[serde(default, deserialize_with = "present")]
    pub arguments: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub assign: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub items: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub item_selector: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub seconds: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub timestamp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub timeout_seconds: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub heartbeat_seconds: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub max_concurrency: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub error: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub cause: Option<Value>,
    #[serde(default)]
    pub catch: Vec<JsonataOutcome>,
    #[serde(default)]
    pub choices: Vec<JsonataOutcome>,
}

/// A Catcher's or a Choice rule's JSONata fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JsonataOutcome {
    #[serde(default, deserialize_with = "present")]
    pub condition: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub assign: Option<Value>,
}

/// The raw states of a machine, its branches and item processors, each with its language.
fn for_each_state(raw: &mut Value, top: Lang, f: &mut impl FnMut(&mut Map<String, Value>, Lang)) {
    let Some(states) = raw.get_mut("States").and_then(Value::as_object_mut) else {
        return;
    };
    for state in states.values_mut() {
        let Some(object) = state.as_object_mut() else {
            continue;
        };
        let lang = state_language(object, top).unwrap_or(top);
        f(object, lang);
        if let Some(branches) = object.get_mut("Branches").and_then(Value::as_array_mut) {
            for branch in branches {
                for_each_state(branch, top, f);
            }
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(processor) = object.get_mut(key) {
                for_each_state(processor, top, f);
            }
        }
    }
}

/// The definition as the typed JSONPath view reads it: the JSONata states' fields that may
/// hold expressions are left out (they are read from [`JsonataState`]).
pub fn strip(raw: &mut Value, top: Lang) {
    for_each_state(raw, top, &mut |state, lang| {
        if lang == Lang::Jsonata {
            for field in EXPRESSION_CAPABLE {
                state.remove(*field);
            }
        }
    });
}

/// Gives `machine` (and its branches and item processors) the JSONata fields of its JSONata
/// states, read from `raw`, the definition as written.
pub fn attach(machine: &mut Machine, raw: &Value, top: Lang) -> Result<(), String> {
    let Some(states) = raw.get("States").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, raw_state) in states {
        let Some(object) = raw_state.as_object() else {
            continue;
        };
        if state_language(object, top)? == Lang::Jsonata {
            let fields =
                JsonataState::deserialize(raw_state).map_err(|e| format!("state {name:?}: {e}"))?;
            machine.jsonata.insert(name.clone(), fields);
        }
        match machine.states.get_mut(name) {
            Some(State::Parallel(parallel)) => {
                let raw_branches = object.get("Branches").and_then(Value::as_array);
                for (branch, raw_branch) in parallel
                    .branches
                    .iter_mut()
                    .zip(raw_branches.into_iter().flatten())
                {
                    attach(branch, raw_branch, top)?;
                }
            }
            Some(State::Map(map)) => {
                if let Some(processor) = object
                    .get("ItemProcessor")
                    .or_else(|| object.get("Iterator"))
                {
                    attach(&mut map.item_processor, processor, top)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
