//! `etl ui --deployed`: the deployed machines' runs, read from the Step Functions API (AWS, or
//! moto with `AWS_ENDPOINT_URL`) instead of the local database.
//!
//! - Machines: each template machine is looked up among ListStateMachines' as `etl start`
//!   finds it ([`MachineLocator`], `--name-prefix`); one not deployed, or deployed twice, is a
//!   note on the grid, not an error.
//! - The grid: ListExecutions of each machine (every page). An execution named
//!   `<machine>-<YYYY-MM-DD>` (as `etl start` names them) is the cell of that date, the newest
//!   one if several; any other name (EventBridge Scheduler generates its own) carries no
//!   logical date the grid could trust without reading every execution's input, so those are
//!   listed under the grid, newest first, with their start time. Statuses map to the grid's:
//!   `SUCCEEDED` succeeded, `FAILED` and `TIMED_OUT` failed, `ABORTED` abandoned, `RUNNING`
//!   and `PENDING_REDRIVE` running.
//! - A run: DescribeExecution, GetExecutionHistory (the same conversion as `etl history
//!   --deployed`), and the definition it ran (DescribeStateMachineForExecution), else the
//!   local ASL file, said so on the page. The run ledger is not read: the Stages section shows
//!   what the history gives, each state's time and output.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::grid::{Cell, Grid, GridFilter};
use super::html::{escape, status_class, symbol, url_part};
use super::source::{GridPage, RunData, SourceError, UndatedRun};
use crate::deployed::{self, date_of_execution_name, MachineLocator};
use crate::executions::{ExecutionHistory, HistoryEvent, StoredExecution};
use crate::template::Template;

/// The longest output shown in the Stages table; the timeline and history.json have it all.
const OUTPUT_PREVIEW_CHARS: usize = 300;

/// The deployed machines and the client to read them with.
pub struct DeployedRuns {
    sfn: aws_sdk_sfn::Client,
    machines: Vec<DeployedMachine>,
}

/// A template machine, as the viewer looks for it.
struct DeployedMachine {
    /// The template's name (`hr`): the grid's row.
    name: String,
    logical_id: String,
    locator: MachineLocator,
    /// The local ASL file with its substitutions, drawn when the deployed definition cannot be
    /// read; or why it cannot be either.
    local_definition: Result<String, String>,
    definition_path: String,
}

/// A template machine found deployed, with its ARN.
struct Located<'a> {
    machine: &'a DeployedMachine,
    arn: String,
}

/// An execution found by name.
struct Found<'a> {
    machine: &'a DeployedMachine,
    arn: String,
    described: DescribeExecutionOutput,
}

fn api_error(error: &deployed::DeployedError) -> SourceError {
    SourceError::unavailable("the Step Functions API", error)
}

impl DeployedRuns {
    /// Every machine of `template`, looked up as `<name_prefix><name>` (see [`MachineLocator`]).
    pub fn new(sfn: aws_sdk_sfn::Client, template: &Template, name_prefix: &str) -> Self {
        let machines = template
            .machines
            .iter()
            .map(|spec| DeployedMachine {
                name: spec.name.clone(),
                logical_id: spec.logical_id.clone(),
                locator: MachineLocator::new(template, &spec.name, name_prefix),
                local_definition: spec.definition().map_err(|e| e.to_string()),
                definition_path: spec.definition_path.display().to_string(),
            })
            .collect();
        Self { sfn, machines }
    }

    /// The machines deployed (one ListStateMachines, every page), in template order, and a
    /// note for each one that is not (or is ambiguous).
    async fn locate(&self) -> Result<(Vec<Located<'_>>, Vec<String>), SourceError> {
        let deployed_machines = deployed::deployed_machines(&self.sfn)
            .await
            .map_err(|e| api_error(&e))?;
        let mut located = Vec::new();
        let mut notes = Vec::new();
        for machine in &self.machines {
            match machine.locator.choose(&deployed_machines) {
                Ok(arn) => located.push(Located { machine, arn }),
                Err(e) => notes.push(format!("{}: {e}", machine.name)),
            }
        }
        Ok((located, notes))
    }

