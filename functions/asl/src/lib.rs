//! A local interpreter for Amazon States Language, in both its query languages (JSONPath and
//! JSONata, state by state).
//!
//! It runs the same definition files that are deployed to AWS Step Functions, so a pipeline
//! can be run and tested end to end on a laptop. Task states are delegated to a
//! [`TaskInvoker`]; [`lambda::LambdaTasks`] adapts one for Lambda-invoking tasks.
//! It is at least as strict as the service where a local pass could hide a cloud failure:
//! payload sizes, the execution history quota and the inline Map's concurrency follow
//! [`limits`]. What it does not implement is refused explicitly at load. A
//! distributed Map reaches S3 through an [`item_store::ItemStore`] given in [`RunOptions`].

mod choice;
#[cfg(test)]
mod conformance;
mod executor;
mod fields;
mod intrinsics;
mod item_batcher;
mod item_reader;
pub mod item_store;
pub mod jsonata;
pub mod lambda;
pub mod limits;
pub mod map_run;
mod model;
mod path;
pub mod redrive;
mod result_writer;
mod template;
pub mod validate;
mod variables;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

pub use executor::{execute, Execution, Observed, Observer, RunOptions};
pub use model::Machine;
pub use redrive::{Journal, Redrive};

/// A definition that cannot be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AslError {
    #[error("invalid state machine definition: {0}")]
    Definition(String),
}

/// An error as Step Functions names it: `Error` is what Retry/Catch match, `Cause` the detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct Failure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause")]
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// A problem with paths or templates while running: not retried, not caught.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(errors::RUNTIME, cause)
    }
}

/// The predefined error names.
pub mod errors {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// A state's input or output, or a Task's result, over the payload quota. Terminal:
    /// `States.ALL` and `States.TaskFailed` do not match it, only its own name does.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A distributed Map's failed items went past its tolerated failure threshold.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A distributed Map's `ItemReader` could not read its items.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// A distributed Map's `ResultWriter` could not write its results.
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
}

/// What a Task state asks its invoker to do.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub resource: String,
    /// The state's input after `InputPath` and `Parameters`.
    pub parameters: Value,
    pub state: String,
    /// 0 on the first try, then 1, 2… on retries.
    pub retry_count: u32,
    pub execution_name: String,
}

/// Runs Task states.
pub trait TaskInvoker: Send + Sync {
    fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>>;
}

/// What happened during an execution, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    StateEntered {
        state: String,
        state_type: String,
    },
    StateExited {
        state: String,
    },
    TaskFailed {
        state: String,
        error: String,
        retry_count: u32,
    },
    RetryScheduled {
        state: String,
        error: String,
        retry_count: u32,
        delay_seconds: f64,
    },
    Caught {
        state: String,
        error: String,
        next: String,
    },
    /// A Map state started its work over `length` items: an inline Map its iterations, a
    /// distributed Map its Map Run (whose `MapRunStarted` follows). Step Functions'
    /// `MapStateStarted`, whose details are `{"length": n}`.
    MapStateStarted {
        state: String,
        length: usize,
    },
    /// An inline Map's iteration over the item at `index` started; the events of the states
    /// it runs follow, interleaved with the other running iterations'. Step Functions'
    /// `MapIterationStarted` (details `{"name": <Map state>, "index": i}`), as are the two
    /// below. A distributed Map has no iterations: its items run as child executions.
    MapIterationStarted {
        state: String,
        index: usize,
    },
    MapIterationSucceeded {
        state: String,
        index: usize,
    },
    MapIterationFailed {
        state: String,
        index: usize,
    },
    /// A distributed Map state started a Map Run; its children's events are in
    /// [`map_run::MapRun`], not here.
    MapRunStarted {
        state: String,
        map_run_arn: String,
    },
    MapRunSucceeded {
        state: String,
    },
    MapRunFailed {
        state: String,
        error: String,
        cause: String,
    },
    /// A redrive resumed the execution: the states its earlier attempts completed are not
    /// entered again (see [`redrive`]).
    ExecutionRedriven {
        redrive_count: u32,
        replayed_steps: usize,
    },
    ExecutionSucceeded,
    ExecutionFailed {
        error: String,
        cause: String,
    },
}
