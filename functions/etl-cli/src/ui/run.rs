//! A run's page: how the execution ended (the failing state and its error first), its state
//! machine coloured by what happened, each stage's figures from the ledger, the event
//! timeline from the stored history, and what the run produced.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use etl_core::clients::PgClient;
use serde_json::Value;

use super::graph::{self, Outcomes};
use super::html::{escape, legend, status_class, symbol, url_part};
use crate::executions::{HistoryEvent, StoredExecution};

/// One ledger row of the execution: a stage's figures.
#[derive(Debug, Clone)]
pub struct StageRow {
    pub stage: String,
    pub logical_date: chrono::NaiveDate,
    pub attempt: i32,
    pub status: String,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
    pub duration_ms: Option<i64>,
    pub error_name: Option<String>,
    pub error_cause: Option<String>,
}

pub async fn stage_rows(
    client: &PgClient,
    execution: &str,
) -> Result<Vec<StageRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT stage, logical_date, attempt, status, rows_in, rows_out, rows_rejected,
                    duration_ms, error_name, error_cause
               FROM etl.runs WHERE execution = $1 ORDER BY run_id",
            &[&execution],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StageRow {
            stage: r.get(0),
            logical_date: r.get(1),
            attempt: r.get(2),
            status: r.get(3),
            rows_in: r.get(4),
            rows_out: r.get(5),
            rows_rejected: r.get(6),
            duration_ms: r.get(7),
            error_name: r.get(8),
            error_cause: r.get(9),
        })
        .collect())
}

/// An S3 object the run produced.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub kind: &'static str,
    pub key: String,
    pub size: u64,
}

/// What went wrong, as the page's first words say it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePoint {
    pub state: Option<String>,
    pub error: String,
    pub cause: String,
}

/// The state where the execution's failure happened: the last Task that failed; else the
/// last failed Map Run or caught error; else the last state entered and never left.
pub fn failure_point(execution: &StoredExecution, events: &[HistoryEvent]) -> Option<FailurePoint> {
    if execution.status == "SUCCEEDED" || execution.status == "RUNNING" {
        return None;
    }
    let named = |types: &[&str]| {
        events
            .iter()
            .rev()
            .find(|e| types.contains(&e.event_type.as_str()))
            .and_then(|e| e.field("name").map(str::to_owned))
    };
    // Where the error arose: the last Task that failed, before the Catchers of the states
    // around it (a Map, a Parallel) passed it on.
    let state = named(&["TaskFailed"])
        .or_else(|| named(&["MapRunFailed", "ErrorCaught"]))
        .or_else(|| {
            let outcomes = outcomes(events, &execution.status);
            events
                .iter()
                .rev()
                .filter(|e| e.event_type.ends_with("StateEntered"))
                .filter_map(|e| e.field("name"))
                .find(|name| outcomes.get(*name).map(String::as_str) == Some("failed"))
                .map(str::to_owned)
        });
    Some(FailurePoint {
        state,
        error: execution.error.clone().unwrap_or_default(),
        cause: execution.cause.clone().unwrap_or_default(),
    })
}

/// What happened to each state entered: `succeeded`, `retried` (failed, then succeeded),
/// `caught` (its error went to a Catch), `failed`, or `running`.
pub fn outcomes(events: &[HistoryEvent], execution_status: &str) -> Outcomes {
    #[derive(Default)]
    struct Tally {
        entered: u32,
        exited: u32,
        failed: u32,
        caught: u32,
        map_failed: u32,
    }
    let mut tallies: HashMap<&str, Tally> = HashMap::new();
    for event in events {
        let Some(name) = event.field("name") else {
            continue;
        };
        let tally = tallies.entry(name).or_default();
        match event.event_type.as_str() {
            t if t.ends_with("StateEntered") => tally.entered += 1,
            t if t.ends_with("StateExited") => tally.exited += 1,
            t if t == "TaskFailed" || t.ends_with("StateFailed") => tally.failed += 1,
            "ErrorCaught" => tally.caught += 1,
            "MapRunFailed" => tally.map_failed += 1,
            _ => {}
        }
    }
    let running = execution_status == "RUNNING";
    tallies
        .into_iter()
        .filter(|(_, t)| t.entered > 0)
        .map(|(name, t)| {
            let outcome = if t.caught > 0 {
                "caught"
            } else if t.exited < t.entered {
                if running {
                    "running"
                } else {
                    "failed"
                }
            } else if t.map_failed > 0 {
                "failed"
            } else if t.failed > 0 {
                "retried"
            } else {
                "succeeded"
            };
            (name.to_string(), outcome.to_string())
        })
        .collect()
}

