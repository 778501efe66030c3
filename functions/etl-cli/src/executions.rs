//! The executions `etl run` ran, kept in `etl.executions` (migration 5) as Step Functions keeps
//! them: definition, input, how they ended and the journal a redrive replays.

use asl::redrive::{self, Ended, NotRedrivable};
use asl::{Journal, Redrive};
use chrono::{DateTime, Utc};
use etl_core::clients::PgClient;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One execution, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExecution {
    pub name: String,
    pub machine: String,
    /// The definition it ran, substitutions made: a redrive runs the same one.
    pub definition: String,
    pub input: Value,
    /// `SUCCEEDED` or `FAILED` (the statuses a local run ends with).
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub output: Option<Value>,
    pub redrive_count: u32,
    /// Every history event its attempts wrote, as the service counts them.
    pub history_events: u64,
    pub journal: Journal,
    pub started_at: DateTime<Utc>,
    pub stopped_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutionStoreError {
    #[error("the executions table: {0} (is the schema up to date? run `etl run hr-setup`)")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("execution {0:?} is not among the local executions (etl.executions)")]
    NotFound(String),
    #[error("execution {name}: its stored journal does not parse: {source}")]
    Journal {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    NotRedrivable(#[from] NotRedrivable),
}

impl StoredExecution {
    /// What a redrive of this execution resumes from, if the service would redrive it now.
    pub fn redrive(&self, now: DateTime<Utc>) -> Result<Redrive, NotRedrivable> {
        let ended = match self.status.as_str() {
            "SUCCEEDED" => Ended::Succeeded,
            "RUNNING" => Ended::Running,
            _ => Ended::Unsuccessful,
        };
        redrive::check_redrivable(
            &self.name,
            ended,
            self.stopped_at,
            now,
            self.redrive_count,
            self.history_events,
        )?;
        Ok(Redrive {
            journal: self.journal.clone(),
            count: self.redrive_count,
            prior_events: self.history_events,
        })
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Inserts the execution, or replaces it after a redrive (same name).
pub async fn save(
    client: &PgClient,
    execution: &StoredExecution,
) -> Result<(), ExecutionStoreError> {
    let journal = serde_json::to_value(&execution.journal).map_err(|source| {
        ExecutionStoreError::Journal {
            name: execution.name.clone(),
            source,
        }
    })?;
    let redrive_count = i32::try_from(execution.redrive_count).unwrap_or(i32::MAX);
    client
        .execute(
            "INSERT INTO etl.executions (name, machine, definition, input, status, error, cause,
                 output, redrive_count, history_events, journal, started_at, stopped_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error,
                 cause = EXCLUDED.cause, output = EXCLUDED.output,
                 redrive_count = EXCLUDED.redrive_count,
                 history_events = EXCLUDED.history_events, journal = EXCLUDED.journal,
                 stopped_at = EXCLUDED.stopped_at",
            &[
                &execution.name,
                &execution.machine,
                &execution.definition,
                &execution.input,
                &execution.status,
                &execution.error,
                &execution.cause,
                &execution.output,
                &redrive_count,
                &to_i64(execution.history_events),
                &journal,
                &execution.started_at,
                &execution.stopped_at,
            ],
        )
        .await?;
    Ok(())
}

pub async fn load(client: &PgClient, name: &str) -> Result<StoredExecution, ExecutionStoreError> {
    let row = client
        .query_opt(
            "SELECT name, machine, definition, input, status, error, cause, output,
                    redrive_count, history_events, journal, started_at, stopped_at
               FROM etl.executions WHERE name = $1",
            &[&name],
        )
        .await?
        .ok_or_else(|| ExecutionStoreError::NotFound(name.to_string()))?;
    let journal: Value = row.get("journal");
    let journal =
        serde_json::from_value(journal).map_err(|source| ExecutionStoreError::Journal {
            name: name.to_string(),
            source,
        })?;
    let redrive_count: i32 = row.get("redrive_count");
    let history_events: i64 = row.get("history_events");
    let started_at: DateTime<Utc> = row.get("started_at");
    let stopped_at: Option<DateTime<Utc>> = row.get("stopped_at");
    Ok(StoredExecution {
        name: row.get("name"),
        machine: row.get("machine"),
        definition: row.get("definition"),
        input: row.get("input"),
        status: row.get("status"),
        error: row.get("error"),
        cause: row.get("cause"),
        output: row.get("output"),
        redrive_count: u32::try_from(redrive_count).unwrap_or(0),
        history_events: u64::try_from(history_events).unwrap_or(0),
        journal,
        started_at,
        stopped_at: stopped_at.unwrap_or(started_at),
    })
}

/// One event of an execution's history, as Step Functions' `GetExecutionHistory` returns it:
/// `details` holds the type-specific object under the service's key, e.g.
/// `stateEnteredEventDetails`. Two local types have no service counterpart: `RetryScheduled`
/// (a Retrier's delay before the next attempt) and `ErrorCaught` (a Catcher's transition);
/// the service shows those only as a failure followed by the next state's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: i64,
    #[serde(rename = "previousEventId")]
    pub previous_event_id: i64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object, whatever its key.
    pub fn detail(&self) -> Option<&Map<String, Value>> {
        self.details.values().find_map(Value::as_object)
    }

    /// A string field of the details (`name`, `error`, `cause`…).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.detail()?.get(name)?.as_str()
    }
}

/// `GetExecutionHistory`'s response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionHistory {
    pub events: Vec<HistoryEvent>,
}

/// The service's events for what the engine recorded, numbered from `first_id`. A first
/// attempt (`started`: its start time, input and machine ARN) opens with `ExecutionStarted`,
/// which the engine does not record.
pub fn history_events(
    recorded: &[asl::Event],
    times: &[DateTime<Utc>],
    started: Option<&StoredExecution>,
    first_id: i64,
) -> Vec<HistoryEvent> {
    let mut events = Vec::with_capacity(recorded.len() + 1);
    let mut push = |at: DateTime<Utc>, event_type: String, details: Option<(&str, Value)>| {
        let id = first_id + i64::try_from(events.len()).unwrap_or(i64::MAX - first_id);
        let details = details
            .map(|(key, value)| Map::from_iter([(key.to_string(), value)]))
            .unwrap_or_default();
        events.push(HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp: at,
            event_type,
            details,
        });
    };
    if let Some(execution) = started {
        let details = json!({
            "input": execution.input.to_string(),
            "roleArn": "arn:aws:iam::000000000000:role/local-execution",
            "stateMachineArn": format!("arn:aws:states:local:000000000000:stateMachine:{}", execution.machine),
        });
        push(
            execution.started_at,
            "ExecutionStarted".into(),
            Some(("executionStartedEventDetails", details)),
        );
    }
    let mut state_types: HashMap<&str, &str> = HashMap::new();
    let fallback = times.last().copied().unwrap_or_else(Utc::now);
    for (index, event) in recorded.iter().enumerate() {
        let at = times.get(index).copied().unwrap_or(fallback);
        let (event_type, details) = service_event(event, &mut state_types);
        push(at, event_type, details);
    }
    events
}

/// The service's type and details for one engine event.
fn service_event<'a>(
    event: &'a asl::Event,
    state_types: &mut HashMap<&'a str, &'a str>,
) -> (String, Details) {
    use asl::Event as E;
    match event {
        E::StateEntered { state, state_type } => {
            state_types.insert(state, state_type);
            (
                format!("{state_type}StateEntered"),
                Some(("stateEnteredEventDetails", json!({"name": state}))),
            )
        }
        E::StateExited { state } => {
            let state_type = state_types.get(state.as_str()).copied().unwrap_or("");
            (
                format!("{state_type}StateExited"),
                Some(("stateExitedEventDetails", json!({"name": state}))),
            )
        }
        // The engine records a failed attempt of any state with Retry/Catch as TaskFailed; the
        // service names a Map's or a Parallel's `MapStateFailed`, `ParallelStateFailed`.
        E::TaskFailed {
            state,
            error,
            retry_count,
        } => match state_types.get(state.as_str()).copied() {
            Some(state_type) if state_type != "Task" => (
                format!("{state_type}StateFailed"),
                Some((
                    "stateFailedEventDetails",
                    json!({"name": state, "error": error, "retryCount": retry_count}),
                )),
            ),
            _ => (
                "TaskFailed".into(),
                Some((
                    "taskFailedEventDetails",
                    json!({"resourceType": "lambda", "resource": "invoke", "error": error,
                           "name": state, "retryCount": retry_count}),
                )),
            ),
        },
        E::RetryScheduled {
            state,
            error,
            retry_count,
            delay_seconds,
        } => (
            "RetryScheduled".into(),
            Some((
                "retryScheduledEventDetails",
                json!({"name": state, "error": error, "retryCount": retry_count,
                       "delaySeconds": delay_seconds}),
            )),
        ),
        E::Caught { state, error, next } => (
            "ErrorCaught".into(),
            Some((
                "errorCaughtEventDetails",
                json!({"name": state, "error": error, "next": next}),
            )),
        ),
        E::MapStateStarted { .. }
        | E::MapIterationStarted { .. }
        | E::MapIterationSucceeded { .. }
        | E::MapIterationFailed { .. }
        | E::MapRunStarted { .. }
        | E::MapRunSucceeded { .. }
        | E::MapRunFailed { .. } => map_event(event),
        E::ExecutionRedriven { redrive_count, .. } => (
            "ExecutionRedriven".into(),
            Some((
                "executionRedrivenEventDetails",
                json!({"redriveCount": redrive_count}),
            )),
        ),
        E::ExecutionSucceeded => ("ExecutionSucceeded".into(), None),
        E::ExecutionFailed { error, cause } => (
            "ExecutionFailed".into(),
            Some((
                "executionFailedEventDetails",
                json!({"error": error, "cause": cause}),
            )),
        ),
    }
}

