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
//!
//! One execution runs at most [`MAX_DATES_PER_EXECUTION`] dates: every date it runs carries
//! its results through the execution's state (256 KiB) and history (25,000 events), so a
//! longer plan would fail at run time, on AWS only, after hours of work. Above it the first
//! dates in the run's order (a backfill's oldest; a catch-up's recent dates, then its oldest
//! failures) are planned and the rest reported as `remaining`; the next run continues with
//! them (see [`split_for_execution`]).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::clients::Context;
use crate::error::StageError;
use crate::lease;
use crate::ledger::{self, Reprocess};
use crate::logical_date::{Cadence, LogicalDate, ScheduledInterval};

/// A backfill longer than a year is a typo, not a plan.
pub const MAX_DATES: i64 = 366;

/// The most dates one `hr` execution runs. Measured (tests/it/maximums.rs, table in
/// docs/pipelines.md § Maximums): in the worst case, every date failing with a 1 KiB error
/// message and carrying it to the end of the execution, a date adds about 2.6 KB to the
/// state. 75 dates are the most that stay under three quarters of the 256 KiB limit (74 %),
/// and they stay at 63 % of the 25,000 history events even with every invocation
/// throttled to its last retry (each date's sync in three invocations); the quarter left is
/// for what the measurement cannot foresee (a stage's output growing, more retries).
pub const MAX_DATES_PER_EXECUTION: usize = 75;

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
    /// At most this many dates in this execution, 1 to [`MAX_DATES_PER_EXECUTION`] (the
    /// default): a run can make its executions smaller, never larger than measured.
    #[serde(default)]
    pub dates_per_execution: Option<usize>,
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
    /// The dates the run would cover beyond the most one execution runs: left to the next.
    pub remaining: Remaining,
}

/// The dates a plan leaves to the next run.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Remaining {
    pub count: usize,
    /// The oldest of them (`null` when none remain). A backfill's are all newer than the
    /// dates it planned: it continues from this one, with the same `logical_date` and
    /// `reprocess`. A scheduled run needs nothing: the next one plans them again (failed
    /// dates, and dates since the last success).
    pub from: Option<LogicalDate>,
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

/// The dates one execution runs: the first of the run's dates in their run order (see
/// [`dates_in_run_order`]), at most `dates_per_execution`, as Map items oldest first.
async fn plan_run(ctx: &Context, event: PlanEvent) -> Result<PlanOutput, StageError> {
    let limit = dates_per_execution(&event.run)?;
    let (dates, remaining) = split_for_execution(
        dates_in_run_order(ctx, &event.pipeline, &event.run).await?,
        limit,
    );
    // Every run starts here: a good moment to end the attempts of processes that died with
    // nobody retrying them, so the ledger never shows them running for long.
    let abandoned = lease::reap(ctx, Some(&event.pipeline)).await?;
    if abandoned > 0 {
        tracing::warn!(pipeline = %event.pipeline, abandoned, "attempts whose process died marked abandoned");
    }
    tracing::info!(pipeline = %event.pipeline, count = dates.len(), first = ?dates.first(), "dates planned");
    if remaining.count > 0 {
        tracing::warn!(
            pipeline = %event.pipeline,
            remaining = remaining.count,
            from = ?remaining.from,
            limit,
            "more dates than one execution runs: the rest are left to the next run"
        );
    }
    let items = plan_items(
        &dates,
        event.run.params.as_ref(),
        event.execution.as_deref(),
    );
    Ok(PlanOutput {
        pipeline: event.pipeline,
        count: dates.len(),
        dates,
        items,
        remaining,
    })
}

/// The most dates this run's execution may run: its `dates_per_execution`, or the maximum.
fn dates_per_execution(run: &RunRequest) -> Result<usize, StageError> {
    match run.dates_per_execution {
        None => Ok(MAX_DATES_PER_EXECUTION),
        Some(n) if (1..=MAX_DATES_PER_EXECUTION).contains(&n) => Ok(n),
        Some(n) => Err(StageError::invalid_input(format!(
            "dates_per_execution is {n}: it must be 1 to {MAX_DATES_PER_EXECUTION}, the most \
             one execution runs inside Step Functions' limits"
        ))),
    }
}

/// The first `limit` of `dates` (in the order the run takes them) for this execution, oldest
/// first, and what is left for the next one.
pub fn split_for_execution(
    mut dates: Vec<LogicalDate>,
    limit: usize,
) -> (Vec<LogicalDate>, Remaining) {
    let later = dates.split_off(limit.min(dates.len()));
    dates.sort_unstable();
    let remaining = Remaining {
        count: later.len(),
        from: later.iter().min().copied(),
    };
    (dates, remaining)
}

/// One Map item per date, as `plan-dates` returns them: the run's stage parameters, the date
/// and the execution's name.
pub fn plan_items(
    dates: &[LogicalDate],
    params: Option<&Map<String, Value>>,
    execution: Option<&str>,
) -> Vec<Value> {
    dates
        .iter()
        .map(|date| {
            let mut item = params.cloned().unwrap_or_default();
            item.insert("logical_date".into(), Value::String(date.to_string()));
            item.insert(
                "execution".into(),
                execution.map_or(Value::Null, |name| Value::String(name.to_string())),
            );
            Value::Object(item)
        })
        .collect()
}

