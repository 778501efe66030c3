//! `etl invoke <function> --event FILE`: one function, in-process or over the Invoke API.

use std::process::ExitCode;

use anyhow::Context as _;
use etl_cli::functions::{call_in_process, OverInvokeApi};
use serde_json::Value;

use super::{context, pretty};
use crate::cli::InvokeArgs;

pub async fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let InvokeArgs {
        function,
        event,
        lambda,
    } = args;
    let text = std::fs::read_to_string(&event)
        .with_context(|| format!("cannot read {}", event.display()))?;
    let payload: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", event.display()))?;
    let ctx = context().await?;
    let result = match lambda.lambda_endpoint {
        Some(url) => OverInvokeApi::new(&ctx, &url)
            .call(&function, &payload)
            .await
            .map_err(|f| format!("{}: {}", f.error, f.cause)),
        None => call_in_process(&ctx, &function, payload)
            .await
            .map_err(|e| format!("{}: {e}", e.kind())),
    };
    match result {
        Ok(output) => {
            println!("{}", pretty(&output));
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("{function} failed: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}