/// A history event's details: the service's key for them (e.g. `stateEnteredEventDetails`)
/// and their fields.
type Details = Option<(&'static str, Value)>;

/// The service's type and details for a Map state's events: its start, its inline
/// iterations', its Map Run's.
fn map_event(event: &asl::Event) -> (String, Details) {
    use asl::Event as E;
    let iteration = |key: &'static str, state: &str, index: &usize| {
        Some((key, json!({"name": state, "index": index})))
    };
    match event {
        // The service's shapes: `MapStateStartedEventDetails` has only the length, an
        // iteration's `MapIterationEventDetails` its Map state's name and item index.
        E::MapStateStarted { length, .. } => (
            "MapStateStarted".into(),
            Some(("mapStateStartedEventDetails", json!({"length": length}))),
        ),
        E::MapIterationStarted { state, index } => (
            "MapIterationStarted".into(),
            iteration("mapIterationStartedEventDetails", state, index),
        ),
        E::MapIterationSucceeded { state, index } => (
            "MapIterationSucceeded".into(),
            iteration("mapIterationSucceededEventDetails", state, index),
        ),
        E::MapIterationFailed { state, index } => (
            "MapIterationFailed".into(),
            iteration("mapIterationFailedEventDetails", state, index),
        ),
        E::MapRunStarted { state, map_run_arn } => (
            "MapRunStarted".into(),
            Some((
                "mapRunStartedEventDetails",
                json!({"mapRunArn": map_run_arn, "name": state}),
            )),
        ),
        E::MapRunSucceeded { .. } => ("MapRunSucceeded".into(), None),
        E::MapRunFailed {
            state,
            error,
            cause,
        } => (
            "MapRunFailed".into(),
            Some((
                "mapRunFailedEventDetails",
                json!({"error": error, "cause": cause, "name": state}),
            )),
        ),
        // `service_event` sends only the Map's events here; any other keeps the engine's
        // name for it.
        other => (
            serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("type")?.as_str().map(String::from))
                .unwrap_or_default(),
            None,
        ),
    }
}

