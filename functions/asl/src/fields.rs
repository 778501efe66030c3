//! The one table of ASL fields: which fields each object of the language may carry (the
//! whole AWS set, JSONPath and JSONata fields alike) and which of them belong to one query
//! language only. The validator (`validate`) checks definitions against it as AWS does; the
//! loader (`model`) derives what the local runner accepts from it, so the two cannot drift.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>: JSONata
//! states replace the five JSONPath fields (and the `…Path` variants) with `Arguments` and
//! `Output`, Map's `ItemsPath` with `Items`; in Choice rules "Variables and comparison fields
//! are only available for JSONPath. Condition is only available for JSONata".

/// A state's query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    JsonPath,
    Jsonata,
}

impl Lang {
    /// AWS's name for the language.
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonPath => "JSONPath",
            Self::Jsonata => "JSONata",
        }
    }

    /// The other language.
    pub fn other(self) -> Self {
        match self {
            Self::JsonPath => Self::Jsonata,
            Self::Jsonata => Self::JsonPath,
        }
    }

    /// The state (and Catcher) fields only this language has, in the order they are
    /// reported.
    pub fn own_fields(self) -> &'static [&'static str] {
        match self {
            Self::JsonPath => JSONPATH_ONLY,
            Self::Jsonata => JSONATA_ONLY,
        }
    }

    /// The Choice rule fields only this language has.
    pub fn own_rule_fields(self) -> &'static [&'static str] {
        match self {
            Self::JsonPath => CHOICE_RULE_JSONPATH_ONLY,
            Self::Jsonata => CHOICE_RULE_JSONATA_ONLY,
        }
    }

    /// AWS's wording for a field of the other language in a state of this one.
    pub fn refuse(self, field: &str) -> String {
        format!(
            "The QueryLanguage is set to '{}', but field '{field}' is only supported for the '{}' QueryLanguage",
            self.name(),
            self.other().name()
        )
    }

    /// Whether a state (or Catcher) field may appear in this language.
    pub fn allows(self, field: &str) -> bool {
        !self.other().own_fields().contains(&field)
    }
}

/// The eight state types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateType {
    Pass,
    Task,
    Choice,
    Wait,
    Succeed,
    Fail,
    Parallel,
    Map,
}

impl StateType {
    pub const NAMES: [&'static str; 8] = [
        "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "Pass" => Self::Pass,
            "Task" => Self::Task,
            "Choice" => Self::Choice,
            "Wait" => Self::Wait,
            "Succeed" => Self::Succeed,
            "Fail" => Self::Fail,
            "Parallel" => Self::Parallel,
            "Map" => Self::Map,
            _ => return None,
        })
    }

    /// Whether the state goes on with `Next` or stops with `End` (Choice, Succeed and Fail
    /// have neither).
    pub fn has_transition(self) -> bool {
        !matches!(self, Self::Choice | Self::Succeed | Self::Fail)
    }

    /// Every field a state of this type may have in this language.
    pub fn fields_in(self, lang: Lang) -> impl Iterator<Item = &'static str> {
        self.fields()
            .iter()
            .copied()
            .filter(move |f| lang.allows(f))
    }

    /// Every field a state of this type may have, in either language.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Pass => PASS,
            Self::Task => TASK,
            Self::Choice => CHOICE,
            Self::Wait => WAIT,
            Self::Succeed => SUCCEED,
            Self::Fail => FAIL,
            Self::Parallel => PARALLEL,
            Self::Map => MAP,
        }
    }
}

/// The top level of a definition.
pub const TOP: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "TimeoutSeconds",
    "Version",
    "QueryLanguage",
];

/// A Parallel branch.
pub const BRANCH: &[&str] = &["Comment", "StartAt", "States"];

/// A Map's `ItemProcessor` (or its older name `Iterator`).
pub const PROCESSOR: &[&str] = &["Comment", "StartAt", "States", "ProcessorConfig"];

/// Fields AWS accepts that the local runner refuses by name rather than ignore: Task
/// `Credentials` (cross-account calls are not run locally) and, in JSONata states, the
/// distributed Map's fields (it runs locally in JSONPath states only).
pub fn locally_unsupported(field: &str, lang: Lang) -> bool {
    field == "Credentials" || (lang == Lang::Jsonata && DISTRIBUTED_MAP.contains(&field))
}

/// The fields only a distributed Map has.
pub const DISTRIBUTED_MAP: &[&str] = &[
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
];

const PASS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "Result",
    "Assign",
    "Output",
];

const TASK: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "Resource",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Credentials",
    "Assign",
    "Arguments",
    "Output",
];

const CHOICE: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Choices",
    "Default",
    "InputPath",
    "OutputPath",
    "Assign",
    "Output",
];

const WAIT: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Assign",
    "Output",
];

const SUCCEED: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "InputPath",
    "OutputPath",
    "Output",
];

const FAIL: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Error",
    "ErrorPath",
    "Cause",
    "CausePath",
];

const PARALLEL: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "Branches",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
    "Assign",
    "Arguments",
    "Output",
];

const MAP: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "ItemProcessor",
    "Iterator",
    "ItemsPath",
    "Items",
    "ItemSelector",
    "Parameters",
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ResultSelector",
    "Retry",
    "Catch",
    "Assign",
    "Output",
];

/// Fields that exist only in JSONPath states, in the order they are reported.
pub const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
    "ErrorPath",
    "CausePath",
];

/// Fields that exist only in JSONata states, in the order they are reported.
pub const JSONATA_ONLY: &[&str] = &["Output", "Arguments", "Items"];

