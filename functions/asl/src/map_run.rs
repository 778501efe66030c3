//! What a distributed Map leaves behind: its Map Run and the child workflow executions it
//! started, each with its own history (what [`crate::Execution::map_runs`] reports).
//!
//! Source: "Using Map state in Distributed mode" (key terms: Map Run, child workflow
//! execution), <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Event, Failure};

/// One run of a distributed Map state.
#[derive(Debug, Clone)]
pub struct MapRun {
    /// `arn:aws:states:…:mapRun:<state machine>/<label>:<id>`.
    pub arn: String,
    /// The Map state that started it.
    pub state: String,
    pub label: String,
    /// In item order; one per item, or per batch with an `ItemBatcher`.
    pub children: Vec<ChildExecution>,
}

impl MapRun {
    /// The id at the end of the ARN: the folder the `ResultWriter` writes into.
    pub fn id(&self) -> &str {
        self.arn.rsplit(':').next().unwrap_or_default()
    }
}

/// How a child execution ended, or that it never started because the Map Run failed first.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildStatus {
    Succeeded(Value),
    Failed(Failure),
    Pending,
}

impl ChildStatus {
    /// As `DescribeExecution` names it.
    pub fn name(&self) -> &'static str {
        match self {
            ChildStatus::Succeeded(_) => "SUCCEEDED",
            ChildStatus::Failed(_) => "FAILED",
            ChildStatus::Pending => "PENDING",
        }
    }
}

/// One child workflow execution of a Map Run.
#[derive(Debug, Clone)]
pub struct ChildExecution {
    /// `arn:aws:states:…:execution:<state machine>/<label>:<name>`.
    pub arn: String,
    /// A UUID.
    pub name: String,
    /// `arn:aws:states:…:stateMachine:<state machine>/<label>`.
    pub state_machine_arn: String,
    /// `STANDARD` or `EXPRESS`.
    pub execution_type: &'static str,
    pub input: Value,
    /// Items in its input: 1, or the size of its batch.
    pub items: usize,
    pub status: ChildStatus,
    pub start_date: Option<DateTime<Utc>>,
    pub stop_date: Option<DateTime<Utc>>,
    /// Its own history, apart from the parent's.
    pub history: Vec<Event>,
    /// The service events of its own history, which its own 25,000-event quota counts.
    pub service_events: BTreeMap<&'static str, u64>,
}