/// The execution and its history: the history appended after the events earlier attempts
/// stored (a redrive's), opening with `ExecutionStarted` on a first attempt.
pub async fn save_with_history(
    client: &PgClient,
    execution: &StoredExecution,
    recorded: &[asl::Event],
    times: &[DateTime<Utc>],
) -> Result<(), ExecutionStoreError> {
    save(client, execution).await?;
    let last_id: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(id), 0) FROM etl.execution_events WHERE execution = $1",
            &[&execution.name],
        )
        .await?
        .get(0);
    let started = (execution.redrive_count == 0).then_some(execution);
    let events = history_events(recorded, times, started, last_id + 1);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let previous: Vec<i64> = events.iter().map(|e| e.previous_event_id).collect();
    let stamps: Vec<DateTime<Utc>> = events.iter().map(|e| e.timestamp).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let details: Vec<Value> = events
        .iter()
        .map(|e| Value::Object(e.details.clone()))
        .collect();
    client
        .execute(
            "INSERT INTO etl.execution_events
                 (execution, id, previous_event_id, \"timestamp\", type, details)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::timestamptz[],
                                      $5::text[], $6::jsonb[])",
            &[&execution.name, &ids, &previous, &stamps, &types, &details],
        )
        .await?;
    Ok(())
}

/// An execution's stored history, oldest event first.
pub async fn load_history(
    client: &PgClient,
    name: &str,
) -> Result<ExecutionHistory, ExecutionStoreError> {
    let rows = client
        .query(
            "SELECT id, previous_event_id, \"timestamp\", type, details
               FROM etl.execution_events WHERE execution = $1 ORDER BY id",
            &[&name],
        )
        .await?;
    if rows.is_empty() {
        let known = client
            .query_opt("SELECT 1 FROM etl.executions WHERE name = $1", &[&name])
            .await?;
        if known.is_none() {
            return Err(ExecutionStoreError::NotFound(name.to_string()));
        }
    }
    let events = rows
        .iter()
        .map(|row| {
            let details: Value = row.get(4);
            HistoryEvent {
                id: row.get(0),
                previous_event_id: row.get(1),
                timestamp: row.get(2),
                event_type: row.get(3),
                details: match details {
                    Value::Object(map) => map,
                    _ => Map::new(),
                },
            }
        })
        .collect();
    Ok(ExecutionHistory { events })
}