/// Everything the run page shows.
pub struct RunView<'a> {
    pub execution: &'a StoredExecution,
    pub events: &'a [HistoryEvent],
    pub stages: &'a [StageRow],
    pub artifacts: &'a [Artifact],
    /// A deployed run's Stages section (HTML, from its history), shown instead of ledger
    /// rows, which are not read for it (`etl ui --deployed`).
    pub deployed_stages: Option<&'a str>,
}

pub fn render(view: &RunView<'_>) -> String {
    let execution = view.execution;
    let mut out = String::new();
    let status = execution.status.as_str();
    let _ = write!(
        out,
        "<p><span class=\"badge {}\" id=\"run-status\">{} {}</span></p>",
        status_class(status),
        symbol(status),
        escape(status)
    );
    if let Some(point) = failure_point(execution, view.events) {
        let _ = write!(
            out,
            "<div class=\"alert\" role=\"alert\" id=\"failure\"><strong>Failed in state <span id=\"failed-state\">{}</span></strong> \
             with <code id=\"failed-error\">{}</code><p id=\"failed-cause\">{}</p></div>",
            escape(point.state.as_deref().unwrap_or("(unknown)")),
            escape(&point.error),
            escape(&point.cause)
        );
    }
    facts(&mut out, execution);
    out.push_str("<h2 id=\"graph\">State machine</h2>");
    out.push_str(&legend(&[
        "succeeded",
        "retried",
        "caught",
        "failed",
        "running",
        "not run",
    ]));
    let outcomes = outcomes(view.events, status);
    match serde_json::from_str::<Value>(&execution.definition)
        .map_err(|e| e.to_string())
        .and_then(|d| graph::svg(&d, &outcomes))
    {
        Ok(svg) => {
            // Scrolls sideways on a narrow screen: reachable and scrollable by keyboard too.
            let _ = write!(
                out,
                "<div class=\"scroll\" role=\"region\" aria-label=\"State machine\" tabindex=\"0\">{svg}</div>"
            );
        }
        Err(reason) => {
            let _ = write!(
                out,
                "<p>The definition cannot be drawn: {}</p>",
                escape(&reason)
            );
        }
    }
    match view.deployed_stages {
        Some(section) => {
            out.push_str("<h2 id=\"stages\">Stages</h2>");
            out.push_str(section);
        }
        None => stages(&mut out, view.stages),
    }
    artifacts(&mut out, view.artifacts);
    timeline(&mut out, view.events);
    out
}

fn facts(out: &mut String, execution: &StoredExecution) {
    let seconds = (execution.stopped_at - execution.started_at).num_milliseconds() as f64 / 1000.0;
    let date = execution
        .input
        .get("logical_date")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let _ = write!(
        out,
        "<dl class=\"facts\"><dt>Machine</dt><dd>{}</dd><dt>Logical date</dt><dd>{}</dd>\
         <dt>Started</dt><dd>{}</dd><dt>Duration</dt><dd>{seconds:.2} s</dd>\
         <dt>Redrives</dt><dd>{}</dd><dt>History</dt><dd><a href=\"/runs/{}/history.json\">GetExecutionHistory JSON</a></dd></dl>",
        escape(&execution.machine),
        escape(date),
        execution.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        execution.redrive_count,
        url_part(&execution.name),
    );
}

