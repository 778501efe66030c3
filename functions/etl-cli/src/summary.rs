//! The end of `etl run` and `etl backfill`: for each execution, its Task states with their
//! measured durations and the ledger's row counts, the artifacts it wrote (S3 keys, local
//! copies, the viewer) and what the run would cost on AWS ([`crate::cost`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use asl::Event;
use chrono::{DateTime, Utc};
use etl_core::{Context, StageError};
use serde_json::Value;

use crate::call_counter::CallCounts;
use crate::cost::{Invocation, Usage, PRICE_SOURCE};
use crate::progress::seconds;
use crate::runner::RunReport;
use crate::template::{FunctionSizing, Template};

/// Where `etl ui` serves an execution's page.
pub const VIEWER_BASE: &str = "http://127.0.0.1:8765";

/// The page of `execution` in `etl ui`.
pub fn viewer_url(execution: &str) -> String {
    format!("{VIEWER_BASE}/runs/{execution}")
}

/// The local function binary a Lambda ARN names (`…:function:hr-export[:alias]`).
fn binary_of(function_arn: &str) -> &str {
    let name = function_arn
        .split_once(":function:")
        .map_or(function_arn, |(_, name)| name);
    name.split(':').next().unwrap_or(name)
}

/// Task state → the function binary it invokes, for every Task of a definition (inside
/// Parallel branches and Map processors too).
pub fn task_functions(definition: &Value) -> HashMap<String, String> {
    let mut functions = HashMap::new();
    collect_tasks(definition, &mut functions);
    functions
}

fn collect_tasks(machine: &Value, functions: &mut HashMap<String, String>) {
    let Some(states) = machine.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, state) in states {
        let function = ["Parameters", "Arguments"]
            .iter()
            .filter_map(|field| state.get(field)?.get("FunctionName")?.as_str())
            .next();
        if let (Some("Task"), Some(function)) =
            (state.get("Type").and_then(Value::as_str), function)
        {
            functions.insert(name.clone(), binary_of(function).to_string());
        }
        for branch in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_tasks(branch, functions);
        }
        for processor in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(processor) {
                collect_tasks(inner, functions);
            }
        }
    }
}

/// The fields a stage's output names the rows it wrote in: what its `Counted` impl gives the
/// ledger as `rows_out` (unify's `rows_out`, hire's `loaded`, sync's and the clickstream
/// simulation's `indexed`, export's, generate's and report's `rows`), first match wins.
const ROWS_OUT_FIELDS: [&str; 4] = ["rows_out", "loaded", "indexed", "rows"];

/// The rows a stage wrote, from its output: the figure the ledger records as its
/// `rows_out`, read from a Task's result (a Lambda invoke's output is under `Payload`).
/// `None` when the output names none, and for marketing's plan, whose `rows` (beside the
/// `tasks` it plans) are the rows the Map's tasks will write, not rows it wrote.
pub fn rows_written(result: &Value) -> Option<u64> {
    let output = result.get("Payload").unwrap_or(result);
    if output.get("tasks").is_some() {
        return None;
    }
    ROWS_OUT_FIELDS
        .iter()
        .find_map(|field| output.get(field)?.as_u64())
}

/// A ledger row of the execution (`etl.runs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub pipeline: String,
    pub stage: String,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
}

/// The ledger rows an execution wrote, oldest first.
pub async fn ledger_rows(ctx: &Context, execution: &str) -> Result<Vec<LedgerRow>, StageError> {
    let client = ctx.postgres().await?;
    let rows = client
        .query(
            "SELECT pipeline, stage, rows_in, rows_out, rows_rejected
               FROM etl.runs WHERE execution = $1 ORDER BY run_id",
            &[&execution],
        )
        .await
        .map_err(StageError::postgres)?;
    Ok(rows
        .iter()
        .map(|r| LedgerRow {
            pipeline: r.get(0),
            stage: r.get(1),
            rows_in: r.get(2),
            rows_out: r.get(3),
            rows_rejected: r.get(4),
        })
        .collect())
}

/// One Task state of an execution, all its entries together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageLine {
    pub state: String,
    pub function: Option<String>,
    pub memory_mb: u64,
    pub entries: u64,
    pub retries: u64,
    pub seconds: f64,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
}

