//! `etl simulate clickstream --follow`: a live event stream for dashboards.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use etl_cli::follow::follow;

use super::{context, exit_code};
use crate::cli::{SimulateArgs, Streamed};

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let Streamed::Clickstream = args.what;
    if !args.follow {
        bail!("use --follow for a live stream, or `etl run clickstream --date D` for one interval");
    }
    let ctx = context().await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let totals = follow(&ctx, args.rate, args.seconds.map(Duration::from_secs), stop).await?;
    eprintln!("{totals}");
    Ok(exit_code(totals.failed == 0))
}
