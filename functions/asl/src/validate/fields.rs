//! Which fields each object of the language may carry: the whole AWS set, JSONPath and
//! JSONata fields alike (which language a field belongs to is a separate check).

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

    /// Every field a state of this type may have.
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
pub(super) const TOP: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "TimeoutSeconds",
    "Version",
    "QueryLanguage",
];

/// A Parallel branch.
pub(super) const BRANCH: &[&str] = &["Comment", "StartAt", "States"];

/// A Map's `ItemProcessor` (or its older name `Iterator`).
pub(super) const PROCESSOR: &[&str] = &["Comment", "StartAt", "States", "ProcessorConfig"];

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
pub(super) const JSONPATH_ONLY: &[&str] = &[
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
pub(super) const JSONATA_ONLY: &[&str] = &["Output", "Arguments", "Items"];

/// A retrier's fields.
pub(super) const RETRIER: &[&str] = &[
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
];

/// A catcher's fields (`ResultPath` in JSONPath, `Output` in JSONata).
pub(super) const CATCHER: &[&str] = &[
    "ErrorEquals",
    "Next",
    "ResultPath",
    "Comment",
    "Assign",
    "Output",
];
