//! `etl redrive <execution>`: RedriveExecution on a deployed machine's failed execution.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use etl_cli::deployed::{self, MachineLocator};
use etl_cli::runner::FailedExecution;

use super::{context, exit_code, load_template};
use crate::cli::RedriveArgs;

pub async fn redrive(template: Option<PathBuf>, args: RedriveArgs) -> anyhow::Result<ExitCode> {
    let RedriveArgs {
        execution,
        machine,
        wait,
        target,
    } = args;
    let ctx = context().await?;
    let sfn = ctx.step_functions();
    let execution_arn = if execution.starts_with("arn:") {
        execution
    } else {
        let machine_arn = match (target.state_machine_arn, machine) {
            (Some(arn), _) => arn,
            (None, Some(machine)) => {
                let template = load_template(template)?;
                let locator = MachineLocator::new(&template, &machine, &target.prefix.name_prefix);
                deployed::find_machine_arn(sfn, &locator).await?
            }
            (None, None) => bail!(
                "{execution} is an execution name: say whose with --machine (e.g. --machine hr), or give its ARN"
            ),
        };
        deployed::execution_arn(&machine_arn, &execution)?
    };
    // One token per (execution, minute): retrying this command at once is the same redrive.
    let token = format!("etl-redrive-{}", chrono::Utc::now().format("%Y%m%dT%H%M"));
    let redriven_at = deployed::redrive(sfn, &execution_arn, &token).await?;
    eprintln!("redriven at {redriven_at}: {execution_arn}");
    println!("{execution_arn}");
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let finished = deployed::wait(sfn, &execution_arn).await?;
    println!("{}", finished.status);
    if !finished.succeeded() {
        let name = execution_arn.rsplit(':').next().unwrap_or(&execution_arn);
        eprintln!(
            "{}",
            FailedExecution {
                name,
                status: &finished.status,
                error: finished.error.as_deref().unwrap_or("-"),
                cause: finished.cause.as_deref().unwrap_or("-"),
            }
        );
    }
    Ok(exit_code(finished.succeeded()))
}
