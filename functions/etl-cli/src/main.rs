//! `etl`: run the pipelines' state machines locally, invoke single functions, check services.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
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

/// Human-readable logs on stderr, with the span fields (machine, logical date, request id)
/// on every line; stdout carries only results.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
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
        Command::Iam { action } => commands::iam::iam(template, action),
    }
}
