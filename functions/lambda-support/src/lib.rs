//! What every Lambda entry point shares, so each `main` is a few lines: logs in the format and
//! at the level the function's logging controls ask for, with the stage and logical date on
//! every line, one CloudWatch EMF metrics line per invocation, clients built once per
//! container, and stage errors turned into the `errorType` names Step Functions routes on.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etl_core::aws_calls::{Audit, RecordingAuditor};
use etl_core::error::capped_error_message;
use etl_core::metrics::{self, Invocation};
use etl_core::stage::{invoke_json, logical_date_of};
use etl_core::{Config, Context, StageError};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// A failed invocation, as the Lambda runtime reports it: `errorType` is the Step Functions
/// error name (`Retryable`, `InvalidInput`, `Fatal`), `errorMessage` the error capped at
/// [`etl_core::error::MAX_ERROR_MESSAGE_BYTES`] (it becomes the caught error's `Cause` in the execution's
/// state; `run` logs the full text, and a tracked stage's ledger row keeps it).
#[derive(Debug)]
pub struct StageFailure(pub StageError);

impl From<StageFailure> for Diagnostic {
    fn from(failure: StageFailure) -> Self {
        Diagnostic {
            error_type: failure.0.kind().as_str().to_string(),
            error_message: capped_error_message(&failure.0.to_string()).into_owned(),
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
    // Connects to nothing and reads no secret: anything that fails here ends the process
    // (Runtime.ExitError), which no Retry of ours matches. Secrets are read by `handle`.
    let config = Config::from_env()?;
    // The binary is its function: every AWS call is its own, recorded for `etl iam report`
    // when ETL_AWS_CALL_LOG is set (etl_core::aws_calls).
    let audit = Audit::new(RecordingAuditor::from_env(&config)).for_function(stage_name);
    // Boxed: the SDK's configuration loading inside is deep enough to overflow the
    // compiler's layout recursion limit in the binaries' `main`.
    let ctx = Arc::new(Box::pin(Context::with_audit(config, audit)).await?);
    let stage = Arc::new(stage);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        // The stage sees when Lambda ends this invocation, so one that can continue in a
        // later invocation (hr-sync) stops before it.
        let ctx = Arc::new(ctx.with_deadline(deadline_instant(
            event.context.deadline,
            SystemTime::now(),
            Instant::now(),
        )));
        let stage = Arc::clone(&stage);
        let span = tracing::info_span!(
            "stage",
            stage = stage_name,
            logical_date = logical_date_of(&event.payload).unwrap_or("-"),
        );
        async move {
            // The metrics line is written straight to stdout, not through tracing: CloudWatch
            // extracts EMF only from a log event that is the bare JSON document, and a tracing
            // line would nest it in its own fields.
            let mut stdout = std::io::stdout();
            let result = invoke(&ctx, event.payload, stage.as_ref(), stage_name, &mut stdout).await;
            if let Err(err) = &result {
                tracing::error!(error_type = err.kind().as_str(), error = %err, "stage failed");
            }
            result.map_err(StageFailure)
        }
        .instrument(span)
    }))
    .await
}

/// Lambda's deadline (`Lambda-Runtime-Deadline-Ms`, milliseconds since the epoch) on this
/// process's monotonic clock, given the two clocks read at the same moment. A deadline
/// already past is `now`.
pub fn deadline_instant(deadline_ms: u64, now: SystemTime, now_instant: Instant) -> Instant {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
    now_instant + left
}

/// One invocation as the Lambda runtime makes it: [`handle`], then one EMF line with what the
/// stage measured, written to `out` whether the stage succeeded or not. A line that cannot be
/// built is logged and skipped: metrics never fail a stage.
pub async fn invoke<E, O, F, Fut>(
    ctx: &Arc<Context>,
    payload: Value,
    stage: &F,
    stage_name: &str,
    out: &mut (dyn Write + Send),
) -> Result<Value, StageError>
where
    E: DeserializeOwned,
    O: Serialize,
    F: Fn(Arc<Context>, E) -> Fut,
    Fut: Future<Output = Result<O, StageError>>,
{
    let fallback = fallback_pipeline(&payload).to_string();
    let started = Instant::now();
    // Boxed: the runtime's service layers nest this future, and a stage's (SDK calls inside)
    // is deep enough to overflow the compiler's layout depth limit.
    let (result, invocation) = metrics::measure(Box::pin(handle(ctx, payload, stage))).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let written = metrics_line(
        &invocation,
        stage_name,
        &fallback,
        duration_ms,
        result.is_err(),
    )
    .and_then(|line| {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    });
    if let Err(error) = written {
        tracing::warn!(%error, "metrics line not written");
    }
    result
}

/// The pipeline an invocation reports under when its stage records none: the event's
/// `pipeline` (plan-dates, record-run), else `shared` (hr-schema serves three pipelines).
fn fallback_pipeline(payload: &Value) -> &str {
    payload
        .get("pipeline")
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .unwrap_or(SHARED_PIPELINE)
}

