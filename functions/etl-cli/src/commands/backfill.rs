//! `etl backfill <machine> --from D --to D`: local executions over the dates the ledger says
//! still need a run. One execution runs at most `plan::MAX_DATES_PER_EXECUTION` dates (or
//! `--dates-per-execution`), the oldest first, and reports the rest as `remaining`; the next
//! execution starts from there, until nothing remains.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use etl_cli::executions;
use etl_cli::progress::{Mode, Progress};
use etl_cli::runner::{run_machine, RunReport, RunSettings};
use etl_core::ledger::Reprocess;
use etl_core::stages::plan::{self, RunRequest, MAX_DATES_PER_EXECUTION};
use etl_core::{Context, LogicalDate};
use serde_json::{Map, Value};

use super::run::{print_reports, CountedContext};
use super::{exit_code, load_template};
use crate::cli::BackfillArgs;

pub async fn backfill(template: Option<PathBuf>, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let (faults, lambda_limits) = (
        args.execution.faults.clone(),
        args.execution.lambda_limits()?,
    );
    let (host, time_scale) = args.execution.checked()?;
    let (machine, from, to, reprocess) = (args.machine, args.from, args.to, args.reprocess);
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let template = load_template(template)?;
    template.machine(&machine)?;
    let params: Option<Map<String, Value>> = args
        .params
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .context("--params must be a JSON object")?;
    let counted = CountedContext::new().await?;
    let ctx = Arc::clone(&counted.ctx);
    let per_execution = args.dates_per_execution;
    let request = RunRequest {
        logical_date: to,
        start_date: Some(from),
        reprocess: Some(reprocess),
        lookback_days: 31,
        params: params.clone(),
        dates_per_execution: per_execution,
    };
    let dates = plan::plan(&ctx, &machine, &request).await?;
    let most = per_execution.unwrap_or(MAX_DATES_PER_EXECUTION);
    eprintln!(
        "{} date(s) to run for {machine} in [{from}, {to}] (reprocess {reprocess:?}), at most {most} per execution",
        dates.len()
    );
    for date in &dates {
        println!("{date}");
    }
    if args.dry_run || dates.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let overrides = args
        .max_concurrency
        .map(|n| ("MaxConcurrency".to_string(), n.to_string()))
        .into_iter()
        .collect::<HashMap<_, _>>();
    let progress = Progress::new(Mode::for_stderr());
    let mut reports = Vec::new();
    let mut start = from;
    let mut stalled = false;
    loop {
        let settings = RunSettings {
            date: Some(to),
            extra_input: Some(backfill_input(
                &BackfillRun {
                    from: start,
                    reprocess,
                    dates_per_execution: per_execution,
                },
                params.clone(),
            )),
            host: host.clone(),
            time_scale,
            faults: faults.clone(),
            lambda_limits: lambda_limits.clone(),
            // The start date keeps the names of one backfill's executions apart.
            execution_name: Some(format!(
                "{machine}-backfill-{start}-{to}-{}",
                chrono::Utc::now().format("%H%M%S")
            )),
            overrides: overrides.clone(),
            observer: Some(progress.observer(&machine)),
        };
        let before = counted.counter.snapshot();
        let report = run_machine(&ctx, &template, &machine, &settings).await?;
        counted
            .print_summary(&template, &settings.host, &report, &before)
            .await;
        let next = remaining_from(&ctx, &report).await;
        reports.push(report);
        match next {
            // The planner leaves only dates newer than those it planned: a next start that
            // does not move forward would repeat this execution forever.
            Some(next) if next > start => {
                eprintln!(
                    "more dates than one execution runs: the next execution starts at {next}"
                );
                start = next;
            }
            Some(next) => {
                eprintln!(
                    "the execution starting at {start} left dates from {next}, which is not later: stopping"
                );
                stalled = true;
                break;
            }
            None => break,
        }
    }
    let succeeded = !stalled && reports.iter().all(RunReport::succeeded);
    print_reports(&reports);
    Ok(exit_code(succeeded))
}

/// What one execution of a backfill covers: `[from, logical_date]`.
struct BackfillRun {
    from: LogicalDate,
    reprocess: Reprocess,
    dates_per_execution: Option<usize>,
}

/// What turns one execution into a backfill of `[from, logical_date]`.
fn backfill_input(run: &BackfillRun, params: Option<Map<String, Value>>) -> Value {
    let mut input =
        serde_json::json!({"start_date": run.from.to_string(), "reprocess": run.reprocess});
    if let Some(n) = run.dates_per_execution {
        input["dates_per_execution"] = Value::from(n);
    }
    if let Some(params) = params {
        input["params"] = Value::Object(params);
    }
    input
}

/// Where the next execution of the backfill starts: the execution's `remaining.from`, from
/// its output or, when it failed, from what its `PlanDates` step planned (kept with the
/// execution in `etl.executions`), so one failed execution does not stop the dates after
/// it. `None` when nothing remains, or the machine reports no remaining dates at all.
async fn remaining_from(ctx: &Context, report: &RunReport) -> Option<LogicalDate> {
    let remaining = match &report.output {
        Ok(output) => output.get("remaining").cloned(),
        Err(_) => {
            let stored = match ctx.postgres().await {
                Ok(client) => executions::load(&client, &report.execution_name)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(stored) => stored
                    .journal
                    .get("PlanDates")
                    .and_then(|step| step.output.pointer("/plan/remaining").cloned()),
                Err(reason) => {
                    eprintln!(
                        "execution {} failed and its plan cannot be read ({reason}): the dates after it, if any, run with the same backfill again",
                        report.execution_name
                    );
                    None
                }
            }
        }
    }?;
    remaining.get("from")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_carries_the_start_reprocess_and_params() {
        let from: LogicalDate = "2026-11-01".parse().unwrap_or_else(|_| unreachable!());
        let params = serde_json::json!({"count": 10});
        let run = |reprocess, dates_per_execution| BackfillRun {
            from,
            reprocess,
            dates_per_execution,
        };
        assert_eq!(
            backfill_input(&run(Reprocess::Failed, None), params.as_object().cloned()),
            serde_json::json!({"start_date": "2026-11-01", "reprocess": "failed", "params": {"count": 10}})
        );
        assert_eq!(
            backfill_input(&run(Reprocess::None, None), None),
            serde_json::json!({"start_date": "2026-11-01", "reprocess": "none"})
        );
        assert_eq!(
            backfill_input(&run(Reprocess::All, Some(3)), None),
            serde_json::json!({"start_date": "2026-11-01", "reprocess": "all", "dates_per_execution": 3})
        );
    }
}