    pub async fn grid(&self, filter: &GridFilter) -> Result<GridPage, SourceError> {
        let (located, mut notes) = self.locate().await?;
        notes.insert(
            0,
            "Deployed runs, read from Step Functions (ListStateMachines, ListExecutions); \
             the run ledger is not read."
                .to_string(),
        );
        let mut newest: HashMap<(String, NaiveDate), (DateTime<Utc>, Cell)> = HashMap::new();
        let mut undated = Vec::new();
        let wanted = located.iter().filter(|m| {
            filter
                .pipeline
                .as_ref()
                .is_none_or(|p| *p == m.machine.name)
        });
        for machine in wanted {
            let executions = deployed::executions_of(&self.sfn, &machine.arn)
                .await
                .map_err(|e| api_error(&e))?;
            for item in &executions {
                place(
                    &machine.machine.name,
                    item,
                    filter,
                    &mut newest,
                    &mut undated,
                );
            }
        }
        undated.sort_by_key(|run| std::cmp::Reverse(run.started));
        let rows: BTreeSet<&str> = newest.keys().map(|(machine, _)| machine.as_str()).collect();
        let pipelines: Vec<String> = located
            .iter()
            .map(|m| m.machine.name.clone())
            .filter(|name| rows.contains(name.as_str()))
            .collect();
        let dates: BTreeSet<NaiveDate> = newest.keys().map(|(_, date)| *date).collect();
        let grid = Grid {
            pipelines,
            dates: dates.into_iter().collect(),
            cells: newest
                .into_iter()
                .map(|(key, (_, cell))| (key, cell))
                .collect(),
        };
        Ok(GridPage {
            grid,
            notes,
            undated: Some(undated),
        })
    }

    /// The execution named `name`: the machines whose names it starts with are asked first
    /// (`hr-setup-…` before `hr-…`), then the others (a scheduled start's generated name).
    async fn find(&self, name: &str) -> Result<Found<'_>, SourceError> {
        let not_found = || {
            SourceError::NotFound(format!(
                "No deployed execution is named {name:?} (machines: {}).",
                self.machines
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        if !plausible_execution_name(name) {
            return Err(not_found());
        }
        let (mut located, _) = self.locate().await?;
        located.sort_by_key(|m| std::cmp::Reverse(m.machine.prefix_of(name)));
        for machine in located {
            let arn = deployed::execution_arn(&machine.arn, name).map_err(|e| api_error(&e))?;
            if let Some(described) = deployed::describe_if_exists(&self.sfn, &arn)
                .await
                .map_err(|e| api_error(&e))?
            {
                return Ok(Found {
                    machine: machine.machine,
                    arn,
                    described,
                });
            }
        }
        Err(not_found())
    }

    pub async fn history(&self, name: &str) -> Result<ExecutionHistory, SourceError> {
        let found = self.find(name).await?;
        deployed::execution_history(&self.sfn, &found.arn)
            .await
            .map_err(|e| api_error(&e))
    }

    pub async fn run(&self, name: &str) -> Result<RunData, SourceError> {
        let found = self.find(name).await?;
        let events = deployed::execution_history(&self.sfn, &found.arn)
            .await
            .map_err(|e| api_error(&e))?
            .events;
        let mut notes = vec![format!(
            "Deployed execution {}, read from Step Functions (DescribeExecution, \
             GetExecutionHistory); the run ledger is not read.",
            found.arn
        )];
        let definition = match deployed::definition_for_execution(&self.sfn, &found.arn).await {
            Ok(definition) => definition,
            Err(e) => {
                let (definition, note) = found.machine.local_fallback(&e.to_string());
                notes.push(note);
                definition
            }
        };
        let execution = stored_execution(&found, definition, &events);
        Ok(RunData {
            deployed_stages: Some(stages_from_history(&events)),
            execution,
            events,
            stages: Vec::new(),
            notes,
        })
    }
}

impl DeployedMachine {
    /// How much of `name` is this machine's name and a dash (0 if it does not start so).
    fn prefix_of(&self, name: &str) -> usize {
        [&self.name, &self.logical_id]
            .iter()
            .filter(|own| name.starts_with(&format!("{own}-")))
            .map(|own| own.len() + 1)
            .max()
            .unwrap_or(0)
    }

    /// The local definition to draw, and the note saying so, when the deployed one cannot
    /// be read (`why`).
    fn local_fallback(&self, why: &str) -> (String, String) {
        match &self.local_definition {
            Ok(local) => (
                local.clone(),
                format!(
                    "The deployed definition cannot be read ({why}): the state machine drawn is \
                     the local file {}, which may differ from what ran.",
                    self.definition_path
                ),
            ),
            Err(local) => (
                String::new(),
                format!(
                    "Neither the deployed definition ({why}) nor the local file {} ({local}) \
                     can be read.",
                    self.definition_path
                ),
            ),
        }
    }
}

/// Step Functions refuses names with these (and longer than 80 characters): no call needed.
fn plausible_execution_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 80
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c))
}