/// The `Pipeline` dimension of stages that belong to no single pipeline.
pub const SHARED_PIPELINE: &str = "shared";

fn metrics_line(
    invocation: &Invocation,
    stage_name: &str,
    fallback: &str,
    duration_ms: u64,
    failed: bool,
) -> Result<String, String> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    invocation
        .emf_line(stage_name, fallback, duration_ms, failed, now_ms)
        .map_err(|e| e.to_string())
}

/// One invocation: the secrets the stage may need, read on the first invocation (cached
/// afterwards), then the stage on the decoded event. Secrets Manager being unreachable is a
/// `Retryable` error of this invocation, which the state machine retries.
pub async fn handle<E, O, F, Fut>(
    ctx: &Arc<Context>,
    payload: Value,
    stage: &F,
) -> Result<Value, StageError>
where
    E: DeserializeOwned,
    O: Serialize,
    F: Fn(Arc<Context>, E) -> Fut,
    Fut: Future<Output = Result<O, StageError>>,
{
    ctx.resolve_secrets().await?;
    invoke_json(payload, |e| stage(Arc::clone(ctx), e)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use etl_core::{EnvSource, ErrorKind};

    /// Settings as a deployed function has them (secret ARNs, no URLs), with Secrets Manager
    /// on a port nothing listens on. The dummy keys come from an env file, as locally, so
    /// that the SDK does not look for credentials elsewhere.
    fn unreachable_secrets_manager() -> EnvSource {
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(1, |a| a.port());
        let file = std::env::temp_dir().join(format!("lambda-support-env-{}", std::process::id()));
        std::fs::write(
            &file,
            "AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n",
        )
        .unwrap();
        let env = EnvSource::process_and_file(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf";
        env.with("AWS_LAMBDA_FUNCTION_NAME", "hr-schema")
            .with("AWS_REGION", "us-east-1")
            .with("AWS_SESSION_TOKEN", "")
            .with(
                "AWS_ENDPOINT_URL",
                &format!("http://127.0.0.1:{closed_port}"),
            )
            .with("AWS_TIMEOUT_SECS", "5")
            .with("DATABASE_URL", "")
            .with("DATABASE_SECRET_ARN", arn)
            .with("ELASTICSEARCH_URL", "")
            .with("ELASTICSEARCH_SECRET_ARN", arn)
    }

    #[tokio::test]
    async fn init_reads_no_secret_and_an_unreachable_secrets_manager_is_retryable() {
        let config = Config::from_source(&unreachable_secrets_manager()).unwrap();
        // What `run` does before the runtime loop: must succeed without any network.
        let ctx = Arc::new(Context::new(config).await.unwrap());
        assert_eq!(ctx.database_secret_reads(), 0);

        let needs_database = |ctx: Arc<Context>, _event: Value| async move {
            ctx.postgres().await.map(|_| Value::Null)
        };
        let err = handle(&ctx, serde_json::json!({}), &needs_database)
            .await
            .unwrap_err();
        // The Elasticsearch secret is read first, at the start of the invocation.
        assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
        assert!(
            err.to_string().contains("ELASTICSEARCH_SECRET_ARN"),
            "{err}"
        );
        let diagnostic = Diagnostic::from(StageFailure(err));
        assert_eq!(diagnostic.error_type, "Retryable");

        // Without the Elasticsearch secret, the stage's first use of the database reads its
        // secret, and fails the same retryable way.
        let env = unreachable_secrets_manager().with("ELASTICSEARCH_SECRET_ARN", "");
        let ctx = Arc::new(
            Context::new(Config::from_source(&env).unwrap())
                .await
                .unwrap(),
        );
        let err = handle(&ctx, serde_json::json!({}), &needs_database)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
        assert!(err.to_string().contains("DATABASE_SECRET_ARN"), "{err}");
        assert_eq!(ctx.database_secret_reads(), 1);
    }

    /// A buffer both the tracing subscriber and the metrics line write to, as both write to
    /// the function's stdout.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Runs `stage` as `run` does, with JSON tracing into the same buffer; returns the lines.
    async fn invoke_capturing<F, Fut>(
        stage: F,
        payload: Value,
    ) -> (Result<Value, StageError>, Vec<String>)
    where
        F: Fn(Arc<Context>, Value) -> Fut,
        Fut: Future<Output = Result<Value, StageError>>,
    {
        use tracing::instrument::WithSubscriber;
        let env = unreachable_secrets_manager()
            .with("DATABASE_SECRET_ARN", "")
            .with("ELASTICSEARCH_SECRET_ARN", "");
        let ctx = Arc::new(
            Context::new(Config::from_source(&env).unwrap())
                .await
                .unwrap(),
        );
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(captured.clone())
            .finish();
        let mut out = captured.clone();
        let result = invoke(&ctx, payload, &stage, "hr-sync", &mut out)
            .with_subscriber(subscriber)
            .await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (result, text.lines().map(str::to_string).collect())
    }

    fn emf_lines(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some())
            .collect()
    }

    #[tokio::test]
    async fn an_invocation_logs_exactly_one_emf_line_with_the_stage_figures() {
        let stage = |_ctx: Arc<Context>, _event: Value| async move {
            tracing::info!(selected = 10, "employees synced");
            // What ledger::tracked records for hr-sync.
            metrics::record_stage(metrics::StageFigures {
                pipeline: "hr".into(),
                rows_in: Some(10),
                rows_out: Some(9),
                rows_rejected: Some(1),
                retries: Some(2),
                attempt: Some(1),
                ..metrics::StageFigures::default()
            });
            Ok(serde_json::json!({"indexed": 9}))
        };
        let (result, lines) =
            invoke_capturing(stage, serde_json::json!({"logical_date": "2026-11-25"})).await;
        assert_eq!(result.unwrap()["indexed"], 9);
        assert!(
            lines.len() >= 2,
            "the stage's own log line and the metrics: {lines:?}"
        );
        let emf = emf_lines(&lines);
        assert_eq!(emf.len(), 1, "{lines:#?}");
        let doc = &emf[0];
        etl_core::metrics::emf::validate(doc).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "EtlPipelines"
        );
        assert_eq!(doc["Pipeline"], "hr");
        assert_eq!(doc["Stage"], "hr-sync");
        assert_eq!(doc["RowsIn"], 10);
        assert_eq!(doc["RowsOut"], 9);
        assert_eq!(doc["RowsRejected"], 1);
        assert_eq!(doc["Retries"], 2);
        assert_eq!(doc["Attempt"], 1);
        assert_eq!(doc["Failures"], 0);
        assert!(doc["Duration"].is_number());
        // The document is the whole line: not nested in a tracing event's fields.
        assert!(doc.get("message").is_none() && doc.get("level").is_none());
    }

    #[tokio::test]
    async fn a_failed_invocation_still_logs_its_one_emf_line() {
        let stage = |_ctx: Arc<Context>, _event: Value| async move {
            Err::<Value, _>(StageError::invalid_input("no such date"))
        };
        let (result, lines) =
            invoke_capturing(stage, serde_json::json!({"pipeline": "clickstream"})).await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidInput);
        let emf = emf_lines(&lines);
        assert_eq!(emf.len(), 1, "{lines:#?}");
        assert_eq!(emf[0]["Failures"], 1);
        assert_eq!(emf[0]["Pipeline"], "clickstream", "the event's pipeline");
        assert!(emf[0].get("RowsIn").is_none());
    }

    #[test]
    fn the_error_message_lambda_reports_is_capped_and_says_where_the_rest_is() {
        use etl_core::error::{ERROR_MESSAGE_CUT_MARKER, MAX_ERROR_MESSAGE_BYTES};
        let body = "«reason»: \"mapper_parsing_exception\" ".repeat(200);
        let err = StageError::unavailable(etl_core::Service::Elasticsearch, body);
        let full = err.to_string();
        let diagnostic = Diagnostic::from(StageFailure(err));
        assert_eq!(diagnostic.error_type, "Retryable");
        let message = &diagnostic.error_message;
        let json_len = serde_json::to_string(message).unwrap().len() - 2;
        assert!(json_len <= MAX_ERROR_MESSAGE_BYTES, "{json_len} bytes");
        assert!(
            json_len > MAX_ERROR_MESSAGE_BYTES - 64,
            "cut early: {json_len}"
        );
        let kept = message.strip_suffix(ERROR_MESSAGE_CUT_MARKER).unwrap();
        assert!(full.starts_with(kept) && kept.starts_with("Elasticsearch: «reason»"));

        // A short message is the error's own text.
        let short = Diagnostic::from(StageFailure(StageError::invalid_input("count is 0")));
        assert_eq!(short.error_message, "invalid input: count is 0");
    }

    #[test]
    fn lambdas_deadline_is_the_time_left_on_the_monotonic_clock() {
        let now = UNIX_EPOCH + Duration::from_millis(1_765_000_000_000);
        let started = Instant::now();
        let deadline = deadline_instant(1_765_000_900_000, now, started);
        assert_eq!(deadline - started, Duration::from_secs(900));
        assert_eq!(deadline_instant(1_764_999_999_000, now, started), started);
    }

    #[test]
    fn the_fallback_pipeline_is_the_events_or_shared() {
        assert_eq!(
            fallback_pipeline(&serde_json::json!({"pipeline": "hr"})),
            "hr"
        );
        assert_eq!(
            fallback_pipeline(&serde_json::json!({"pipeline": " "})),
            SHARED_PIPELINE
        );
        assert_eq!(fallback_pipeline(&serde_json::json!({})), SHARED_PIPELINE);
        assert_eq!(fallback_pipeline(&serde_json::json!([1])), SHARED_PIPELINE);
    }

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