/// Fields only a JSONPath Choice rule has (beside its comparison operators and `And`, `Or`,
/// `Not`).
pub const CHOICE_RULE_JSONPATH_ONLY: &[&str] = &["Variable"];

/// Fields only a JSONata Choice rule has.
pub const CHOICE_RULE_JSONATA_ONLY: &[&str] = &["Condition"];

/// Every field of a JSONata Choice rule (an element of `Choices`).
pub const CHOICE_RULE_JSONATA: &[&str] = &["Condition", "Next", "Comment", "Assign", "Output"];

/// A retrier's fields.
pub const RETRIER: &[&str] = &[
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
];

/// A catcher's fields (`ResultPath` in JSONPath, `Output` in JSONata).
pub const CATCHER: &[&str] = &[
    "ErrorEquals",
    "Next",
    "ResultPath",
    "Comment",
    "Assign",
    "Output",
];

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// The first state type that has `field`, and a state of it that is complete with it.
    fn state_with(field: &str, value: Value) -> Value {
        let kind = StateType::NAMES
            .iter()
            .copied()
            .find(|name| StateType::parse(name).is_some_and(|k| k.fields().contains(&field)))
            .unwrap_or("Pass");
        let mut state = match kind {
            "Task" => json!({"Type": "Task", "End": true,
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"}),
            "Wait" => json!({"Type": "Wait", "End": true}),
            "Fail" => json!({"Type": "Fail"}),
            "Map" => {
                let mut processor =
                    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
                if DISTRIBUTED_MAP.contains(&field) {
                    processor["ProcessorConfig"] =
                        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
                }
                json!({"Type": "Map", "End": true, "ItemProcessor": processor})
            }
            _ => json!({"Type": kind, "End": true}),
        };
        state[field] = value;
        state
    }

    fn value_for(field: &str) -> Value {
        match field {
            "Items" => json!([1]),
            f if f.ends_with("Path") => json!("$.x"),
            _ => json!({"a": 1}),
        }
    }

    /// A machine of `lang` whose state `S` goes on to a final `Done` (else no state would
    /// be unreachable for the validator).
    fn machine(lang: Lang, mut state: Value) -> Value {
        if let Some(fields) = state.as_object_mut() {
            if fields.remove("End").is_some() {
                fields.insert("Next".into(), json!("Done"));
            }
        }
        let mut states = json!({"S": state});
        if states.to_string().contains("\"Done\"") {
            states["Done"] = json!({"Type": "Succeed"});
        }
        json!({"QueryLanguage": lang.name(), "StartAt": "S", "States": states})
    }

    /// Whether the loader and the validator each accept `definition`.
    fn verdicts(definition: &Value) -> (bool, bool) {
        let loads = crate::Machine::from_json(&definition.to_string());
        let diagnostics = crate::validate::validate(definition);
        let valid = !diagnostics
            .iter()
            .any(crate::validate::Diagnostic::is_error);
        if loads.is_ok() != valid {
            eprintln!("{definition}: {:?} / {diagnostics:?}", loads.as_ref().err());
        }
        (loads.is_ok(), valid)
    }

    /// Every language-specific field in a state (and Catcher, and Choice rule) of its own
    /// language and of the other: the loader and the validator accept the first and refuse
    /// the second alike.
    #[test]
    fn loader_and_validator_agree_on_each_language_s_fields() {
        let task = |catcher: Value| {
            let mut state = state_with(
                "Resource",
                json!("arn:aws:lambda:us-east-1:123456789012:function:f"),
            );
            state["Catch"] = json!([catcher]);
            state
        };
        let choice = |rule: Value| json!({"Type": "Choice", "Choices": [rule], "Default": "Done"});
        let mut cases = Vec::new();
        for lang in [Lang::JsonPath, Lang::Jsonata] {
            for field in lang.own_fields() {
                cases.push((lang, state_with(field, value_for(field)), field.to_string()));
            }
        }
        let catchers = [
            (
                Lang::JsonPath,
                json!({"ErrorEquals": ["States.ALL"], "Next": "Done", "ResultPath": "$.e"}),
            ),
            (
                Lang::Jsonata,
                json!({"ErrorEquals": ["States.ALL"], "Next": "Done", "Output": {"a": 1}}),
            ),
        ];
        for (lang, catcher) in catchers {
            cases.push((lang, task(catcher), "a Catcher".into()));
        }
        let rules = [
            (
                Lang::JsonPath,
                json!({"Variable": "$.x", "IsPresent": true, "Next": "Done"}),
            ),
            (
                Lang::Jsonata,
                json!({"Condition": "{% true %}", "Next": "Done"}),
            ),
        ];
        for (lang, rule) in rules {
            cases.push((lang, choice(rule), "a Choice rule".into()));
        }
        for (lang, state, what) in cases {
            let own = machine(lang, state.clone());
            assert_eq!(
                verdicts(&own),
                (true, true),
                "{what} in {}: {own}",
                lang.name()
            );
            let foreign = machine(lang.other(), state);
            assert_eq!(
                verdicts(&foreign),
                (false, false),
                "{what} in {}: {foreign}",
                lang.other().name()
            );
        }
    }

    #[test]
    fn the_map_table_holds_the_distributed_fields() {
        for field in DISTRIBUTED_MAP {
            assert!(StateType::Map.fields().contains(field), "{field}");
        }
        for lang in [Lang::JsonPath, Lang::Jsonata] {
            for field in lang.own_fields() {
                assert!(!lang.other().allows(field) && lang.allows(field), "{field}");
            }
        }
    }
}