/// The name an execution ARN ends with (`…:execution:<machine>:<name>`), or the name itself.
pub fn execution_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit(':').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: &str) -> StoredExecution {
        let at: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        StoredExecution {
            name: "hr-x".into(),
            machine: "hr".into(),
            definition: "{}".into(),
            input: Value::Null,
            status: status.into(),
            error: None,
            cause: None,
            output: None,
            redrive_count: 2,
            history_events: 40,
            journal: Journal::default(),
            started_at: at,
            stopped_at: at,
        }
    }

    #[test]
    fn a_failed_execution_redrives_from_its_journal_and_counts() {
        let now: DateTime<Utc> = "2026-12-06T11:00:00Z".parse().unwrap();
        let redrive = stored("FAILED").redrive(now).unwrap();
        assert_eq!((redrive.count, redrive.prior_events), (2, 40));
        assert!(matches!(
            stored("SUCCEEDED").redrive(now),
            Err(NotRedrivable::Succeeded(_))
        ));
        assert!(stored("TIMED_OUT").redrive(now).is_ok());
    }

    #[test]
    fn a_first_attempt_opens_with_execution_started_and_numbers_every_event() {
        let at: DateTime<Utc> = "2026-12-06T10:00:01Z".parse().unwrap();
        let recorded = [
            asl::Event::StateEntered {
                state: "Hire".into(),
                state_type: "Task".into(),
            },
            asl::Event::TaskFailed {
                state: "Hire".into(),
                error: "Lambda.Unknown".into(),
                retry_count: 0,
            },
            asl::Event::StateExited {
                state: "Hire".into(),
            },
            asl::Event::ExecutionFailed {
                error: "States.TaskFailed".into(),
                cause: "boom".into(),
            },
        ];
        let events = history_events(&recorded, &[at; 4], Some(&stored("FAILED")), 1);
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "TaskStateEntered",
                "TaskFailed",
                "TaskStateExited",
                "ExecutionFailed"
            ]
        );
        assert_eq!(
            events
                .iter()
                .map(|e| (e.id, e.previous_event_id))
                .collect::<Vec<_>>(),
            [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
        );
        assert_eq!(events[4].field("cause"), Some("boom"));
        let json = serde_json::to_value(&events[1]).unwrap();
        assert_eq!(json["stateEnteredEventDetails"]["name"], "Hire");
        assert_eq!(json["previousEventId"], 1);
        assert_eq!(json["type"], "TaskStateEntered");
        let back: HistoryEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, events[1]);
    }

    #[test]
    fn a_redrive_appends_after_the_stored_events_without_a_second_start() {
        let recorded = [asl::Event::ExecutionRedriven {
            redrive_count: 1,
            replayed_steps: 3,
        }];
        let events = history_events(&recorded, &[], None, 9);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].id, events[0].previous_event_id), (9, 8));
        assert_eq!(events[0].event_type, "ExecutionRedriven");
    }

    #[test]
    fn a_failed_map_is_a_map_state_failure_not_a_task_failure() {
        let recorded = [
            asl::Event::StateEntered {
                state: "EachDate".into(),
                state_type: "Map".into(),
            },
            asl::Event::TaskFailed {
                state: "EachDate".into(),
                error: "Fatal".into(),
                retry_count: 0,
            },
        ];
        let events = history_events(&recorded, &[], None, 1);
        assert_eq!(events[1].event_type, "MapStateFailed");
        assert_eq!(events[1].field("name"), Some("EachDate"));
    }

    #[test]
    fn a_map_keeps_its_length_and_iterations_in_the_services_shapes() {
        use asl::Event as E;
        let (state, index) = ("EachDate".to_string(), 1);
        let recorded = [
            E::StateEntered {
                state: state.clone(),
                state_type: "Map".into(),
            },
            E::MapStateStarted {
                state: state.clone(),
                length: 2,
            },
            E::MapIterationStarted {
                state: state.clone(),
                index,
            },
            E::MapIterationSucceeded {
                state: state.clone(),
                index,
            },
            E::MapIterationFailed { state, index },
        ];
        let events = history_events(&recorded, &[], None, 1);
        let json = serde_json::to_value(&events).unwrap();
        assert_eq!(json[1]["type"], "MapStateStarted");
        assert_eq!(
            json[1]["mapStateStartedEventDetails"],
            serde_json::json!({"length": 2})
        );
        for (i, outcome) in [(2, "Started"), (3, "Succeeded"), (4, "Failed")] {
            assert_eq!(json[i]["type"], format!("MapIteration{outcome}"));
            assert_eq!(
                json[i][format!("mapIteration{outcome}EventDetails")],
                serde_json::json!({"name": "EachDate", "index": 1}),
                "{}",
                json[i]
            );
        }
        // Read back as the viewer and `etl history` read events.
        assert_eq!(events[2].field("name"), Some("EachDate"));
    }

    #[test]
    fn an_arn_names_its_execution() {
        assert_eq!(
            execution_name("arn:aws:states:eu-west-1:1:execution:hr:hr-2026-11-25"),
            "hr-2026-11-25"
        );
        assert_eq!(execution_name("hr-2026-11-25"), "hr-2026-11-25");
    }
}
