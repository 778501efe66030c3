//! What every Lambda entry point shares, so each `main` is a few lines: logs in the format and
//! at the level the function's logging controls ask for, with the stage and logical date on
//! every line, clients built once per container, and stage errors turned into the
//! `errorType` names Step Functions routes on.

use std::future::Future;
use std::sync::Arc;

use etl_core::stage::{invoke_json, logical_date_of};
use etl_core::{Config, Context, StageError};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// A failed invocation, as the Lambda runtime reports it: `errorType` is the Step Functions
/// error name (`Retryable`, `InvalidInput`, `Fatal`).
#[derive(Debug)]
pub struct StageFailure(pub StageError);

impl From<StageFailure> for Diagnostic {
    fn from(failure: StageFailure) -> Self {
        Diagnostic {
            error_type: failure.0.kind().as_str().to_string(),
            error_message: failure.0.to_string(),
        }
    }
}

/// The shape of each log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line: what CloudWatch Logs Insights and Lambda's JSON log format
    /// expect.
    Json,
    /// Human-readable lines, for a terminal or a function configured with `LogFormat: Text`.
    Text,
}

/// The format Lambda's logging controls ask for. Lambda sets `AWS_LAMBDA_LOG_FORMAT` from the
/// function's `LoggingConfig.LogFormat` (`JSON` or `Text`); without it (outside Lambda) the
/// lines are JSON, as they have always been, so nothing that parses them breaks.
pub fn log_format(aws_lambda_log_format: Option<&str>) -> LogFormat {
    match aws_lambda_log_format.map(str::trim) {
        Some(value) if value.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ => LogFormat::Json,
    }
}

/// Which events to log: Lambda's `AWS_LAMBDA_LOG_LEVEL` (from `LoggingConfig`'s
/// `ApplicationLogLevel`) first, then `RUST_LOG`, then info with the PostgreSQL driver's
/// chatter held back. A value that does not parse falls through to the next.
pub fn log_filter(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    non_blank(aws_lambda_log_level)
        .and_then(|level| {
            // Lambda's levels are tracing's, plus FATAL, which tracing has not.
            let level = if level.eq_ignore_ascii_case("fatal") {
                "error"
            } else {
                level
            };
            EnvFilter::try_new(level).ok()
        })
        .or_else(|| non_blank(rust_log).and_then(|directives| EnvFilter::try_new(directives).ok()))
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_FILTER))
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

const DEFAULT_LOG_FILTER: &str = "info,tokio_postgres=warn";

/// Logs as Lambda's logging controls say (see [`log_format`] and [`log_filter`]).
pub fn init_tracing() {
    let var = |name: &str| std::env::var(name).ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(
            var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
            var("RUST_LOG").as_deref(),
        ))
        .with_target(false);
    match log_format(var("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .init(),
    }
}

/// Runs a stage as a Lambda function until the runtime stops it.
pub async fn run<E, O, F, Fut>(
    stage_name: &'static str,
    stage: F,
) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Arc<Context>, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StageError>> + Send,
{
    init_tracing();
    let ctx = Arc::new(Context::new(Config::from_env()?).await?);
    let stage = Arc::new(stage);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = Arc::clone(&ctx);
        let stage = Arc::clone(&stage);
        let span = tracing::info_span!(
            "stage",
            stage = stage_name,
            logical_date = logical_date_of(&event.payload).unwrap_or("-"),
        );
        async move {
            let result = invoke_json(event.payload, |e| stage(ctx, e)).await;
            if let Err(err) = &result {
                tracing::error!(error_type = err.kind().as_str(), error = %err, "stage failed");
            }
            result.map_err(StageFailure)
        }
        .instrument(span)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_lambda_log_format_and_defaults_to_json() {
        let cases = [
            (None, LogFormat::Json),
            (Some("JSON"), LogFormat::Json),
            (Some("json"), LogFormat::Json),
            (Some("Text"), LogFormat::Text),
            (Some("TEXT"), LogFormat::Text),
            (Some(" text "), LogFormat::Text),
            (Some(""), LogFormat::Json),
            (Some("yaml"), LogFormat::Json),
        ];
        for (value, format) in cases {
            assert_eq!(log_format(value), format, "{value:?}");
        }
    }

    #[test]
    fn filter_prefers_lambda_level_then_rust_log_then_the_default() {
        let cases = [
            (None, None, DEFAULT_LOG_FILTER),
            (Some("DEBUG"), None, "debug"),
            (Some("INFO"), Some("trace"), "info"),
            (Some("WARN"), None, "warn"),
            (Some("ERROR"), None, "error"),
            (Some("FATAL"), None, "error"),
            (Some("TRACE"), None, "trace"),
            (Some(""), Some("etl_core=debug"), "etl_core=debug"),
            (Some("not a level=="), Some("warn"), "warn"),
            (None, Some("etl_core=debug"), "etl_core=debug"),
            (None, Some("  "), DEFAULT_LOG_FILTER),
            (None, Some("not a level=="), DEFAULT_LOG_FILTER),
        ];
        for (level, rust_log, expected) in cases {
            assert_eq!(
                log_filter(level, rust_log).to_string(),
                EnvFilter::new(expected).to_string(),
                "AWS_LAMBDA_LOG_LEVEL={level:?} RUST_LOG={rust_log:?}"
            );
        }
    }
}
