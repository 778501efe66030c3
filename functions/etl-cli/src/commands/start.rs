//! `etl start <machine> --date D`: an execution of a deployed machine, named so that
//! starting it again finds the same one.

use std::path::PathBuf;
use std::process::ExitCode;

use etl_cli::deployed::{self, MachineLocator};
use etl_cli::runner::{execution_input, FailedExecution};
use serde_json::Value;

use super::{context, exit_code, load_template, parse_input, pretty};
use crate::cli::StartArgs;

pub async fn start(template: Option<PathBuf>, args: StartArgs) -> anyhow::Result<ExitCode> {
    let template = load_template(template)?;
    let StartArgs {
        machine,
        date,
        wait,
        input,
        target,
        execution_name,
    } = args;
    let input = execution_input(Some(date), parse_input(input)?.as_ref())?;
    let ctx = context().await?;
    let sfn = ctx.step_functions();
    let machine_arn = match target.state_machine_arn {
        Some(arn) => arn,
        None => {
            let locator = MachineLocator::new(&template, &machine, &target.prefix.name_prefix);
            deployed::find_machine_arn(sfn, &locator).await?
        }
    };
    let name = execution_name.unwrap_or_else(|| deployed::execution_name(&machine, date));
    let started = deployed::start(sfn, &machine_arn, &name, &input).await?;
    let how = if started.new {
        "started"
    } else {
        "already started:"
    };
    eprintln!("{how} {name} on {machine_arn}");
    println!("{}", started.execution_arn);
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let finished = deployed::wait(sfn, &started.execution_arn).await?;
    println!("{}", finished.status);
    if let Some(output) = &finished.output {
        match serde_json::from_str::<Value>(output) {
            Ok(json) => println!("{}", pretty(&json)),
            Err(_) => println!("{output}"),
        }
    }
    if !finished.succeeded() {
        let failure = FailedExecution {
            name: &name,
            status: &finished.status,
            error: finished.error.as_deref().unwrap_or("-"),
            cause: finished.cause.as_deref().unwrap_or("-"),
        };
        eprintln!("{failure}");
    }
    Ok(exit_code(finished.succeeded()))
}