/// The grid's word for a service status.
fn grid_status(status: &ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Succeeded => "succeeded",
        ExecutionStatus::Failed | ExecutionStatus::TimedOut => "failed",
        ExecutionStatus::Aborted => "abandoned",
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => "running",
        _ => "unknown",
    }
}

fn utc(at: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default()
}

fn in_range(filter: &GridFilter, date: NaiveDate) -> bool {
    filter.from.is_none_or(|from| date >= from) && filter.to.is_none_or(|to| date <= to)
}

/// Puts an execution in its cell (if it is the newest of its date) or among the undated
/// (whose date filters apply to the day it started, UTC).
fn place(
    machine: &str,
    item: &ExecutionListItem,
    filter: &GridFilter,
    newest: &mut HashMap<(String, NaiveDate), (DateTime<Utc>, Cell)>,
    undated: &mut Vec<UndatedRun>,
) {
    let started = utc(item.start_date());
    let Some(date) = date_of_execution_name(item.name()) else {
        if in_range(filter, started.date_naive()) {
            undated.push(UndatedRun {
                machine: machine.to_string(),
                name: item.name().to_string(),
                status: item.status().as_str().to_string(),
                started,
            });
        }
        return;
    };
    if !in_range(filter, date) {
        return;
    }
    let cell = Cell {
        status: grid_status(item.status()).to_string(),
        execution: Some(item.name().to_string()),
        attempt: item.redrive_count().unwrap_or(0).saturating_add(1),
    };
    let key = (machine.to_string(), date);
    if newest.get(&key).is_none_or(|(at, _)| started > *at) {
        newest.insert(key, (started, cell));
    }
}

/// A JSON text as JSON, or as a string if it is not.
fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The last execution-ending event's `field` (`error`, `cause`): the history's word when
/// DescribeExecution gives none.
fn ending_field(events: &[HistoryEvent], field: &str) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.event_type.as_str(),
                "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted"
            )
        })
        .and_then(|e| e.field(field))
        .map(str::to_owned)
}

/// The execution as the run page draws a local one.
fn stored_execution(
    found: &Found<'_>,
    definition: String,
    events: &[HistoryEvent],
) -> StoredExecution {
    let described = &found.described;
    let started_at = utc(described.start_date());
    StoredExecution {
        name: described.name().unwrap_or_default().to_string(),
        machine: found.machine.name.clone(),
        definition,
        input: described.input().map_or(Value::Null, json_or_text),
        status: described.status().as_str().to_string(),
        error: described
            .error()
            .map(str::to_owned)
            .or_else(|| ending_field(events, "error")),
        cause: described
            .cause()
            .map(str::to_owned)
            .or_else(|| ending_field(events, "cause")),
        output: described.output().map(json_or_text),
        redrive_count: u32::try_from(described.redrive_count().unwrap_or(0)).unwrap_or(0),
        history_events: u64::try_from(events.len()).unwrap_or(u64::MAX),
        journal: asl::Journal::default(),
        started_at,
        // A running execution: its duration so far.
        stopped_at: described.stop_date().map_or_else(Utc::now, utc),
    }
}

/// One state's visit, from its entered and exited events.
struct Visit<'a> {
    state: &'a str,
    state_type: &'a str,
    entered: DateTime<Utc>,
    exited: Option<DateTime<Utc>>,
    output: Option<&'a str>,
}

fn visits(events: &[HistoryEvent]) -> Vec<Visit<'_>> {
    let mut visits: Vec<Visit<'_>> = Vec::new();
    for event in events {
        let Some(state) = event.field("name") else {
            continue;
        };
        if let Some(state_type) = event.event_type.strip_suffix("StateEntered") {
            visits.push(Visit {
                state,
                state_type,
                entered: event.timestamp,
                exited: None,
                output: None,
            });
        } else if event.event_type.ends_with("StateExited") {
            // The latest open visit of that state (a Map's iterations repeat names).
            if let Some(visit) = visits
                .iter_mut()
                .rev()
                .find(|v| v.state == state && v.exited.is_none())
            {
                visit.exited = Some(event.timestamp);
                visit.output = event.field("output");
            }
        }
    }
    visits
}

