//! The Amazon States Language document, as typed data. Loading a definition validates it:
//! every transition names an existing state, every non-terminal state has a way out, and
//! features this runner does not implement are refused up front rather than ignored.

mod checks;
pub mod distributed;
mod fields;
mod jsonata_checks;
pub mod query_language;

use std::collections::{BTreeSet, HashMap};

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
    /// Only in a Map's `ItemProcessor`: `{"Mode": "INLINE"}`.
    #[serde(default)]
    pub processor_config: Option<Value>,
    /// The JSONata fields of the states that use JSONata, by state name; a state not named
    /// here uses JSONPath. Boxed: a Map state holds its item processor inline, and every byte here is a byte
    /// more in every `State`.
    #[serde(skip)]
    pub jsonata: Box<HashMap<String, query_language::JsonataState>>,
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
    /// `FULL` spreads each delay at random between 0 and its computed value.
    #[serde(default)]
    pub jitter_strategy: Option<String>,
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
    /// Evaluated against the error output (`{"Error", "Cause"}`).
    #[serde(default)]
    pub assign: Option<Value>,
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
    #[serde(default)]
    pub timeout_seconds_path: Option<String>,
    #[serde(default)]
    pub assign: Option<Value>,
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
    #[serde(default)]
    pub assign: Option<Value>,
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
    /// Applies when no rule matches and `Default` is taken.
    #[serde(default)]
    pub assign: Option<Value>,
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
    #[serde(default)]
    pub assign: Option<Value>,
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
    pub assign: Option<Value>,
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
    pub max_concurrency_path: Option<String>,
    /// `ItemReader`, `ItemBatcher`, `ResultWriter`, the failure tolerance and `Label`.
    #[serde(flatten)]
    pub distributed: Box<distributed::DistributedFields>,
    #[serde(default)]
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(default)]
    pub assign: Option<Value>,
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

    /// The state's own `Assign` (Choice rules' and Catchers' are elsewhere).
    pub fn assign(&self) -> Option<&Value> {
        match self {
            State::Task(s) => s.assign.as_ref(),
            State::Pass(s) => s.assign.as_ref(),
            State::Choice(s) => s.assign.as_ref(),
            State::Wait(s) => s.assign.as_ref(),
            State::Parallel(s) => s.assign.as_ref(),
            State::Map(s) => s.assign.as_ref(),
            State::Succeed(_) | State::Fail(_) => None,
        }
    }

    /// `InputPath` / `OutputPath`, which every state but Fail has.
    pub fn io(&self) -> Option<&Io> {
        match self {
            State::Task(s) => Some(&s.io),
            State::Pass(s) => Some(&s.io),
            State::Choice(s) => Some(&s.io),
            State::Wait(s) => Some(&s.io),
            State::Succeed(s) => Some(&s.io),
            State::Parallel(s) => Some(&s.io),
            State::Map(s) => Some(&s.io),
            State::Fail(_) => None,
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
        let raw: Value =
            serde_json::from_str(text).map_err(|e| AslError::Definition(e.to_string()))?;
        let top = query_language::top_language(&raw).map_err(AslError::Definition)?;
        fields::check_machine(&raw, "", false, top).map_err(AslError::Definition)?;
        let mut typed = raw.clone();
        query_language::strip(&mut typed, top);
        let mut machine: Machine =
            serde_json::from_value(typed).map_err(|e| AslError::Definition(e.to_string()))?;
        query_language::attach(&mut machine, &raw, top).map_err(AslError::Definition)?;
        machine.validate("", &BTreeSet::new())?;
        Ok(machine)
    }

    pub fn state(&self, name: &str) -> Result<&State, AslError> {
        self.states
            .get(name)
            .ok_or_else(|| AslError::Definition(format!("no state named {name:?}")))
    }

    /// Every variable name this machine's own states assign (not its branches').
    fn assigned_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for state in self.states.values() {
            let mut templates: Vec<&Value> = state.assign().into_iter().collect();
            templates.extend(state.catchers().iter().filter_map(|c| c.assign.as_ref()));
            if let State::Choice(choice) = state {
                templates.extend(choice.choices.iter().filter_map(|r| r.get("Assign")));
            }
            for template in templates {
                names.extend(variable_names(template));
            }
        }
        names
    }

    /// `outer` holds the variables the enclosing machines assign: a Map iteration or
    /// Parallel branch may read them but not assign them.
    fn validate(&self, scope: &str, outer: &BTreeSet<String>) -> Result<(), AslError> {
        let bad = |msg: String| AslError::Definition(format!("{scope}{msg}"));
        if !self.states.contains_key(&self.start_at) {
            return Err(bad(format!(
                "StartAt names a missing state {:?}",
                self.start_at
            )));
        }
        let own = self.assigned_names();
        if let Some(name) = own.intersection(outer).next() {
            return Err(bad(format!(
                "the variable '{name}' is assigned in an outer scope: a Map or Parallel state's \
                 inner states may read it but not assign it"
            )));
        }
        let inner_outer: BTreeSet<String> = outer.union(&own).cloned().collect();
        for (name, state) in &self.states {
            self.validate_transitions(name, state).map_err(&bad)?;
            match self.jsonata.get(name) {
                Some(fields) => jsonata_checks::state(name, state, fields),
                None => checks::state(name, state),
            }
            .map_err(&bad)?;
            match state {
                State::Parallel(parallel) => {
                    for (i, branch) in parallel.branches.iter().enumerate() {
                        branch.validate(&format!("{scope}{name}/branch {i}: "), &inner_outer)?;
                    }
                }
                State::Map(map) => map
                    .item_processor
                    .validate(&format!("{scope}{name}/items: "), &inner_outer)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Every `Next`, `Default` and Catcher names an existing state, and every state that
    /// needs a way out has one.
    fn validate_transitions(&self, name: &str, state: &State) -> Result<(), String> {
        let target_ok = |target: &str| self.states.contains_key(target);
        if let Some(flow) = state.flow() {
            match (&flow.next, flow.end) {
                (Some(next), false) if target_ok(next) => {}
                (Some(next), false) => {
                    return Err(format!(
                        "state {name:?}: Next names a missing state {next:?}"
                    ))
                }
                (None, true) => {}
                (Some(_), true) => return Err(format!("state {name:?} has both Next and End")),
                (None, false) => return Err(format!("state {name:?} has neither Next nor End")),
            }
        }
        for catcher in state.catchers() {
            if !target_ok(&catcher.next) {
                return Err(format!(
                    "state {name:?}: Catch names a missing state {:?}",
                    catcher.next
                ));
            }
        }
        if let State::Choice(choice) = state {
            if choice.choices.is_empty() {
                return Err(format!("Choice state {name:?} has no Choices"));
            }
            for rule in &choice.choices {
                match rule.get("Next").and_then(Value::as_str) {
                    Some(next) if target_ok(next) => {}
                    other => {
                        return Err(format!(
                        "Choice state {name:?}: rule Next {other:?} is missing or names no state"
                    ))
                    }
                }
            }
            if let Some(default) = &choice.default {
                if !target_ok(default) {
                    return Err(format!(
                        "Choice state {name:?}: Default names a missing state {default:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The variable names an `Assign` object sets (its keys, without a `.$` suffix).
pub fn variable_names(template: &Value) -> Vec<String> {
    template
        .as_object()
        .map(|fields| {
            fields
                .keys()
                .map(|k| k.strip_suffix(".$").unwrap_or(k).to_string())
                .collect()
        })
        .unwrap_or_default()
}
