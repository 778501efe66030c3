//! `etl report marketing`: a date's stored KPI tables.

use std::process::ExitCode;

use super::{context, today};
use crate::cli::{ReportArgs, Reported};

pub async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let Reported::Marketing = args.what;
    let ctx = context().await?;
    let date = args.date.unwrap_or_else(today);
    let report = marketing::stages::report::load(&ctx, date).await?;
    print!("{}", marketing::render::text(&report));
    Ok(ExitCode::SUCCESS)
}
