//! `etl run <machine|all>`: executes state machines locally.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use etl_cli::runner::{redrive_machine, run_machine, RunReport, RunSettings, RunSummary};
use etl_cli::template::Template;

use super::{context, exit_code, load_template, parse_input, pretty, today};
use crate::cli::RunArgs;

/// The `etl run` argument that runs every machine.
const ALL: &str = "all";

pub async fn run(template: Option<PathBuf>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (faults, lambda_limits) = (
        args.execution.faults.clone(),
        args.execution.lambda_limits()?,
    );
    let (host, time_scale) = args.execution.checked()?;
    let template = load_template(template)?;
    if let Some(execution) = &args.redrive {
        let settings = RunSettings {
            host,
            time_scale,
            faults,
            lambda_limits,
            ..RunSettings::default()
        };
        let ctx = context().await?;
        let report = redrive_machine(&ctx, &template, execution, &settings).await?;
        let succeeded = report.succeeded();
        print_reports(&[report]);
        return Ok(exit_code(succeeded));
    }
    // clap requires MACHINE unless --redrive is given.
    let machine = args.machine.as_deref().unwrap_or(ALL);
    let names = machines_to_run(&template, machine)?;
    let extra_input = parse_input(args.input)?;
    // A scheduler-style input has no date of its own: the machine derives it.
    let scheduled = extra_input
        .as_ref()
        .is_some_and(|input| input.get("scheduled_time").is_some());
    let settings = RunSettings {
        date: if scheduled {
            args.date
        } else {
            args.date.or_else(|| Some(today()))
        },
        extra_input,
        host,
        time_scale,
        faults,
        lambda_limits,
        execution_name: args.execution_name,
        overrides: parse_overrides(&args.overrides)?,
    };
    let ctx = context().await?;
    let mut reports = Vec::new();
    for name in &names {
        let report = run_machine(&ctx, &template, name, &settings).await?;
        let failed = !report.succeeded();
        reports.push(report);
        if failed {
            break; // later machines depend on earlier ones (schema first)
        }
    }
    print_reports(&reports);
    Ok(exit_code(
        reports.iter().all(RunReport::succeeded) && reports.len() == names.len(),
    ))
}

/// The machines `etl run <machine>` runs, in template order for `all`; a name the template
/// does not declare is refused before anything runs.
fn machines_to_run(template: &Template, machine: &str) -> anyhow::Result<Vec<String>> {
    if machine == ALL {
        return Ok(template
            .machine_names()
            .into_iter()
            .map(String::from)
            .collect());
    }
    match template.machine(machine) {
        Ok(_) => Ok(vec![machine.to_string()]),
        Err(unknown) => bail!("{unknown} (or {ALL})"),
    }
}

fn parse_overrides(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--set {pair:?} is not NAME=VALUE"))
        })
        .collect()
}

/// Each execution's output (stdout) or failure (stderr), then the summary table.
pub fn print_reports(reports: &[RunReport]) {
    for report in reports {
        if let Ok(output) = &report.output {
            println!("{}", pretty(output));
        }
        if let Some(failure) = report.failure() {
            eprintln!("{failure}");
            eprintln!(
                "  resume it from the step that failed, once the cause is fixed: etl run --redrive {}",
                report.execution_name
            );
        }
    }
    eprintln!("\n{}", RunSummary(reports));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pairs_are_name_value() {
        let overrides = parse_overrides(&["RetryMaxAttempts=3".into(), "A=b=c".into()]);
        let overrides = overrides.unwrap_or_default();
        assert_eq!(overrides["RetryMaxAttempts"], "3");
        assert_eq!(overrides["A"], "b=c");
        let refused = parse_overrides(&["RetryMaxAttempts".into()]).err();
        assert_eq!(
            refused.map(|e| e.to_string()).as_deref(),
            Some("--set \"RetryMaxAttempts\" is not NAME=VALUE")
        );
    }
}
