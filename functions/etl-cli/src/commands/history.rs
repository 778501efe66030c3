//! `etl history <execution>`: an execution's events, as GetExecutionHistory returns them — a
//! local execution's from `etl.execution_events`, a deployed one's from Step Functions.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use etl_cli::deployed::{self, MachineLocator};
use etl_cli::executions::{self, HistoryEvent};
use serde_json::Value;

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
        deployed::execution_history(ctx.step_functions(), &arn).await?
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
}
