//! `etl lambda-host`: the functions' real binaries behind a local Lambda Invoke API, with
//! Lambda's limits (see `etl_cli::lambda_host`), until Ctrl-C.

use std::process::ExitCode;

use anyhow::Context as _;
use etl_cli::lambda_host::{HostConfig, LambdaHost};
use etl_cli::lambda_init::default_lambda_dir;
use etl_core::config::EnvSource;

use super::load_template;
use crate::cli::LambdaHostArgs;

pub async fn lambda_host(
    template: Option<std::path::PathBuf>,
    args: LambdaHostArgs,
) -> anyhow::Result<ExitCode> {
    if !(args.timeout_scale > 0.0 && args.timeout_scale <= 10.0) {
        anyhow::bail!("--timeout-scale must be above 0 and at most 10");
    }
    if args.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let template = load_template(template)?;
    let source = EnvSource::load().context("configuration")?;
    let binaries = args.binaries.unwrap_or_else(default_lambda_dir);
    let config = HostConfig {
        binaries: binaries.clone(),
        sizing: template.all_sizing().clone(),
        region: source.get("AWS_REGION").unwrap_or("us-east-1").to_string(),
        env: source.function_settings(),
        concurrency: args.concurrency,
        timeout_scale: args.timeout_scale,
    };
    let host = LambdaHost::start(config, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "serving the binaries in {} at {} (concurrency {}); Ctrl-C stops",
        binaries.display(),
        host.endpoint(),
        args.concurrency
    );
    println!("{}", host.endpoint());
    // Ctrl-C or SIGTERM: return, so that dropping the host ends every function process.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    drop(host);
    Ok(ExitCode::SUCCESS)
}