/// A deployed run's Stages section: each state entered, when, for how long, and its output.
pub fn stages_from_history(events: &[HistoryEvent]) -> String {
    let mut out = String::from(
        "<p id=\"ledger-not-read\">The run ledger is not read for deployed runs (its rows are in \
         the deployment's database). From the execution's history: each state entered, when, \
         for how long, and what it output.</p>",
    );
    let visits = visits(events);
    let Some(start) = events.first().map(|e| e.timestamp) else {
        out.push_str("<p>The history has no events.</p>");
        return out;
    };
    if visits.is_empty() {
        out.push_str("<p>The history enters no state.</p>");
        return out;
    }
    out.push_str(
        "<div class=\"scroll\"><table id=\"history-stages\"><thead><tr><th scope=\"col\">State</th>\
         <th scope=\"col\">Type</th><th scope=\"col\" class=\"num\">Entered +ms</th>\
         <th scope=\"col\" class=\"num\">Seconds</th><th scope=\"col\">Output</th></tr></thead><tbody>",
    );
    for visit in &visits {
        let seconds = visit.exited.map_or_else(
            || "not left".to_string(),
            |exited| {
                format!(
                    "{:.3}",
                    (exited - visit.entered).num_milliseconds() as f64 / 1000.0
                )
            },
        );
        let output = visit.output.unwrap_or_default();
        let shown: String = output.chars().take(OUTPUT_PREVIEW_CHARS).collect();
        let more = if shown.len() < output.len() {
            "…"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr data-state=\"{state}\"><th scope=\"row\">{state}</th><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{seconds}</td><td><code>{}{more}</code></td></tr>",
            escape(visit.state_type),
            (visit.entered - start).num_milliseconds(),
            escape(&shown),
            state = escape(visit.state),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The executions without a date in their name, under the grid.
pub fn render_undated(undated: &[UndatedRun]) -> String {
    let mut out = String::from(
        "<h2 id=\"undated\">Executions without a date in their name</h2>\
         <p>Executions not named <code>&lt;machine&gt;-&lt;YYYY-MM-DD&gt;</code> (a scheduled \
         start's name is generated) have no logical date the grid could place them on; here \
         they are by the time they started, newest first.</p>",
    );
    if undated.is_empty() {
        out.push_str("<p id=\"undated-none\">None for these filters.</p>");
        return out;
    }
    out.push_str(
        "<div class=\"scroll\"><table id=\"undated-runs\"><thead><tr><th scope=\"col\">Machine</th>\
         <th scope=\"col\">Execution</th><th scope=\"col\">Status</th><th scope=\"col\">Started (UTC)</th>\
         </tr></thead><tbody>",
    );
    for run in undated {
        let _ = write!(
            out,
            "<tr data-execution=\"{name}\" data-status=\"{status}\"><td>{}</td><td><a href=\"/runs/{}\">{name}</a></td>\
             <td><span class=\"badge {}\">{} {status}</span></td><td>{}</td></tr>",
            escape(&run.machine),
            url_part(&run.name),
            status_class(&run.status),
            symbol(&run.status),
            run.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            name = escape(&run.name),
            status = escape(&run.status),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The grid page's body when no deployed execution matches (the grid's own words are the
/// ledger's).
pub fn render_no_runs() -> String {
    "<p role=\"status\" id=\"no-deployed-runs\">No deployed execution named \
     <code>&lt;machine&gt;-&lt;YYYY-MM-DD&gt;</code> for these filters. \
     Start one with <code>etl start hr --date 2026-11-25</code>, or <a href=\"/\">show every date</a>.</p>"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, at_ms: i64, event_type: &str, details: Value) -> HistoryEvent {
        let at = DateTime::from_timestamp_millis(1_780_000_000_000 + at_ms).unwrap();
        HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp: at,
            event_type: event_type.into(),
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }

    fn failed_history() -> Vec<HistoryEvent> {
        vec![
            event(
                1,
                0,
                "ExecutionStarted",
                json!({"executionStartedEventDetails": {"input": "{}"}}),
            ),
            event(
                2,
                10,
                "PassStateEntered",
                json!({"stateEnteredEventDetails": {"name": "Echo"}}),
            ),
            event(
                3,
                1510,
                "PassStateExited",
                json!({"stateExitedEventDetails": {"name": "Echo", "output": "{\"a\":\"<1>\"}"}}),
            ),
            event(
                4,
                1520,
                "FailStateEntered",
                json!({"stateEnteredEventDetails": {"name": "Reject"}}),
            ),
            event(
                5,
                1530,
                "ExecutionFailed",
                json!({"executionFailedEventDetails": {"error": "InvalidInput", "cause": "no"}}),
            ),
        ]
    }

    #[test]
    fn the_stages_from_a_history_time_each_state_and_show_its_output() {
        let html = stages_from_history(&failed_history());
        assert!(html.contains("run ledger is not read"), "{html}");
        assert_eq!(html.matches("<tr data-state=").count(), 2, "{html}");
        assert!(
            html.contains("<th scope=\"row\">Echo</th><td>Pass</td><td class=\"num\">10</td><td class=\"num\">1.500</td><td><code>{&quot;a&quot;:&quot;&lt;1&gt;&quot;}</code>"),
            "{html}"
        );
        assert!(html.contains("<th scope=\"row\">Reject</th><td>Fail</td><td class=\"num\">1520</td><td class=\"num\">not left</td>"), "{html}");
        assert!(stages_from_history(&[]).contains("no events"));
    }

    #[test]
    fn the_history_gives_the_error_when_describe_does_not() {
        let events = failed_history();
        assert_eq!(
            ending_field(&events, "error").as_deref(),
            Some("InvalidInput")
        );
        assert_eq!(ending_field(&events[..4], "error"), None);
    }

    fn listed(name: &str, status: ExecutionStatus, started_secs: i64) -> ExecutionListItem {
        ExecutionListItem::builder()
            .execution_arn(format!("arn:aws:states:us-east-1:1:execution:m:{name}"))
            .state_machine_arn("arn:aws:states:us-east-1:1:stateMachine:m")
            .name(name)
            .status(status)
            .start_date(aws_smithy_types::DateTime::from_secs(started_secs))
            .build()
            .unwrap()
    }

    #[test]
    fn dated_names_fill_cells_newest_first_and_the_rest_are_undated() {
        let mut newest = HashMap::new();
        let mut undated = Vec::new();
        let filter = GridFilter::default();
        for item in [
            listed("hr-2026-11-25", ExecutionStatus::Failed, 1_000),
            listed("hr-2026-11-25", ExecutionStatus::Succeeded, 2_000),
            listed("hr-2026-11-26", ExecutionStatus::TimedOut, 3_000),
            listed("0f6c-scheduled", ExecutionStatus::Running, 4_000),
        ] {
            place("hr", &item, &filter, &mut newest, &mut undated);
        }
        let day = |d: &str| ("hr".to_string(), d.parse::<NaiveDate>().unwrap());
        assert_eq!(newest[&day("2026-11-25")].1.status, "succeeded");
        assert_eq!(newest[&day("2026-11-26")].1.status, "failed");
        assert_eq!(undated.len(), 1);
        assert_eq!(
            (undated[0].name.as_str(), undated[0].status.as_str()),
            ("0f6c-scheduled", "RUNNING")
        );
        let html = render_undated(&undated);
        assert!(html.contains("href=\"/runs/0f6c-scheduled\""), "{html}");

        let only_26 = GridFilter {
            from: "2026-11-26".parse().ok(),
            ..GridFilter::default()
        };
        let (mut newest, mut undated) = (HashMap::new(), Vec::new());
        place(
            "hr",
            &listed("hr-2026-11-25", ExecutionStatus::Succeeded, 1),
            &only_26,
            &mut newest,
            &mut undated,
        );
        place(
            "hr",
            &listed("scheduled", ExecutionStatus::Succeeded, 1),
            &only_26,
            &mut newest,
            &mut undated,
        );
        assert!(
            newest.is_empty() && undated.is_empty(),
            "both before the filter's first date"
        );
    }

    #[test]
    fn names_the_service_would_refuse_are_not_looked_up() {
        assert!(plausible_execution_name("hr-2026-11-25"));
        assert!(plausible_execution_name(
            "f3d0c1a2-7b4e-4a51-9c3d-0e1f2a3b4c5d"
        ));
        for bad in ["", "a b", "a:b", "a/b", "x\u{7}", &"x".repeat(81)] {
            assert!(!plausible_execution_name(bad), "{bad:?}");
        }
    }
}