/// What `etl run` prints about one execution once it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSummary {
    pub machine: String,
    pub execution: String,
    pub status: &'static str,
    pub seconds: f64,
    pub stages: Vec<StageLine>,
    /// `s3://bucket/key`, or `s3://bucket/prefix/ (N objects)` for many under one prefix.
    pub s3_artifacts: Vec<String>,
    pub local_artifacts: Vec<String>,
    pub usage: Usage,
}

/// What a summary is made from, besides the execution itself.
pub struct SummaryInputs<'a> {
    pub template: &'a Template,
    /// The lake's bucket: output keys are in it.
    pub bucket: &'a str,
    pub ledger: &'a [LedgerRow],
    /// The S3 calls the execution's functions made; `None` when they ran out of process.
    pub calls: Option<&'a CallCounts>,
}

impl ExecutionSummary {
    pub fn new(report: &RunReport, inputs: &SummaryInputs<'_>) -> Self {
        let functions = inputs
            .template
            .machine(&report.machine)
            .ok()
            .and_then(|spec| spec.definition().ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|definition| task_functions(&definition))
            .unwrap_or_default();
        let memory = |function: &str| {
            inputs
                .template
                .sizing(function)
                .unwrap_or(FunctionSizing::LAMBDA_DEFAULT)
                .memory_mb
        };
        let (mut stages, invocations) = task_timings(&report.history, &report.event_times);
        let mut usage = Usage::default();
        for stage in &mut stages {
            stage.function = functions.get(&stage.state).cloned();
            stage.memory_mb = stage.function.as_deref().map_or(0, memory);
            add_ledger_counts(stage, inputs.ledger);
        }
        for (state, duration_seconds) in invocations {
            if let Some(function) = functions.get(&state) {
                usage.add_invocation(Invocation {
                    memory_mb: memory(function),
                    duration_seconds,
                });
            }
        }
        // A retry is another invoke (its duration is inside the entry's) and, as Step
        // Functions bills it, another state transition.
        let retries: u64 = stages.iter().map(|s| s.retries).sum();
        usage.lambda_requests += retries;
        usage.state_transitions = report
            .history
            .iter()
            .filter(|e| matches!(e, Event::StateEntered { .. }))
            .count() as u64
            + retries;
        let mut s3_artifacts = Vec::new();
        if let Some(calls) = inputs.calls {
            usage.s3_counted = true;
            for (operation, count) in &calls.s3_operations {
                usage.add_s3(operation, *count);
            }
            s3_artifacts = group_keys(&calls.written);
        }
        let (output_keys, local_artifacts) = report
            .output
            .as_ref()
            .map(|output| artifacts_in(output, inputs.bucket))
            .unwrap_or_default();
        if s3_artifacts.is_empty() {
            s3_artifacts = output_keys;
        }
        ExecutionSummary {
            machine: report.machine.clone(),
            execution: report.execution_name.clone(),
            status: report.status(),
            seconds: report.duration.as_secs_f64(),
            stages,
            s3_artifacts,
            local_artifacts,
            usage,
        }
    }
}

