//! One module a command: each turns its parsed arguments into work and printed results
//! (results on stdout, progress and tables on stderr unless the table is the result).

pub mod backfill;
pub mod bench;
pub mod check;
pub mod history;
pub mod iam;
pub mod invoke;
pub mod lambda_host;
pub mod list;
pub mod redrive;
pub mod report;
pub mod run;
pub mod runs;
pub mod schedules;
pub mod simulate;
pub mod start;
pub mod stats;
pub mod ui;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use etl_cli::template::Template;
use etl_core::{Config, Context, LogicalDate};
use serde_json::Value;

/// The template at `path`, or the repository's.
pub fn load_template(path: Option<PathBuf>) -> anyhow::Result<Template> {
    let path = match path {
        Some(p) => p,
        None => etl_cli::project_root()
            .context("no template.yaml in this directory or its parents (use --template)")?
            .join("template.yaml"),
    };
    Ok(Template::load(&path)?)
}

pub async fn context() -> anyhow::Result<Arc<Context>> {
    let config = Config::from_env().context("configuration")?;
    let ctx = Context::new(config).await?;
    // Elasticsearch's settings may live in a secret; stages cannot wait for it mid-call.
    ctx.resolve_secrets().await?;
    Ok(Arc::new(ctx))
}

pub fn today() -> LogicalDate {
    // Today's date is always inside LogicalDate's range.
    LogicalDate::new(chrono::Utc::now().date_naive()).unwrap_or_else(|_| unreachable!())
}

/// `--input`'s JSON, when given.
pub fn parse_input(input: Option<String>) -> anyhow::Result<Option<Value>> {
    input
        .map(|text| serde_json::from_str::<Value>(&text))
        .transpose()
        .context("--input is not JSON")
}

pub fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// JSON for people: indented.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
