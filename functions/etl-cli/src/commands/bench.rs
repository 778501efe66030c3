//! `etl bench <target>`: a pipeline's throughput and memory, or the Lambda binaries' cold
//! starts.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Instant;

use anyhow::{bail, Context as _};
use etl_cli::bench::{
    self, HrOptions, Phase, PhaseTable, PhaseWatcher, Report, SummaryTable, WorkloadTable,
};
use etl_cli::functions::function_names;
use etl_cli::lambda_init::{self, DatabaseSecret, InitTable};
use etl_cli::progress::{self, Mode, PhaseView};
use etl_core::EnvSource;

use super::context;
use crate::cli::{BenchArgs, BenchTarget};

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.pipeline == BenchTarget::LambdaInit {
        return cold_starts(
            args.runs.unwrap_or(20),
            args.lambda_dir,
            args.database_secret,
            args.json,
        )
        .await;
    }
    match args.runs.unwrap_or(1) {
        0 => bail!("--runs must be at least 1"),
        1 => one_run(&args).await,
        runs => runs_in_fresh_processes(&args, runs).await,
    }
}

/// Which run of `--runs N` a child process is: `k/N`, set by the parent.
const RUN_VAR: &str = "ETL_BENCH_RUN";

/// This process's run and the number of runs: from [`RUN_VAR`] in a child of `--runs N`,
/// else 1 of 1.
fn this_run() -> (usize, usize) {
    let Ok(text) = std::env::var(RUN_VAR) else {
        return (1, 1);
    };
    let number = |n: &str| n.parse::<usize>().ok();
    let parsed = text
        .split_once('/')
        .and_then(|(run, runs)| Some((number(run)?, number(runs)?)))
        .filter(|(run, runs)| (1..=*runs).contains(run));
    parsed.unwrap_or_else(|| {
        tracing::warn!(value = %text, "{RUN_VAR} is not RUN/RUNS: showing run 1/1");
        (1, 1)
    })
}

/// The phases' spinners and lines, labelled with their workload (else the benchmark's
/// target, e.g. marketing's stages).
struct BenchProgress {
    view: PhaseView,
    target: String,
}

impl BenchProgress {
    fn workload<'a>(&'a self, phase: &str) -> &'a str {
        bench::workload_of(phase).unwrap_or(self.target.as_str())
    }
}

impl PhaseWatcher for BenchProgress {
    fn started(&self, phase: &str) {
        self.view.started(self.workload(phase), phase);
    }

    fn ended(&self, phase: &str, measured: Option<&Phase>) {
        match measured {
            Some(measured) => {
                self.view
                    .ended(self.workload(phase), phase, measured.rows, measured.seconds);
            }
            None => self.view.failed(self.workload(phase), phase),
        }
    }
}

async fn one_run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    bench::watch_phases(Box::new(BenchProgress {
        view: PhaseView::new(Mode::for_stderr(), this_run()),
        target: args.pipeline.to_string(),
    }));
    let ctx = context().await?;
    let rows = args.rows;
    let phases = match args.pipeline {
        BenchTarget::Hr => {
            let options = HrOptions {
                rows,
                sync: !args.no_sync,
                ceiling: args.ceiling_client,
            };
            bench::hr(&ctx, &options).await?
        }
        BenchTarget::Clickstream => bench::clickstream(&ctx, rows).await?,
        BenchTarget::Marketing => bench::marketing(&ctx, rows).await?,
        BenchTarget::LambdaInit => bail!("lambda-init measures binaries, not a pipeline run"),
    };
    eprintln!("{}", PhaseTable(&phases));
    let report = Report::new(args.pipeline.to_string(), rows, vec![phases]);
    eprintln!("\n{}", WorkloadTable(&report.workloads));
    write_json(args.json.as_deref(), &report)?;
    // A run's phases on stdout: what `--runs N` reads back from each child process.
    println!("{}", serde_json::to_string_pretty(&report.runs[0])?);
    Ok(ExitCode::SUCCESS)
}

/// `--json PATH`: the whole report, so the figures in BENCHMARKS.md come from one file.
fn write_json(
    path: Option<&std::path::Path>,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Each run in a process of its own, as each Lambda is: a run must not inherit the heap an
/// earlier run (or its ceiling phases) left behind, which glibc keeps and which would
/// inflate later runs' peak RSS.
async fn runs_in_fresh_processes(args: &BenchArgs, runs: usize) -> anyhow::Result<ExitCode> {
    let mut all = Vec::with_capacity(runs);
    for run in 1..=runs {
        // The child draws its own phases (its stderr is ours), labelled with `run`.
        let started = Instant::now();
        all.push(run_in_fresh_process(args, (run, runs)).await?);
        eprintln!(
            "bench run {run}/{runs} done in {} (a process of its own)",
            progress::seconds(started.elapsed().as_secs_f64())
        );
    }
    let report = Report::new(args.pipeline.to_string(), args.rows, all);
    eprintln!(
        "\n{}\n\n{}",
        SummaryTable {
            runs,
            phases: &report.summary
        },
        WorkloadTable(&report.workloads)
    );
    write_json(args.json.as_deref(), &report)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// One run of `etl bench <pipeline>` in a child process of this same binary, with the same
/// options: its progress, phase table and logs go to our stderr, its phases (JSON on its
/// stdout) come back. `run` is which run it is, of how many, for its progress.
async fn run_in_fresh_process(
    args: &BenchArgs,
    (run, runs): (usize, usize),
) -> anyhow::Result<Vec<Phase>> {
    let exe = std::env::current_exe().context("finding this binary to run a benchmark in")?;
    let mut child_args = vec![
        "bench".to_string(),
        args.pipeline.to_string(),
        "--rows".to_string(),
        args.rows.to_string(),
        "--ceiling-client".to_string(),
        args.ceiling_client.to_string(),
    ];
    if args.no_sync {
        child_args.push("--no-sync".to_string());
    }
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(child_args)
            .env(RUN_VAR, format!("{run}/{runs}"))
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
    json: Option<PathBuf>,
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
    // Init times have no ceiling to compare with: no workload lines, the figures as they are.
    write_json(json.as_deref(), &figures)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(ExitCode::SUCCESS)
}
