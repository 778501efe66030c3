//! Stage `plan-dates`: which logical dates a pipeline run covers — Airflow's catchup.
//!
//! Without `start_date` (a scheduled or manual run): the run's own date, plus every earlier
//! date since the pipeline's last success that never completed, within `lookback_days`, plus
//! every earlier date whose latest run failed, however old: a failed date is retried by each
//! run until it succeeds or an operator skips it (`etl runs skip`).
//! With `start_date` (a backfill): the dates in `[start_date, logical_date]` chosen by
//! `reprocess`. The state machine fans the dates out with a Map.
//!
//! The same function also resolves a scheduled start (`{"resolve": {"scheduled_time",
//! "cadence"}}`, sent by a machine's `ResolveSchedule` state) into the logical date, and hour,
//! that the run covers: one Lambda for everything about "which dates", no extra deployment.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::clients::Context;
use crate::error::StageError;
use crate::lease;
use crate::ledger::{self, Reprocess};
use crate::logical_date::{Cadence, LogicalDate, ScheduledInterval};

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

/// What EventBridge Scheduler put in the execution input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `<aws.scheduler.scheduled-time>`, replaced by the scheduler, e.g. `2026-11-26T00:30:00Z`.
    pub scheduled_time: String,
    /// `daily` or `hourly`; kept a string so an unknown one is a typed error naming it.
    pub cadence: String,
}

/// The event of the `plan-dates` function: plan a run's dates, or resolve a scheduled start.
#[derive(Debug, Clone)]
pub enum PlanDatesEvent {
    Plan(PlanEvent),
    Resolve(ResolveRequest),
}

impl<'de> Deserialize<'de> for PlanDatesEvent {
    /// Dispatches on the `resolve` key, so a malformed event of either shape gets that
    /// shape's own error message (serde's untagged enums only say "did not match").
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Resolve {
            resolve: ResolveRequest,
        }
        let value = Value::deserialize(deserializer)?;
        if value.get("resolve").is_some() {
            Resolve::deserialize(value)
                .map(|r| PlanDatesEvent::Resolve(r.resolve))
                .map_err(serde::de::Error::custom)
        } else {
            PlanEvent::deserialize(value)
                .map(PlanDatesEvent::Plan)
                .map_err(serde::de::Error::custom)
        }
    }
}

/// The output of `plan-dates`, matching the event's shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum PlanDatesOutput {
    Plan(PlanOutput),
    /// `{"logical_date": "YYYY-MM-DD", "hour": H or null}`.
    Resolved(ScheduledInterval),
}

pub async fn run(ctx: &Context, event: PlanDatesEvent) -> Result<PlanDatesOutput, StageError> {
    match event {
        PlanDatesEvent::Plan(event) => plan_run(ctx, event).await.map(PlanDatesOutput::Plan),
        PlanDatesEvent::Resolve(request) => resolve(&request).map(PlanDatesOutput::Resolved),
    }
}

/// The data interval a scheduled start covers. Bad input is `InvalidInput`: retrying a
/// garbage timestamp cannot help.
pub fn resolve(request: &ResolveRequest) -> Result<ScheduledInterval, StageError> {
    let cadence: Cadence =
        request
            .cadence
            .parse()
            .map_err(|e: crate::logical_date::ScheduledTimeError| {
                StageError::invalid_input(e.to_string())
            })?;
    let interval = ScheduledInterval::before(&request.scheduled_time, cadence)
        .map_err(|e| StageError::invalid_input(e.to_string()))?;
    tracing::info!(
        scheduled_time = %request.scheduled_time,
        %cadence,
        logical_date = %interval.logical_date,
        hour = ?interval.hour,
        "scheduled start resolved"
    );
    Ok(interval)
}

async fn plan_run(ctx: &Context, event: PlanEvent) -> Result<PlanOutput, StageError> {
    let dates = plan(ctx, &event.pipeline, &event.run).await?;
    // Every run starts here: a good moment to end the attempts of processes that died with
    // nobody retrying them, so the ledger never shows them running for long.
    let abandoned = lease::reap(ctx, Some(&event.pipeline)).await?;
    if abandoned > 0 {
        tracing::warn!(pipeline = %event.pipeline, abandoned, "attempts whose process died marked abandoned");
    }
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
        None => catch_up(ctx, pipeline, to, event.lookback_days).await,
    }
}

