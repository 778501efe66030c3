//! The executions `etl run` ran, kept in `etl.executions` (migration 5) as Step Functions keeps
//! them: definition, input, how they ended and the journal a redrive replays.

use asl::redrive::{self, Ended, NotRedrivable};
use asl::{Journal, Redrive};
use chrono::{DateTime, Utc};
use etl_core::clients::PgClient;
use serde_json::Value;

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
}
