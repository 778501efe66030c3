//! `etl run <machine|all>`: executes state machines locally.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use etl_cli::call_counter::{CallCounter, CallCounts};
use etl_cli::iam::ContractAuditor;
use etl_cli::progress::{Mode, Progress};
use etl_cli::runner::{
    redrive_machine, run_machine, FunctionHost, RunReport, RunSettings, RunSummary,
};
use etl_cli::summary::{ledger_rows, ExecutionSummary, SummaryInputs};
use etl_cli::template::Template;
use etl_core::aws_calls::Audit;
use etl_core::{Config, Context};

use super::{exit_code, load_template, parse_input, pretty, today};
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
        let progress = Progress::new(Mode::for_stderr());
        let settings = RunSettings {
            host,
            time_scale,
            faults,
            lambda_limits,
            observer: Some(progress.observer(execution)),
            ..RunSettings::default()
        };
        let counted = CountedContext::new().await?;
        let before = counted.counter.snapshot();
        let report = redrive_machine(&counted.ctx, &template, execution, &settings).await?;
        counted
            .print_summary(&template, &settings.host, &report, &before)
            .await;
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
        observer: None,
    };
    let counted = CountedContext::new().await?;
    let progress = Progress::new(Mode::for_stderr());
    let mut reports = Vec::new();
    for name in &names {
        let settings = RunSettings {
            observer: Some(progress.observer(name)),
            ..settings.clone()
        };
        let before = counted.counter.snapshot();
        let report = run_machine(&counted.ctx, &template, name, &settings).await?;
        // Printed as each ends: a later machine's failure leaves the earlier ones' in view.
        counted
            .print_summary(&template, &settings.host, &report, &before)
            .await;
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

/// The context executions run in: its in-process functions' S3 calls counted (for the
/// summary's cost and artifacts), and still checked against the IAM contract when
/// `ETL_IAM_CONTRACT` asks for it.
pub struct CountedContext {
    pub ctx: Arc<Context>,
    pub counter: Arc<CallCounter>,
}

impl CountedContext {
    pub async fn new() -> anyhow::Result<Self> {
        let config = Config::from_env().context("configuration")?;
        let contract = ContractAuditor::from_env(&config)?;
        let counter = Arc::new(CallCounter::new(contract));
        let audit = Audit::new(Some(Arc::clone(&counter) as _));
        let ctx = Context::with_audit(config, audit).await?;
        // Elasticsearch's settings may live in a secret; stages cannot wait for it mid-call.
        ctx.resolve_secrets().await?;
        Ok(CountedContext {
            ctx: Arc::new(ctx),
            counter,
        })
    }

    /// The summary of an execution that ran since the calls were `before`.
    pub async fn summarize(
        &self,
        template: &Template,
        host: &FunctionHost,
        report: &RunReport,
        before: &CallCounts,
    ) -> ExecutionSummary {
        // Out of process, the functions' calls are not seen here.
        let calls =
            matches!(host, FunctionHost::InProcess).then(|| self.counter.snapshot().since(before));
        let ledger = ledger_rows(&self.ctx, &report.execution_name)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the summary has no row counts: the ledger is unreadable");
                Vec::new()
            });
        ExecutionSummary::new(
            report,
            &SummaryInputs {
                template,
                bucket: &self.ctx.config.bucket,
                ledger: &ledger,
                calls: calls.as_ref(),
            },
        )
    }

    /// [`Self::summarize`], printed on stderr as the execution ends.
    pub async fn print_summary(
        &self,
        template: &Template,
        host: &FunctionHost,
        report: &RunReport,
        before: &CallCounts,
    ) {
        let summary = self.summarize(template, host, report, before).await;
        eprintln!("\n{summary}");
    }
}

/// Each execution's output (stdout) or failure (stderr), then the table of all of them (each
/// one's own summary, [`CountedContext::summarize`], is printed as it ends).
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