/// A scheduled or manual run's dates, oldest first: every date whose latest run failed,
/// however old (until it succeeds or an operator skips it), the dates since the last success
/// that never completed within `lookback_days`, and the run's own date last.
async fn catch_up(
    ctx: &Context,
    pipeline: &str,
    to: LogicalDate,
    lookback_days: u32,
) -> Result<Vec<LogicalDate>, StageError> {
    let earliest = LogicalDate::new(to.date() - chrono::Duration::days(lookback_days as i64))
        .map_err(|e| StageError::invalid_input(e.to_string()))?;
    let mut dates = ledger::failed_dates(ctx, pipeline, to).await?;
    if let Some(last) = ledger::last_success(ctx, pipeline).await? {
        if let (Some(after_last), Some(before_today)) = (
            last.next(),
            to.date().pred_opt().and_then(|d| LogicalDate::new(d).ok()),
        ) {
            if after_last <= before_today {
                let from = after_last.max(earliest);
                dates.extend(
                    ledger::dates_to_run(ctx, pipeline, from, before_today, Reprocess::Failed)
                        .await?,
                );
            }
        }
    }
    dates.sort_unstable();
    dates.dedup();
    dates.push(to);
    Ok(dates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn event(value: Value) -> Result<PlanDatesEvent, StageError> {
        crate::stage::decode_event(value)
    }

    #[test]
    fn a_resolve_event_gives_the_interval_before_the_scheduled_time() {
        let Ok(PlanDatesEvent::Resolve(request)) = event(
            json!({"resolve": {"scheduled_time": "2026-11-26T00:05:00Z", "cadence": "hourly"}}),
        ) else {
            panic!("a resolve event must decode as Resolve");
        };
        let resolved = resolve(&request).unwrap();
        assert_eq!(
            serde_json::to_value(PlanDatesOutput::Resolved(resolved)).unwrap(),
            json!({"logical_date": "2026-11-25", "hour": 23})
        );
        let daily = ResolveRequest {
            scheduled_time: "2026-11-26T00:30:00Z".into(),
            cadence: "daily".into(),
        };
        assert_eq!(
            serde_json::to_value(PlanDatesOutput::Resolved(resolve(&daily).unwrap())).unwrap(),
            json!({"logical_date": "2026-11-25", "hour": null})
        );
    }

    #[test]
    fn bad_resolve_events_are_invalid_input_naming_the_problem() {
        let cases = [
            (
                json!({"resolve": {"scheduled_time": "<aws.scheduler.scheduled-time>", "cadence": "daily"}}),
                "<aws.scheduler.scheduled-time>",
            ),
            (
                json!({"resolve": {"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "weekly"}}),
                "weekly",
            ),
        ];
        for (value, named) in cases {
            let Ok(PlanDatesEvent::Resolve(request)) = event(value) else {
                panic!("should decode");
            };
            let err = resolve(&request).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(named), "{err}");
        }
        // Missing or extra fields fail while decoding, also as InvalidInput.
        for value in [
            json!({"resolve": {"scheduled_time": "2026-11-26T00:30:00Z"}}),
            json!({"resolve": {"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily", "tz": "x"}}),
            json!({"resolve": "2026-11-26T00:30:00Z"}),
            json!({"resolve": {"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily"}, "pipeline": "hr"}),
        ] {
            let err = event(value.clone()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{value}");
        }
    }

    #[test]
    fn a_plan_event_still_decodes_as_before() {
        let decoded = event(json!({"pipeline": "hr", "run": {"logical_date": "2026-11-25"}}));
        assert!(matches!(decoded, Ok(PlanDatesEvent::Plan(ref p)) if p.pipeline == "hr"));
        let err = event(json!({"pipeline": "hr", "run": {"logical_date": "2026-11-31"}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2026-11-31"), "{err}");
    }
}
