//! `etl runs`: the run ledger, newest first. Attempts whose process died (no valid lease
//! covers them any more) are marked `abandoned` first, so the list never shows a zombie as
//! running; an abandoned attempt's error column gives the reason.
//!
//! `etl runs skip --pipeline P --date D [--reason TEXT]` gives up on a date: a `skipped`
//! pipeline row, which the planner honours (a failed date is otherwise retried by every run).

use std::fmt;
use std::process::ExitCode;

use etl_core::lease;
use etl_core::ledger::{self, RunRecord, ABANDONED, SKIPPED};

use super::context;
use crate::cli::{RunsAction, RunsArgs, SkipArgs};

pub async fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    if let Some(RunsAction::Skip(skip_args)) = args.action {
        return skip(skip_args).await;
    }
    let ctx = context().await?;
    let abandoned = lease::reap(&ctx, args.pipeline.as_deref()).await?;
    if abandoned > 0 {
        eprintln!("marked {abandoned} attempt(s) whose process died as abandoned");
    }
    let rows = ledger::list(&ctx, args.pipeline.as_deref(), args.since, args.limit).await?;
    println!("{}", LedgerTable(&rows));
    Ok(ExitCode::SUCCESS)
}

/// Records the date skipped, after checking the pipeline name and the reason.
async fn skip(args: SkipArgs) -> anyhow::Result<ExitCode> {
    let valid_name = !args.pipeline.is_empty()
        && args
            .pipeline
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_name {
        anyhow::bail!("--pipeline {:?} is not a pipeline name", args.pipeline);
    }
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why");
    }
    let ctx = context().await?;
    let run_id = ledger::skip(&ctx, &args.pipeline, args.date, &args.reason).await?;
    println!(
        "{} {} skipped (run {run_id}): the planner no longer retries it",
        args.pipeline, args.date
    );
    Ok(ExitCode::SUCCESS)
}

/// Ledger rows under a header, a line each.
struct LedgerTable<'a>(&'a [RunRecord]);

impl fmt::Display for LedgerTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6}  {:<12} {:<9} {:<10} {:>3}  {:<9} {:>9} {:>9} {:>8} {:>8}  error",
            "run",
            "pipeline",
            "stage",
            "date",
            "try",
            "status",
            "rows_in",
            "rows_out",
            "rejected",
            "ms"
        )?;
        let num = |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        for r in self.0 {
            write!(
                f,
                "\n{:>6}  {:<12} {:<9} {:<10} {:>3}  {:<9} {:>9} {:>9} {:>8} {:>8}  {}",
                r.run_id,
                r.pipeline,
                r.stage,
                r.logical_date,
                r.attempt,
                r.status,
                num(r.rows_in),
                num(r.rows_out),
                num(r.rows_rejected),
                num(r.duration_ms),
                error_column(r)
            )?;
        }
        Ok(())
    }
}

/// The error name; for an abandoned attempt or a skipped date, which have none, the reason.
fn error_column(r: &RunRecord) -> &str {
    match (&r.error_name, &r.error_cause) {
        (Some(name), _) => name,
        (None, Some(cause)) if r.status == ABANDONED || r.status == SKIPPED => cause,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(run_id: i64, status: &str, error_name: Option<&str>) -> RunRecord {
        RunRecord {
            run_id,
            pipeline: "hr".into(),
            stage: "hire".into(),
            logical_date: "2026-11-25".parse().unwrap(),
            attempt: 1,
            status: status.into(),
            execution: None,
            rows_in: Some(100),
            rows_out: error_name.is_none().then_some(98),
            rows_rejected: None,
            started_at: "2026-11-25T01:00:00Z".parse().unwrap(),
            duration_ms: Some(1234),
            error_name: error_name.map(String::from),
            error_cause: None,
        }
    }

    #[test]
    fn rows_line_up_under_the_header_with_dashes_for_unknowns() {
        let rows = [
            record(12, "succeeded", None),
            record(11, "failed", Some("States.Timeout")),
        ];
        assert_eq!(
            LedgerTable(&rows).to_string(),
            "   run  pipeline     stage     date       try  status      rows_in  rows_out rejected       ms  error\n\
             \x20   12  hr           hire      2026-11-25   1  succeeded       100        98        -     1234  \n\
             \x20   11  hr           hire      2026-11-25   1  failed          100         -        -     1234  States.Timeout"
        );
    }

    #[test]
    fn an_abandoned_attempt_shows_its_reason() {
        let mut zombie = record(9, ABANDONED, None);
        zombie.error_cause = Some("superseded by attempt 2 of execution hr-a".into());
        let table = LedgerTable(&[zombie]).to_string();
        let line = table.lines().nth(1).unwrap();
        assert!(
            line.contains(" abandoned ")
                && line.ends_with("superseded by attempt 2 of execution hr-a"),
            "{line}"
        );
    }
}
