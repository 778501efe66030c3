//! The Amazon States Language document, as typed data. Loading a definition validates it:
//! every transition names an existing state, every non-terminal state has a way out, and
//! features this runner does not implement are refused up front rather than ignored.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::AslError;

/// A state machine, or a Map iterator / Parallel branch (same shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Machine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub query_language: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    Task(TaskState),
    Pass(PassState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(SucceedState),
    Fail(FailState),
    Parallel(ParallelState),
    Map(MapState),
}

/// `Next` / `End`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Flow {
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: bool,
}

/// A path field where "absent" (use the default `$`) differs from `null` (discard).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PathField {
    #[default]
    Absent,
    Null,
    Path(String),
}

impl<'de> Deserialize<'de> for PathField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<String>::deserialize(d)? {
            None => PathField::Null,
            Some(path) => PathField::Path(path),
        })
    }
}

/// `InputPath` / `OutputPath`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Io {
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff_rate: f64,
    #[serde(default)]
    pub max_delay_seconds: Option<f64>,
}

fn default_interval() -> f64 {
    1.0
}
fn default_max_attempts() -> u32 {
    3
}
fn default_backoff() -> f64 {
    2.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    #[serde(default)]
    pub result_path: PathField,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskState {
    pub resource: String,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(flatten)]
    pub io: Io,
    #[serde(flatten)]
    pub flow: Flow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PassState {
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(flatten)]
    pub io: Io,
    #[serde(flatten)]
    pub flow: Flow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChoiceState {
    pub choices: Vec<Value>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(flatten)]
    pub io: Io,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitState {
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub seconds_path: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub timestamp_path: Option<String>,
    #[serde(flatten)]
    pub io: Io,
    #[serde(flatten)]
    pub flow: Flow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SucceedState {
    #[serde(flatten)]
    pub io: Io,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailState {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub error_path: Option<String>,
    #[serde(default)]
    pub cause_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParallelState {
    pub branches: Vec<Machine>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub io: Io,
    #[serde(flatten)]
    pub flow: Flow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapState {
    #[serde(default)]
    pub items_path: Option<String>,
    /// `ItemSelector`, or its older name `Parameters`.
    #[serde(default, alias = "Parameters")]
    pub item_selector: Option<Value>,
    /// `ItemProcessor`, or its older name `Iterator`.
    #[serde(alias = "Iterator")]
    pub item_processor: Machine,
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    #[serde(default)]
    pub item_reader: Option<Value>,
    #[serde(default)]
    pub result_writer: Option<Value>,
    #[serde(default)]
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub io: Io,
    #[serde(flatten)]
    pub flow: Flow,
}

impl State {
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Task(_) => "Task",
            State::Pass(_) => "Pass",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }

    fn flow(&self) -> Option<&Flow> {
        match self {
            State::Task(s) => Some(&s.flow),
            State::Pass(s) => Some(&s.flow),
            State::Wait(s) => Some(&s.flow),
            State::Parallel(s) => Some(&s.flow),
            State::Map(s) => Some(&s.flow),
            State::Choice(_) | State::Succeed(_) | State::Fail(_) => None,
        }
    }

    fn catchers(&self) -> &[Catcher] {
        match self {
            State::Task(s) => &s.catch,
            State::Parallel(s) => &s.catch,
            State::Map(s) => &s.catch,
            _ => &[],
        }
    }
}

impl Machine {
    pub fn from_json(text: &str) -> Result<Self, AslError> {
        let machine: Machine =
            serde_json::from_str(text).map_err(|e| AslError::Definition(e.to_string()))?;
        machine.validate("")?;
        Ok(machine)
    }

    pub fn state(&self, name: &str) -> Result<&State, AslError> {
        self.states
            .get(name)
            .ok_or_else(|| AslError::Definition(format!("no state named {name:?}")))
    }

    fn validate(&self, scope: &str) -> Result<(), AslError> {
        let bad = |msg: String| Err(AslError::Definition(format!("{scope}{msg}")));
        if let Some(lang) = &self.query_language {
            if lang != "JSONPath" {
                return bad(format!(
                    "QueryLanguage {lang} is not supported (JSONPath only)"
                ));
            }
        }
        if !self.states.contains_key(&self.start_at) {
            return bad(format!("StartAt names a missing state {:?}", self.start_at));
        }
        for (name, state) in &self.states {
            let target_ok = |target: &str| self.states.contains_key(target);
            if let Some(flow) = state.flow() {
                match (&flow.next, flow.end) {
                    (Some(next), false) if target_ok(next) => {}
                    (Some(next), false) => {
                        return bad(format!(
                            "state {name:?}: Next names a missing state {next:?}"
                        ))
                    }
                    (None, true) => {}
                    (Some(_), true) => return bad(format!("state {name:?} has both Next and End")),
                    (None, false) => {
                        return bad(format!("state {name:?} has neither Next nor End"))
                    }
                }
            }
            for catcher in state.catchers() {
                if !target_ok(&catcher.next) {
                    return bad(format!(
                        "state {name:?}: Catch names a missing state {:?}",
                        catcher.next
                    ));
                }
            }
            match state {
                State::Choice(choice) => {
                    if choice.choices.is_empty() {
                        return bad(format!("Choice state {name:?} has no Choices"));
                    }
                    for rule in &choice.choices {
                        match rule.get("Next").and_then(Value::as_str) {
                            Some(next) if target_ok(next) => {}
                            other => {
                                return bad(format!(
                                    "Choice state {name:?}: rule Next {other:?} is missing or names no state"
                                ))
                            }
                        }
                        crate::choice::validate_rule(rule).map_err(|e| {
                            AslError::Definition(format!("{scope}Choice state {name:?}: {e}"))
                        })?;
                    }
                    if let Some(default) = &choice.default {
                        if !target_ok(default) {
                            return bad(format!(
                                "Choice state {name:?}: Default names a missing state {default:?}"
                            ));
                        }
                    }
                }
                State::Parallel(parallel) => {
                    for (i, branch) in parallel.branches.iter().enumerate() {
                        branch.validate(&format!("{scope}{name}/branch {i}: "))?;
                    }
                }
                State::Map(map) => {
                    if map.item_reader.is_some() || map.result_writer.is_some() {
                        return bad(format!(
                            "Map state {name:?}: distributed Map (ItemReader/ResultWriter) is not supported locally"
                        ));
                    }
                    map.item_processor
                        .validate(&format!("{scope}{name}/items: "))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