fn stages(out: &mut String, rows: &[StageRow]) {
    out.push_str("<h2 id=\"stages\">Stages</h2>");
    if rows.is_empty() {
        out.push_str("<p>No ledger rows name this execution.</p>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table id=\"stage-table\"><thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Date</th>\
         <th scope=\"col\" class=\"num\">Try</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Rows in</th>\
         <th scope=\"col\" class=\"num\">Rows out</th><th scope=\"col\" class=\"num\">Rejected</th>\
         <th scope=\"col\" class=\"num\">Seconds</th><th scope=\"col\">Error</th></tr></thead><tbody>",
    );
    let num = |n: Option<i64>| n.map_or_else(|| "–".to_string(), |n| n.to_string());
    for row in rows {
        let seconds = row.duration_ms.map_or_else(
            || "–".to_string(),
            |ms| format!("{:.2}", ms as f64 / 1000.0),
        );
        let error = match (&row.error_name, &row.error_cause) {
            (Some(name), Some(cause)) => format!("{}: {}", escape(name), escape(cause)),
            (Some(name), None) => escape(name),
            (None, Some(cause)) => escape(cause),
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td>{} {}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{seconds}</td><td>{error}</td></tr>",
            escape(&row.stage),
            row.logical_date,
            row.attempt,
            symbol(&row.status),
            escape(&row.status),
            num(row.rows_in),
            num(row.rows_out),
            num(row.rows_rejected),
        );
    }
    out.push_str("</tbody></table></div>");
}

fn artifacts(out: &mut String, artifacts: &[Artifact]) {
    out.push_str("<h2 id=\"artifacts\">What it produced</h2>");
    if artifacts.is_empty() {
        out.push_str("<p>No objects in the bucket for this run's date.</p>");
        return;
    }
    out.push_str("<ul id=\"artifact-list\">");
    for artifact in artifacts {
        let _ = write!(
            out,
            "<li>{}: <a href=\"/artifacts?key={}\">{}</a> ({} bytes)</li>",
            escape(artifact.kind),
            url_part(&artifact.key),
            escape(&artifact.key),
            artifact.size
        );
    }
    out.push_str("</ul>");
}

fn event_summary(event: &HistoryEvent) -> String {
    if event.event_type == "MapStateStarted" {
        if let Some(length) = event.detail().and_then(|d| d.get("length")?.as_u64()) {
            return format!("{length} items");
        }
    }
    let mut parts = Vec::new();
    if let Some(detail) = event.detail() {
        for (key, value) in detail {
            if matches!(key.as_str(), "roleArn" | "resourceType" | "resource") {
                continue;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{key}: {text}"));
        }
    }
    parts.join(" · ")
}

fn timeline(out: &mut String, events: &[HistoryEvent]) {
    out.push_str("<h2 id=\"timeline\">Event timeline</h2>");
    if events.is_empty() {
        out.push_str(
            "<p>No history stored for this execution (it ran before history was kept).</p>",
        );
        return;
    }
    let start: DateTime<Utc> = events[0].timestamp;
    out.push_str(
        "<div class=\"scroll\"><table id=\"events\"><thead><tr><th scope=\"col\" class=\"num\">#</th>\
         <th scope=\"col\" class=\"num\">+ms</th><th scope=\"col\">Type</th><th scope=\"col\">Details</th></tr></thead><tbody>",
    );
    let iterations = iteration_tallies(events);
    let mut summarised = HashSet::new();
    for event in events {
        let offset = (event.timestamp - start).num_milliseconds();
        let (event_type, summary) = if event.event_type.starts_with(ITERATION) {
            // All of a Map's iterations on one line, where its first one started.
            let name = event.field("name").unwrap_or_default();
            if !summarised.insert(name) {
                continue;
            }
            let tally = iterations.get(name).copied().unwrap_or_default();
            ("MapIterations", tally.summary(name))
        } else {
            (event.event_type.as_str(), event_summary(event))
        };
        let _ = write!(
            out,
            "<tr data-type=\"{t}\"><td class=\"num\">{}</td><td class=\"num\">{offset}</td><td>{t}</td><td>{}</td></tr>",
            event.id,
            escape(&summary),
            t = escape(event_type),
        );
    }
    out.push_str("</tbody></table></div>");
}

/// The prefix of an inline Map iteration's event types.
const ITERATION: &str = "MapIteration";

/// A Map state's iterations, all its entries together.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct IterationTally {
    started: u64,
    succeeded: u64,
    failed: u64,
}

impl IterationTally {
    fn summary(self, map: &str) -> String {
        let mut text = format!(
            "{map}: {} iterations started, {} succeeded",
            self.started, self.succeeded
        );
        if self.failed > 0 {
            text.push_str(&format!(", {} failed", self.failed));
        }
        text
    }
}

/// Each Map state's iterations, by its name: a Map of 10,000 items writes 20,000 iteration
/// events, which the timeline shows as one line.
fn iteration_tallies(events: &[HistoryEvent]) -> HashMap<&str, IterationTally> {
    let mut tallies: HashMap<&str, IterationTally> = HashMap::new();
    for event in events {
        let Some(outcome) = event.event_type.strip_prefix(ITERATION) else {
            continue;
        };
        let tally = tallies
            .entry(event.field("name").unwrap_or_default())
            .or_default();
        match outcome {
            "Started" => tally.started += 1,
            "Succeeded" => tally.succeeded += 1,
            _ => tally.failed += 1,
        }
    }
    tallies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executions::history_events;

    fn stored(status: &str) -> StoredExecution {
        let at: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        StoredExecution {
            name: "hr-<x>".into(),
            machine: "hr".into(),
            definition: r#"{"StartAt":"Hire","States":{"Hire":{"Type":"Task","End":true,"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Failed"}]},"Failed":{"Type":"Fail"}}}"#.into(),
            input: serde_json::json!({"logical_date": "2026-11-25"}),
            status: status.into(),
            error: Some("HireFailed".into()),
            cause: Some("<b>boom</b>".into()),
            output: None,
            redrive_count: 0,
            history_events: 0,
            journal: asl::Journal::default(),
            started_at: at,
            stopped_at: at,
        }
    }

    fn failed_history() -> Vec<HistoryEvent> {
        use asl::Event as E;
        let recorded = [
            E::StateEntered {
                state: "Hire".into(),
                state_type: "Task".into(),
            },
            E::TaskFailed {
                state: "Hire".into(),
                error: "Lambda.Unknown".into(),
                retry_count: 0,
            },
            E::Caught {
                state: "Hire".into(),
                error: "Lambda.Unknown".into(),
                next: "Failed".into(),
            },
            E::StateExited {
                state: "Hire".into(),
            },
            E::StateEntered {
                state: "Failed".into(),
                state_type: "Fail".into(),
            },
            E::ExecutionFailed {
                error: "HireFailed".into(),
                cause: "boom".into(),
            },
        ];
        history_events(&recorded, &[], Some(&stored("FAILED")), 1)
    }

    #[test]
    fn a_failed_run_names_the_state_that_failed_and_its_error() {
        let execution = stored("FAILED");
        let events = failed_history();
        let point = failure_point(&execution, &events).unwrap();
        assert_eq!(point.state.as_deref(), Some("Hire"));
        let outcomes = outcomes(&events, "FAILED");
        assert_eq!(outcomes["Hire"], "caught");
        assert_eq!(outcomes["Failed"], "failed");
        let html = render(&RunView {
            execution: &execution,
            events: &events,
            stages: &[],
            artifacts: &[],
            deployed_stages: None,
        });
        assert!(
            html.contains("Failed in state <span id=\"failed-state\">Hire</span>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"));
        assert_eq!(html.matches("<g class=\"state ").count(), 2);
        assert_eq!(html.matches("<tr data-type=").count(), 7);
    }

    #[test]
    fn a_maps_iterations_are_one_timeline_line_and_its_length_reads_as_items() {
        use asl::Event as E;
        let map = "EachDate".to_string();
        let mut recorded = vec![
            E::StateEntered {
                state: map.clone(),
                state_type: "Map".into(),
            },
            E::MapStateStarted {
                state: map.clone(),
                length: 3,
            },
        ];
        for index in 0..3 {
            recorded.push(E::MapIterationStarted {
                state: map.clone(),
                index,
            });
            recorded.push(if index == 2 {
                E::MapIterationFailed {
                    state: map.clone(),
                    index,
                }
            } else {
                E::MapIterationSucceeded {
                    state: map.clone(),
                    index,
                }
            });
        }
        recorded.push(E::StateExited { state: map });
        let events = history_events(&recorded, &[], None, 1);
        let mut html = String::new();
        timeline(&mut html, &events);
        assert_eq!(html.matches("<tr data-type=").count(), 4, "{html}");
        assert_eq!(html.matches("data-type=\"MapIterations\"").count(), 1);
        assert!(
            html.contains("EachDate: 3 iterations started, 2 succeeded, 1 failed"),
            "{html}"
        );
        assert!(
            html.contains("<td>MapStateStarted</td><td>3 items</td>"),
            "{html}"
        );
    }

    #[test]
    fn a_successful_run_has_no_failure_point() {
        assert!(failure_point(&stored("SUCCEEDED"), &failed_history()).is_none());
    }
}
