//! `etl backfill <machine> --from D --to D`: one local execution over the dates the ledger
//! says still need a run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use etl_cli::runner::{run_machine, RunSettings};
use etl_core::ledger::Reprocess;
use etl_core::stages::plan::{self, RunRequest};
use etl_core::LogicalDate;
use serde_json::{Map, Value};

use super::run::print_reports;
use super::{context, exit_code, load_template};
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
    let ctx = context().await?;
    let request = RunRequest {
        logical_date: to,
        start_date: Some(from),
        reprocess: Some(reprocess),
        lookback_days: 31,
        params: params.clone(),
    };
    let dates = plan::plan(&ctx, &machine, &request).await?;
    eprintln!(
        "{} date(s) to run for {machine} in [{from}, {to}] (reprocess {reprocess:?})",
        dates.len()
    );
    for date in &dates {
        println!("{date}");
    }
    if args.dry_run || dates.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let settings = RunSettings {
        date: Some(to),
        extra_input: Some(backfill_input(from, reprocess, params)),
        host,
        time_scale,
        faults,
        lambda_limits,
        execution_name: Some(format!(
            "{machine}-backfill-{from}-{to}-{}",
            chrono::Utc::now().format("%H%M%S")
        )),
        overrides: args
            .max_concurrency
            .map(|n| ("MaxConcurrency".to_string(), n.to_string()))
            .into_iter()
            .collect::<HashMap<_, _>>(),
    };
    let report = run_machine(&ctx, &template, &machine, &settings).await?;
    let succeeded = report.succeeded();
    print_reports(&[report]);
    Ok(exit_code(succeeded))
}

/// What turns one execution into a backfill of `[from, logical_date]`.
fn backfill_input(
    from: LogicalDate,
    reprocess: Reprocess,
    params: Option<Map<String, Value>>,
) -> Value {
    let mut input = serde_json::json!({"start_date": from.to_string(), "reprocess": reprocess});
    if let Some(params) = params {
        input["params"] = Value::Object(params);
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_carries_the_start_reprocess_and_params() {
        let from: LogicalDate = "2026-11-01".parse().unwrap_or_else(|_| unreachable!());
        let params = serde_json::json!({"count": 10});
        assert_eq!(
            backfill_input(from, Reprocess::Failed, params.as_object().cloned()),
            serde_json::json!({"start_date": "2026-11-01", "reprocess": "failed", "params": {"count": 10}})
        );
        assert_eq!(
            backfill_input(from, Reprocess::None, None),
            serde_json::json!({"start_date": "2026-11-01", "reprocess": "none"})
        );
    }
}
