//! `etl bench <target>`: a pipeline's throughput and memory, or the Lambda binaries' cold
//! starts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use etl_cli::bench::{self, Phase, PhaseTable, SummaryTable};
use etl_cli::functions::function_names;
use etl_cli::lambda_init::{self, DatabaseSecret, InitTable};
use etl_core::EnvSource;

use super::context;
use crate::cli::{BenchArgs, BenchTarget};

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.pipeline == BenchTarget::LambdaInit {
        return cold_starts(
            args.runs.unwrap_or(20),
            args.lambda_dir,
            args.database_secret,
        )
        .await;
    }
    match args.runs.unwrap_or(1) {
        0 => bail!("--runs must be at least 1"),
        1 => one_run(args.pipeline, args.rows).await,
        runs => runs_in_fresh_processes(args.pipeline, args.rows, runs).await,
    }
}

async fn one_run(pipeline: BenchTarget, rows: u64) -> anyhow::Result<ExitCode> {
    let ctx = context().await?;
    let phases = match pipeline {
        BenchTarget::Hr => bench::hr(&ctx, rows).await?,
        BenchTarget::Clickstream => bench::clickstream(&ctx, rows).await?,
        BenchTarget::Marketing => bench::marketing(&ctx, rows).await?,
        BenchTarget::LambdaInit => bail!("lambda-init measures binaries, not a pipeline run"),
    };
    eprintln!("{}", PhaseTable(&phases));
    println!("{}", serde_json::to_string_pretty(&phases)?);
    Ok(ExitCode::SUCCESS)
}

/// Each run in a process of its own, as each Lambda is: a run must not inherit the heap an
/// earlier run (or its ceiling phases) left behind, which glibc keeps and which would
/// inflate later runs' peak RSS.
async fn runs_in_fresh_processes(
    pipeline: BenchTarget,
    rows: u64,
    runs: usize,
) -> anyhow::Result<ExitCode> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(run_in_fresh_process(pipeline, rows).await?);
    }
    let summary = bench::summarise(&all);
    eprintln!(
        "\n{}",
        SummaryTable {
            runs,
            phases: &summary
        }
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "runs": all, "summary": summary }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// One run of `etl bench <pipeline>` in a child process of this same binary: its phase table
/// and logs go to our stderr, its phases (JSON on its stdout) come back.
async fn run_in_fresh_process(pipeline: BenchTarget, rows: u64) -> anyhow::Result<Vec<Phase>> {
    let exe = std::env::current_exe().context("finding this binary to run a benchmark in")?;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["bench", &pipeline.to_string(), "--rows", &rows.to_string()])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
    })
    .await
    .context("the benchmark's child process")?
    .context("starting a benchmark run")?;
    if !output.status.success() {
        bail!(
            "a benchmark run failed ({}): see its error above",
            output.status
        );
    }
    serde_json::from_slice(&output.stdout).context("reading a benchmark run's phases")
}

/// `etl bench lambda-init`: every function's packaged binary, started cold `runs` times with
/// the settings a deployed function gets (and, with `database_secret`, a real secret to fetch).
async fn cold_starts(
    runs: usize,
    lambda_dir: Option<PathBuf>,
    database_secret: bool,
) -> anyhow::Result<ExitCode> {
    let source = EnvSource::load().context("configuration")?;
    let mut settings = source.function_settings();
    let secret = if database_secret {
        let database_url = source
            .get("DATABASE_URL")
            .context("--database-secret needs DATABASE_URL to store in the secret")?;
        let secret = DatabaseSecret::create(&*context().await?, database_url).await?;
        secret.in_place_of_the_url(&mut settings);
        Some(secret)
    } else {
        None
    };
    let dir = lambda_dir.unwrap_or_else(lambda_init::default_lambda_dir);
    let measured = tokio::task::spawn_blocking(move || {
        lambda_init::measure(&dir, &function_names(), runs, &settings)
    })
    .await
    .context("the cold-start measurement panicked");
    if let Some(secret) = secret {
        secret.delete().await;
    }
    let figures = measured??;
    eprintln!("{}", InitTable(&figures));
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(ExitCode::SUCCESS)
}
