//! `etl`: run the pipelines' state machines locally, invoke single functions, check services.

mod cli;
mod commands;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use cli::{Cli, Command};
use etl_cli::progress::StderrAroundProgress;
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let shows_progress = matches!(
        cli.command,
        Command::Run(_) | Command::Backfill(_) | Command::Bench(_)
    );
    if shows_progress && !cli.verbose {
        match log_file(&cli.command) {
            Ok((path, file)) => {
                init_tracing_to_file(file);
                eprintln!("logs: {} (-v shows them here)", path.display());
            }
            Err(e) => {
                init_tracing();
                tracing::warn!(error = %e, "no log file: logging to stderr");
            }
        }
    } else {
        init_tracing();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, else info (PostgreSQL's client: warnings only).
fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"))
}

/// A new log file for this command: `$ETL_LOG_DIR` (default `<temp dir>/etl-logs`) /
/// `etl-<command>-<UTC time>-<pid>.log`.
fn log_file(command: &Command) -> std::io::Result<(PathBuf, File)> {
    let dir = std::env::var_os("ETL_LOG_DIR")
        .map_or_else(|| std::env::temp_dir().join("etl-logs"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let name = match command {
        Command::Backfill(_) => "backfill",
        Command::Bench(_) => "bench",
        _ => "run",
    };
    let path = dir.join(format!(
        "etl-{name}-{}-{}.log",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id()
    ));
    let file = File::create(&path)?;
    Ok((path, file))
}

/// Every log line, JSON, to `file`; warnings and errors on stderr too (around the live
/// progress view, when there is one).
fn init_tracing_to_file(file: File) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let to_file = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(Mutex::new(file))
        .with_filter(env_filter());
    let to_stderr = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(StderrAroundProgress)
        .compact()
        .with_filter(env_filter())
        .with_filter(LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(to_file)
        .with(to_stderr)
        .init();
}

/// Human-readable logs on stderr, with the span fields (machine, logical date, request id)
/// on every line; stdout carries only results.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let template = cli.template;
    match cli.command {
        Command::Run(args) => commands::run::run(template, args).await,
        Command::Backfill(args) => commands::backfill::backfill(template, args).await,
        Command::Bench(args) => commands::bench::bench(args).await,
        Command::Simulate(args) => commands::simulate::simulate(args).await,
        Command::Stats(args) => commands::stats::stats(args).await,
        Command::Report(args) => commands::report::report(args).await,
        Command::Runs(args) => commands::runs::runs(args).await,
        Command::Invoke(args) => commands::invoke::invoke(args).await,
        Command::LambdaHost(args) => commands::lambda_host::lambda_host(template, args).await,
        Command::Start(args) => commands::start::start(template, args).await,
        Command::Redrive(args) => commands::redrive::redrive(template, args).await,
        Command::Schedules { action } => commands::schedules::schedules(template, action).await,
        Command::List(args) => commands::list::list(template, &args),
        Command::Validate(args) => commands::validate::validate(template, &args),
        Command::Check => commands::check::check().await,
        Command::Ui(args) => commands::ui::ui(template, args).await,
        Command::History(args) => commands::history::history(template, args).await,
        Command::Iam { action } => commands::iam::iam(template, action),
    }
}
