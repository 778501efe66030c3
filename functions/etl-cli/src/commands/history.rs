//! `etl history <execution>`: an execution's events, as GetExecutionHistory returns them — a
//! local execution's from `etl.execution_events`, a deployed one's from Step Functions.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use etl_cli::deployed::{self, MachineLocator};
use etl_cli::executions::{self, ExecutionHistory, HistoryEvent};
use serde_json::{json, Map, Value};

use super::{context, load_template};
use crate::cli::HistoryArgs;

pub async fn history(template: Option<PathBuf>, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let ctx = context().await?;
    let history = if args.deployed {
        let arn = if args.execution.starts_with("arn:") {
            args.execution.clone()
        } else {
            let machine_arn = match (&args.target.state_machine_arn, &args.machine) {
                (Some(arn), _) => arn.clone(),
                (None, Some(machine)) => {
                    let template = load_template(template)?;
                    let locator =
                        MachineLocator::new(&template, machine, &args.target.prefix.name_prefix);
                    deployed::find_machine_arn(ctx.step_functions(), &locator).await?
                }
                (None, None) => bail!(
                    "{} is an execution name: say whose with --machine (e.g. --machine hr), or give its ARN",
                    args.execution
                ),
            };
            deployed::execution_arn(&machine_arn, &args.execution)?
        };
        deployed_history(ctx.step_functions(), &arn).await?
    } else {
        let client = ctx.postgres().await?;
        executions::load_history(&client, executions::execution_name(&args.execution)).await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&history)?);
    } else {
        println!("{}", HistoryTable(&history.events));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every page of a deployed execution's history, in the same shape as a local one.
async fn deployed_history(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> anyhow::Result<ExecutionHistory> {
    let mut events = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow!(
                "GetExecutionHistory {arn}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            )
        })?;
        events.extend(page.events().iter().map(from_service));
    }
    Ok(ExecutionHistory { events })
}

/// A service event's fields, with the details this viewer shows.
fn from_service(event: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    let at = event.timestamp();
    let timestamp =
        chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
    let mut details = Map::new();
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_string(), value);
    };
    if let Some(d) = event.execution_started_event_details() {
        put(
            "executionStartedEventDetails",
            json!({"input": d.input(), "roleArn": d.role_arn()}),
        );
    }
    if let Some(d) = event.execution_succeeded_event_details() {
        put(
            "executionSucceededEventDetails",
            json!({"output": d.output()}),
        );
    }
    if let Some(d) = event.execution_failed_event_details() {
        put(
            "executionFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.state_entered_event_details() {
        put(
            "stateEnteredEventDetails",
            json!({"name": d.name(), "input": d.input()}),
        );
    }
    if let Some(d) = event.state_exited_event_details() {
        put(
            "stateExitedEventDetails",
            json!({"name": d.name(), "output": d.output()}),
        );
    }
    if let Some(d) = event.task_failed_event_details() {
        put(
            "taskFailedEventDetails",
            json!({"resourceType": d.resource_type(), "resource": d.resource(), "error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.lambda_function_failed_event_details() {
        put(
            "lambdaFunctionFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.map_run_started_event_details() {
        put(
            "mapRunStartedEventDetails",
            json!({"mapRunArn": d.map_run_arn()}),
        );
    }
    if let Some(d) = event.map_run_failed_event_details() {
        put(
            "mapRunFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.execution_redriven_event_details() {
        put(
            "executionRedrivenEventDetails",
            json!({"redriveCount": d.redrive_count()}),
        );
    }
    HistoryEvent {
        id: event.id(),
        previous_event_id: event.previous_event_id(),
        timestamp,
        event_type: event.r#type().as_str().to_string(),
        details,
    }
}

/// One line per event: id, milliseconds since the first, type, state or error.
struct HistoryTable<'a>(&'a [HistoryEvent]);

impl fmt::Display for HistoryTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>5}  {:>9}  {:<26} details", "id", "+ms", "type")?;
        let Some(first) = self.0.first() else {
            return write!(f, "\n(no events stored)");
        };
        for event in self.0 {
            let offset = (event.timestamp - first.timestamp).num_milliseconds();
            let detail = event
                .detail()
                .map(|d| {
                    d.iter()
                        .filter(|(k, _)| {
                            !matches!(
                                k.as_str(),
                                "roleArn" | "resourceType" | "resource" | "input" | "output"
                            )
                        })
                        .map(|(k, v)| match v {
                            Value::String(s) => format!("{k}={s}"),
                            other => format!("{k}={other}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            write!(
                f,
                "\n{:>5}  {:>9}  {:<26} {detail}",
                event.id, offset, event.event_type
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_line_per_event_with_its_state() {
        let at: chrono::DateTime<chrono::Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        let recorded = [
            asl::Event::StateEntered {
                state: "Hire".into(),
                state_type: "Task".into(),
            },
            asl::Event::ExecutionSucceeded,
        ];
        let events = executions::history_events(&recorded, &[at, at], None, 1);
        let table = HistoryTable(&events).to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[1].contains("TaskStateEntered") && lines[1].ends_with("name=Hire"),
            "{table}"
        );
        assert!(lines[2].contains("ExecutionSucceeded"));
    }

    #[test]
    fn a_service_event_keeps_its_type_and_details() {
        let event = aws_sdk_sfn::types::HistoryEvent::builder()
            .id(3)
            .previous_event_id(2)
            .timestamp(aws_smithy_types::DateTime::from_secs(1_780_000_000))
            .r#type(aws_sdk_sfn::types::HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                aws_sdk_sfn::types::StateEnteredEventDetails::builder()
                    .name("Hire")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let ours = from_service(&event);
        assert_eq!((ours.id, ours.previous_event_id), (3, 2));
        assert_eq!(ours.event_type, "TaskStateEntered");
        assert_eq!(ours.field("name"), Some("Hire"));
    }
}