/// Each Task state's entries (in order of first entry) and each invocation's duration:
/// from a state's entry to its exit, or to the execution's last event when it never exited.
fn task_timings(
    history: &[Event],
    times: &[DateTime<Utc>],
) -> (Vec<StageLine>, Vec<(String, f64)>) {
    let mut stages: Vec<StageLine> = Vec::new();
    let mut open: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    let mut invocations = Vec::new();
    let seconds_between = |from: DateTime<Utc>, to: DateTime<Utc>| {
        (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6
    };
    for (event, at) in history.iter().zip(times) {
        match event {
            Event::StateEntered { state, state_type } if state_type == "Task" => {
                if !stages.iter().any(|s| &s.state == state) {
                    stages.push(StageLine {
                        state: state.clone(),
                        ..StageLine::default()
                    });
                }
                open.entry(state.clone()).or_default().push(*at);
            }
            Event::StateExited { state } => {
                // Entries of one state may overlap (Map iterations): pairing them in order
                // leaves the summed duration exact.
                if let Some(entered) = open.get_mut(state).filter(|o| !o.is_empty()) {
                    let from = entered.remove(0);
                    invocations.push((state.clone(), seconds_between(from, *at)));
                }
            }
            Event::RetryScheduled { state, .. } => {
                if let Some(stage) = stages.iter_mut().find(|s| &s.state == state) {
                    stage.retries += 1;
                }
            }
            _ => {}
        }
    }
    if let Some(last) = times.last() {
        for (state, entered) in open {
            for from in entered {
                invocations.push((state.clone(), seconds_between(from, *last)));
            }
        }
    }
    for (state, took) in &invocations {
        if let Some(stage) = stages.iter_mut().find(|s| &s.state == state) {
            stage.entries += 1;
            stage.seconds += took;
        }
    }
    (stages, invocations)
}

/// The ledger's counts of the stage a function records as: `hr-export` records `hr`/`export`.
fn add_ledger_counts(stage: &mut StageLine, ledger: &[LedgerRow]) {
    let Some((pipeline, name)) = stage.function.as_deref().and_then(|f| f.split_once('-')) else {
        return;
    };
    let add = |total: &mut Option<i64>, value: Option<i64>| {
        if let Some(value) = value {
            *total = Some(total.unwrap_or(0) + value);
        }
    };
    for row in ledger
        .iter()
        .filter(|r| r.pipeline == pipeline && r.stage == name)
    {
        add(&mut stage.rows_in, row.rows_in);
        add(&mut stage.rows_out, row.rows_out);
        add(&mut stage.rows_rejected, row.rows_rejected);
    }
}

/// Written keys, one line each, or one line per prefix holding more than three.
fn group_keys(written: &BTreeSet<String>) -> Vec<String> {
    let mut by_prefix: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for key in written {
        let prefix = key.rsplit_once('/').map_or("", |(prefix, _)| prefix);
        by_prefix.entry(prefix).or_default().push(key);
    }
    let mut lines = Vec::new();
    for (prefix, keys) in by_prefix {
        if keys.len() > 3 {
            lines.push(format!("s3://{prefix}/ ({} objects)", keys.len()));
        } else {
            lines.extend(keys.iter().map(|key| format!("s3://{key}")));
        }
    }
    lines
}

/// S3 keys (`key`, `*_key`, `keys`) and local paths (`local_*`) named in an execution's
/// output.
fn artifacts_in(output: &Value, bucket: &str) -> (Vec<String>, Vec<String>) {
    let mut s3 = BTreeSet::new();
    let mut local = BTreeSet::new();
    let mut pending = vec![output];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields {
                    let strings: Vec<&str> = match field {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    if name.starts_with("local_") {
                        local.extend(strings.iter().map(ToString::to_string));
                    } else if name == "key" || name == "keys" || name.ends_with("_key") {
                        s3.extend(strings.iter().map(|key| format!("s3://{bucket}/{key}")));
                    }
                    pending.push(field);
                }
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    (s3.into_iter().collect(), local.into_iter().collect())
}

fn count(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |n| n.to_string())
}

impl fmt::Display for ExecutionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {} {} in {}",
            self.machine,
            self.execution,
            self.status,
            seconds(self.seconds)
        )?;
        writeln!(
            f,
            "  {:<20} {:<22} {:>5} {:>9} {:>9} {:>9} {:>9}",
            "stage", "function", "runs", "seconds", "rows in", "rows out", "rejected"
        )?;
        for stage in &self.stages {
            writeln!(
                f,
                "  {:<20} {:<22} {:>5} {:>9.2} {:>9} {:>9} {:>9}",
                stage.state,
                stage.function.as_deref().unwrap_or("-"),
                stage.entries,
                stage.seconds,
                count(stage.rows_in),
                count(stage.rows_out),
                count(stage.rows_rejected)
            )?;
        }
        writeln!(f, "  artifacts")?;
        for artifact in &self.s3_artifacts {
            writeln!(f, "    {artifact}")?;
        }
        for path in &self.local_artifacts {
            writeln!(f, "    local: {path}")?;
        }
        writeln!(
            f,
            "    viewer: {} (while `etl ui` runs)",
            viewer_url(&self.execution)
        )?;
        writeln!(f, "  cost: {}", self.usage)?;
        write!(f, "        {PRICE_SOURCE}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_764_633_600_000 + millis).unwrap_or_default()
    }

    fn entered(state: &str, state_type: &str) -> Event {
        Event::StateEntered {
            state: state.into(),
            state_type: state_type.into(),
        }
    }

    fn exited(state: &str) -> Event {
        Event::StateExited {
            state: state.into(),
        }
    }

    #[test]
    fn tasks_are_found_in_branches_and_map_processors() {
        let definition = json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:hr-hire"}},
            "P": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {
                "B": {"Type": "Task", "Arguments": {"FunctionName": "hr-export:live"}}}}]},
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {
                "C": {"Type": "Task", "Parameters": {"FunctionName": "marketing-generate"}}}}},
            "D": {"Type": "Pass"}
        }});
        let functions = task_functions(&definition);
        assert_eq!(functions.len(), 3);
        assert_eq!(functions["A"], "hr-hire");
        assert_eq!(functions["B"], "hr-export");
        assert_eq!(functions["C"], "marketing-generate");
    }

    #[test]
    fn overlapping_entries_add_up_and_retries_count() {
        let history = vec![
            entered("Generate", "Map"),
            entered("Part", "Task"),
            entered("Part", "Task"),
            exited("Part"),
            Event::RetryScheduled {
                state: "Part".into(),
                error: "Retryable".into(),
                retry_count: 0,
                delay_seconds: 1.0,
            },
            exited("Part"),
            exited("Generate"),
            entered("Report", "Task"),
            Event::ExecutionFailed {
                error: "X".into(),
                cause: "y".into(),
            },
        ];
        let times = [0, 100, 200, 1100, 1150, 1300, 1310, 1400, 1900].map(at);
        let (stages, invocations) = task_timings(&history, &times);
        assert_eq!(invocations.len(), 3);
        let part = &stages[0];
        assert_eq!(
            (part.state.as_str(), part.entries, part.retries),
            ("Part", 2, 1)
        );
        // (1.1 - 0.1) + (1.3 - 0.2)
        assert!((part.seconds - 2.1).abs() < 1e-9, "{}", part.seconds);
        // Never exited: up to the last event.
        assert!((stages[1].seconds - 0.5).abs() < 1e-9);
    }

    fn summary() -> ExecutionSummary {
        let mut usage = Usage {
            state_transitions: 12,
            s3_counted: true,
            s3_write_or_list: 3,
            s3_read: 4,
            ..Usage::default()
        };
        usage.add_invocation(Invocation {
            memory_mb: 1024,
            duration_seconds: 1.5,
        });
        ExecutionSummary {
            machine: "hr".into(),
            execution: "hr-2026-11-25-local".into(),
            status: "SUCCEEDED",
            seconds: 2.5,
            stages: vec![StageLine {
                state: "Export".into(),
                function: Some("hr-export".into()),
                memory_mb: 1024,
                entries: 1,
                retries: 0,
                seconds: 1.5,
                rows_in: Some(120),
                rows_out: Some(118),
                rows_rejected: None,
            }],
            s3_artifacts: vec!["s3://lake/exports/hr/dt=2026-11-25/employees.csv".into()],
            local_artifacts: vec!["/tmp/master.csv".into()],
            usage,
        }
    }

    #[test]
    fn the_table_has_a_line_per_stage_then_artifacts_and_cost() {
        let text = summary().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "hr hr-2026-11-25-local SUCCEEDED in 2.50 s");
        assert_eq!(
            lines[1],
            "  stage                function                runs   seconds   rows in  rows out  rejected"
        );
        assert_eq!(
            lines[2],
            "  Export               hr-export                  1      1.50       120       118         -"
        );
        assert_eq!(lines[3], "  artifacts");
        assert_eq!(
            lines[4],
            "    s3://lake/exports/hr/dt=2026-11-25/employees.csv"
        );
        assert_eq!(lines[5], "    local: /tmp/master.csv");
        assert_eq!(
            lines[6],
            "    viewer: http://127.0.0.1:8765/runs/hr-2026-11-25-local (while `etl ui` runs)"
        );
        assert_eq!(
            lines[7],
            "  cost: Lambda 1.500 GB-s, 1 requests; 12 state transitions; \
             S3 3 PUT/COPY/POST/LIST + 4 GET/other; $0.000337"
        );
        assert!(lines[8].contains("AWS public prices, us-east-1, as of"));
        assert!(!text.contains('\u{1b}'), "no escape codes");
    }

    #[test]
    fn many_keys_under_one_prefix_make_one_line() {
        let written: BTreeSet<String> = (0..5)
            .map(|i| format!("lake/raw/dt=1/part-{i}.csv"))
            .chain(["lake/curated/master.csv".to_string()])
            .collect();
        assert_eq!(
            group_keys(&written),
            [
                "s3://lake/curated/master.csv",
                "s3://lake/raw/dt=1/ (5 objects)"
            ]
        );
    }

    #[test]
    fn output_keys_and_local_paths_are_artifacts() {
        let output = json!({"export": {"key": "exports/a.csv", "rows": 3},
                            "unify": {"csv_key": "c/m.csv", "local_csv": "/tmp/m.csv"},
                            "report": {"keys": ["r/index.html"]}});
        let (s3, local) = artifacts_in(&output, "lake");
        assert_eq!(
            s3,
            [
                "s3://lake/c/m.csv",
                "s3://lake/exports/a.csv",
                "s3://lake/r/index.html"
            ]
        );
        assert_eq!(local, ["/tmp/m.csv"]);
    }

    /// Every stage output that counts rows: `rows_written` reads from its JSON what its
    /// `Counted` impl gives the ledger as `rows_out`.
    #[test]
    fn rows_written_is_what_each_stage_counts_as_rows_out() {
        use etl_core::ledger::Counted;
        use etl_core::stages::{clickstream_simulate, hr_export, hr_hire, hr_sync};
        use marketing::stages::{generate, plan, unify};

        fn check<O: Counted + serde::Serialize>(output: &O) {
            let json = serde_json::to_value(output).unwrap();
            let expected = output.counts().rows_out.map(|n| n as u64);
            assert_eq!(rows_written(&json), expected, "{json}");
            // As a lambda:invoke Task's result.
            let invoked = json!({"ExecutedVersion": "$LATEST", "Payload": json, "StatusCode": 200});
            assert_eq!(rows_written(&invoked), expected);
        }
        let date: etl_core::LogicalDate = "2026-11-25".parse().unwrap();
        check(&hr_hire::HireOutput {
            logical_date: date,
            seed: 1,
            locale: "en".into(),
            generated: 120,
            loaded: 110,
            already_present: 3,
            rejected: 7,
        });
        check(&hr_export::ExportOutput {
            logical_date: date,
            bucket: "lake".into(),
            key: "k".into(),
            rows: 900,
            bytes: 10_000,
            parts: 1,
            refreshed: Vec::new(),
        });
        check(&hr_sync::SyncOutput {
            logical_date: date,
            index: "employees".into(),
            full: false,
            selected: 50,
            indexed: 48,
            failed: 2,
            retried: 0,
            requests: 1,
            failures: Vec::new(),
            // Totals over earlier invocations too: not this invocation's rows.
            progress: hr_sync::SyncProgress {
                invocations: 3,
                indexed: 148,
                ..hr_sync::SyncProgress::default()
            },
        });
        check(&clickstream_simulate::SimulateOutput {
            logical_date: date,
            hour: None,
            index: "clickstream".into(),
            sessions: 4,
            events: 40,
            by_type: BTreeMap::new(),
            indexed: 39,
            failed: 1,
            failures: Vec::new(),
        });
        check(&generate::GenerateOutput {
            logical_date: date,
            rows: 5000,
            bytes: 1,
            partitions: Vec::new(),
        });
        check(&unify::UnifyOutput {
            logical_date: date,
            partitions: 2,
            partitions_corrupt: 0,
            rows_in: 10_000,
            rows_out: 9_990,
            rows_quarantined: 10,
            parquet_key: "p".into(),
            csv_key: "c".into(),
            local_parquet: "/tmp/p".into(),
            local_csv: "/tmp/c".into(),
            quarantined: Vec::new(),
            ignored_keys: Vec::new(),
        });
        let planned = plan::PlanOutput {
            logical_date: date,
            rows: 500_000,
            partitions: 10,
            tasks: Vec::new(),
            pruned: 0,
        };
        assert_eq!(rows_written(&serde_json::to_value(planned).unwrap()), None);
        assert_eq!(
            rows_written(&json!({"run_id": 3, "status": "succeeded"})),
            None
        );
    }

    #[test]
    fn the_viewer_url_is_the_execution_page() {
        assert_eq!(viewer_url("hr-x"), "http://127.0.0.1:8765/runs/hr-x");
    }
}
