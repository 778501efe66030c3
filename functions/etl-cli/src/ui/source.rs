//! Where the viewer reads runs from: the local database (`etl run`'s executions, their
//! histories and the run ledger) or, with `etl ui --deployed`, the Step Functions API
//! ([`super::deployed_runs`]). The handlers ask a [`RunSource`] for a grid, a run or a
//! history and render what it returns; only this module and `deployed_runs` know where the
//! runs live.

use std::fmt::{Display, Write as _};

use chrono::{DateTime, Utc};
use etl_core::Context;

use super::deployed_runs::DeployedRuns;
use super::grid::{self, Grid, GridFilter};
use super::html::escape;
use super::run::{self, StageRow};
use crate::executions::StoredExecution;
use crate::executions::{self, ExecutionHistory, ExecutionStoreError, HistoryEvent};

/// The runs the viewer shows.
pub enum RunSource {
    /// `etl.runs`, `etl.executions` and `etl.execution_events` in PostgreSQL.
    Local,
    /// The deployed machines' executions, from Step Functions.
    Deployed(DeployedRuns),
}

/// Why a page cannot show what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No run of that name (a 404).
    #[error("{0}")]
    NotFound(String),
    /// The database or the API did not answer (a 503 naming which).
    #[error("{what}: {message}")]
    Unavailable { what: String, message: String },
}

impl SourceError {
    pub fn unavailable(what: impl Into<String>, error: &dyn Display) -> Self {
        Self::Unavailable {
            what: what.into(),
            message: error.to_string(),
        }
    }
}

/// What the grid page shows.
#[derive(Debug, Default)]
pub struct GridPage {
    pub grid: Grid,
    /// Plain-text notes above the grid: what was read, machines not found.
    pub notes: Vec<String>,
    /// Executions the grid cannot place on a date (deployed only; `None` locally, where every
    /// execution has its input's date).
    pub undated: Option<Vec<UndatedRun>>,
}

/// A deployed execution whose name carries no logical date (e.g. a scheduled start's).
#[derive(Debug, Clone, PartialEq)]
pub struct UndatedRun {
    pub machine: String,
    pub name: String,
    /// The service's status, e.g. `SUCCEEDED`.
    pub status: String,
    pub started: DateTime<Utc>,
}

/// What a run's page shows, besides the artifacts.
#[derive(Debug)]
pub struct RunData {
    pub execution: StoredExecution,
    pub events: Vec<HistoryEvent>,
    /// The run ledger's rows naming the execution (local runs).
    pub stages: Vec<StageRow>,
    /// A deployed run's Stages section (HTML), from its history: the ledger is not read.
    pub deployed_stages: Option<String>,
    /// Plain-text notes above the page: where it was read from, what could not be.
    pub notes: Vec<String>,
}

impl RunSource {
    pub fn is_deployed(&self) -> bool {
        matches!(self, Self::Deployed(_))
    }

    /// The grid for `filter`, rows in `machines` order.
    pub async fn grid(
        &self,
        ctx: &Context,
        machines: &[String],
        filter: &GridFilter,
    ) -> Result<GridPage, SourceError> {
        match self {
            Self::Local => {
                let client = local_database(ctx).await?;
                let grid = grid::load(&client, machines, filter).await.map_err(|e| {
                    SourceError::unavailable(
                        "the run ledger (is the schema applied? run `etl run hr-setup`)",
                        &e,
                    )
                })?;
                Ok(GridPage {
                    grid,
                    ..GridPage::default()
                })
            }
            Self::Deployed(deployed) => deployed.grid(filter).await,
        }
    }

    /// The execution named `name`, its history and its figures.
    pub async fn run(&self, ctx: &Context, name: &str) -> Result<RunData, SourceError> {
        match self {
            Self::Local => local_run(ctx, name).await,
            Self::Deployed(deployed) => deployed.run(name).await,
        }
    }

    /// The execution's history, as GetExecutionHistory returns it.
    pub async fn history(
        &self,
        ctx: &Context,
        name: &str,
    ) -> Result<ExecutionHistory, SourceError> {
        match self {
            Self::Local => {
                let client = local_database(ctx).await?;
                executions::load_history(&client, name)
                    .await
                    .map_err(|e| local_error(name, "the execution history", e))
            }
            Self::Deployed(deployed) => deployed.history(name).await,
        }
    }
}

fn local_error(name: &str, what: &str, error: ExecutionStoreError) -> SourceError {
    match error {
        ExecutionStoreError::NotFound(_) => {
            SourceError::NotFound(format!("No local execution is named {name:?}."))
        }
        other => SourceError::unavailable(what, &other),
    }
}

/// The local database's connection, or the page saying it cannot be reached.
async fn local_database(ctx: &Context) -> Result<etl_core::clients::PgClient, SourceError> {
    ctx.postgres()
        .await
        .map_err(|e| SourceError::unavailable("PostgreSQL", &e))
}

async fn local_run(ctx: &Context, name: &str) -> Result<RunData, SourceError> {
    let client = local_database(ctx).await?;
    let execution = executions::load(&client, name)
        .await
        .map_err(|e| local_error(name, "the executions table", e))?;
    let events = executions::load_history(&client, name)
        .await
        .map_err(|e| local_error(name, "the execution history", e))?
        .events;
    let stages = run::stage_rows(&client, name)
        .await
        .map_err(|e| SourceError::unavailable("the run ledger", &e))?;
    Ok(RunData {
        execution,
        events,
        stages,
        deployed_stages: None,
        notes: Vec::new(),
    })
}

/// Notes as a list above a page's content; nothing when there are none.
pub fn notes_html(notes: &[String]) -> String {
    if notes.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ul class=\"notes\" id=\"notes\">");
    for note in notes {
        let _ = write!(out, "<li>{}</li>", escape(note));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_escaped_text_and_absent_when_there_are_none() {
        assert_eq!(notes_html(&[]), "");
        let html = notes_html(&["<b>ledger</b> not read".to_string()]);
        assert!(
            html.contains("<li>&lt;b&gt;ledger&lt;/b&gt; not read</li>"),
            "{html}"
        );
    }

    #[test]
    fn a_missing_local_execution_is_not_found_and_other_errors_unavailable() {
        let missing = local_error(
            "hr-x",
            "the executions table",
            ExecutionStoreError::NotFound("hr-x".into()),
        );
        assert!(
            matches!(missing, SourceError::NotFound(ref m) if m.contains("\"hr-x\"")),
            "{missing}"
        );
        let unreadable = ExecutionStoreError::Journal {
            name: "hr-x".into(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        let error = local_error("hr-x", "the executions table", unreadable);
        assert!(
            matches!(error, SourceError::Unavailable { ref what, .. } if what == "the executions table"),
            "{error}"
        );
    }
}