/// Every date the run covers, oldest first, however many executions that takes (see
/// [`plan_run`] for what one execution takes of them).
pub async fn plan(
    ctx: &Context,
    pipeline: &str,
    event: &RunRequest,
) -> Result<Vec<LogicalDate>, StageError> {
    let mut dates = dates_in_run_order(ctx, pipeline, event).await?;
    dates.sort_unstable();
    Ok(dates)
}

/// Every date the run covers, in the order executions take them: a backfill's oldest first,
/// a catch-up's as [`catch_up`] says.
async fn dates_in_run_order(
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

/// A scheduled or manual run's dates, in the order its executions take them: first the dates
/// since the pipeline's last success that never completed, within `lookback_days`, and the
/// run's own date, oldest first; then every older date whose latest run failed, however old
/// (until it succeeds or an operator skips it), oldest first. The recent dates come first so
/// that more failed dates than one execution runs, failing again run after run, never keep
/// the pipeline from its own day; the failed dates an execution leaves are planned again by
/// the next run, and recent ones it leaves (a look-back longer than an execution) are newer
/// than every date it ran, so the next run's window since the last success still has them.
async fn catch_up(
    ctx: &Context,
    pipeline: &str,
    to: LogicalDate,
    lookback_days: u32,
) -> Result<Vec<LogicalDate>, StageError> {
    let earliest = LogicalDate::new(to.date() - chrono::Duration::days(lookback_days as i64))
        .map_err(|e| StageError::invalid_input(e.to_string()))?;
    let mut dates = Vec::new();
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
    dates.push(to);
    // Failed dates inside the window are in it already (never completed).
    let older_failures: Vec<LogicalDate> = ledger::failed_dates(ctx, pipeline, to)
        .await?
        .into_iter()
        .filter(|date| !dates.contains(date))
        .collect();
    dates.extend(older_failures);
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

    fn days(first: &str, n: u32) -> Vec<LogicalDate> {
        let first: LogicalDate = first.parse().unwrap();
        (0..n)
            .map(|i| LogicalDate::new(first.date() + chrono::Duration::days(i.into())).unwrap())
            .collect()
    }

    #[test]
    fn a_plan_longer_than_an_execution_keeps_the_oldest_and_leaves_the_rest() {
        let all = days("2026-11-01", 10);
        let (planned, remaining) = split_for_execution(all.clone(), 4);
        assert_eq!(planned, all[..4]);
        // In a catch-up's order (recent dates, then older failures): the planned ones are
        // given oldest first, and `from` is the oldest left.
        let catch_up_order = [&all[7..], &all[..7]].concat();
        let (planned, left) = split_for_execution(catch_up_order, 4);
        assert_eq!(planned, [all[0], all[7], all[8], all[9]]);
        assert_eq!(
            left,
            Remaining {
                count: 6,
                from: Some(all[1])
            }
        );
        assert_eq!(
            remaining,
            Remaining {
                count: 6,
                from: Some(all[4])
            }
        );
        for limit in [10, 11, MAX_DATES_PER_EXECUTION] {
            let (planned, remaining) = split_for_execution(all.clone(), limit);
            assert_eq!(planned, all, "limit {limit}");
            assert_eq!(remaining, Remaining::default());
        }
        assert_eq!(
            serde_json::to_value(split_for_execution(all.clone(), 9).1).unwrap(),
            json!({"count": 1, "from": "2026-11-10"})
        );
        assert_eq!(
            serde_json::to_value(Remaining::default()).unwrap(),
            json!({"count": 0, "from": null})
        );
    }

    #[test]
    fn dates_per_execution_lowers_the_maximum_and_cannot_raise_it() {
        let run = |extra: Value| -> RunRequest {
            let mut input = json!({"logical_date": "2026-11-25"});
            input
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(input).unwrap()
        };
        assert_eq!(
            dates_per_execution(&run(json!({}))).unwrap(),
            MAX_DATES_PER_EXECUTION
        );
        assert_eq!(
            dates_per_execution(&run(json!({"dates_per_execution": 3}))).unwrap(),
            3
        );
        for n in [0, MAX_DATES_PER_EXECUTION + 1] {
            let err = dates_per_execution(&run(json!({"dates_per_execution": n}))).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(
                err.to_string()
                    .contains(&format!("1 to {MAX_DATES_PER_EXECUTION}")),
                "{err}"
            );
        }
    }

    #[test]
    fn items_carry_the_params_the_date_and_the_execution() {
        let params = json!({"count": 100, "seed": 7, "locale": "es_ES"});
        let items = plan_items(
            &days("2026-11-01", 2),
            params.as_object(),
            Some("hr-backfill"),
        );
        assert_eq!(
            items,
            vec![
                json!({"count": 100, "seed": 7, "locale": "es_ES", "logical_date": "2026-11-01", "execution": "hr-backfill"}),
                json!({"count": 100, "seed": 7, "locale": "es_ES", "logical_date": "2026-11-02", "execution": "hr-backfill"}),
            ]
        );
        assert_eq!(
            plan_items(&days("2026-11-01", 1), None, None),
            vec![json!({"logical_date": "2026-11-01", "execution": null})]
        );
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
