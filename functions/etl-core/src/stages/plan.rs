//! Stage `plan-dates`: which logical dates a pipeline run covers — Airflow's catchup.
//!
//! Without `start_date` (a scheduled or manual run): the run's own date, plus every earlier
//! date since the pipeline's last success that never completed, within `lookback_days`.
//! With `start_date` (a backfill): the dates in `[start_date, logical_date]` chosen by
//! `reprocess`. The state machine fans the dates out with a Map.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clients::Context;
use crate::error::StageError;
use crate::ledger::{self, Reprocess};
use crate::logical_date::LogicalDate;

/// A backfill longer than a year is a typo, not a plan.
pub const MAX_DATES: i64 = 366;

fn default_lookback() -> u32 {
    31
}

/// What a pipeline execution was asked to do: its input.
#[derive(Debug, Clone, Deserialize)]
pub struct RunRequest {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub start_date: Option<LogicalDate>,
    #[serde(default)]
    pub reprocess: Option<Reprocess>,
    #[serde(default = "default_lookback")]
    pub lookback_days: u32,
    /// Stage parameters (e.g. `count`, `seed`), copied into every planned item.
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanEvent {
    pub pipeline: String,
    #[serde(default)]
    pub execution: Option<String>,
    pub run: RunRequest,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanOutput {
    pub pipeline: String,
    pub dates: Vec<LogicalDate>,
    pub count: usize,
    /// One Map item per date: `{"logical_date", "execution", …params}`.
    pub items: Vec<Value>,
}

pub async fn run(ctx: &Context, event: PlanEvent) -> Result<PlanOutput, StageError> {
    let dates = plan(ctx, &event.pipeline, &event.run).await?;
    tracing::info!(pipeline = %event.pipeline, count = dates.len(), first = ?dates.first(), "dates planned");
    let params = event.run.params.clone().unwrap_or_default();
    let items = dates
        .iter()
        .map(|date| {
            let mut item = params.clone();
            item.insert("logical_date".into(), Value::String(date.to_string()));
            item.insert(
                "execution".into(),
                event.execution.clone().map_or(Value::Null, Value::String),
            );
            Value::Object(item)
        })
        .collect();
    Ok(PlanOutput {
        pipeline: event.pipeline,
        count: dates.len(),
        dates,
        items,
    })
}

pub async fn plan(
    ctx: &Context,
    pipeline: &str,
    event: &RunRequest,
) -> Result<Vec<LogicalDate>, StageError> {
    if pipeline.is_empty()
        || !pipeline
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(StageError::invalid_input(format!(
            "pipeline {pipeline:?} is not a pipeline name"
        )));
    }
    if event.lookback_days as i64 > MAX_DATES {
        return Err(StageError::invalid_input(format!(
            "lookback_days is at most {MAX_DATES}"
        )));
    }
    let to = event.logical_date;
    match event.start_date {
        Some(from) => {
            let span = (to.date() - from.date()).num_days() + 1;
            if span < 1 {
                return Err(StageError::invalid_input(format!(
                    "start_date {from} is after logical_date {to}"
                )));
            }
            if span > MAX_DATES {
                return Err(StageError::invalid_input(format!(
                    "{span} dates from {from} to {to}: at most {MAX_DATES} per backfill"
                )));
            }
            ledger::dates_to_run(ctx, pipeline, from, to, event.reprocess.unwrap_or_default()).await
        }
        None => {
            let earliest =
                LogicalDate::new(to.date() - chrono::Duration::days(event.lookback_days as i64))
                    .map_err(|e| StageError::invalid_input(e.to_string()))?;
            let mut dates = match ledger::last_success(ctx, pipeline).await? {
                Some(last) => match (
                    last.next(),
                    to.date().pred_opt().and_then(|d| LogicalDate::new(d).ok()),
                ) {
                    (Some(after_last), Some(before_today)) if after_last <= before_today => {
                        let from = after_last.max(earliest);
                        ledger::dates_to_run(ctx, pipeline, from, before_today, Reprocess::Failed)
                            .await?
                    }
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            dates.push(to);
            Ok(dates)
        }
    }
}
