//! Stage `record-run`: writes a pipeline run's outcome for one date to the run ledger. The
//! state machines call it last on success, and from their Catch on failure.

use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::ledger;
use crate::logical_date::LogicalDate;
use crate::metrics;

/// Step Functions' error document, as a Catch writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordEvent {
    pub pipeline: String,
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub execution: Option<String>,
    /// Present when the run failed.
    #[serde(default)]
    pub error: Option<CaughtError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordOutput {
    pub run_id: i64,
    pub pipeline: String,
    pub logical_date: LogicalDate,
    pub status: &'static str,
}

pub async fn run(ctx: &Context, event: RecordEvent) -> Result<RecordOutput, StageError> {
    let failure = event
        .error
        .as_ref()
        .map(|e| (e.error.as_str(), e.cause.as_deref().unwrap_or("")));
    let run_id = ledger::record_outcome(
        ctx,
        &event.pipeline,
        event.logical_date,
        event.execution.as_deref(),
        failure,
    )
    .await?;
    // After the ledger write, so a run the ledger lacks is never counted. `RunSucceeded` feeds
    // the "no successful run" alarms of template.yaml.
    metrics::record_run(&event.pipeline, failure.is_none());
    Ok(RecordOutput {
        run_id,
        pipeline: event.pipeline,
        logical_date: event.logical_date,
        status: if failure.is_some() {
            "failed"
        } else {
            "succeeded"
        },
    })
}
