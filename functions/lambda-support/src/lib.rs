//! What every Lambda entry point shares, so each `main` is a few lines: JSON logs with the
//! request id and logical date on every line, clients built once per container, and stage
//! errors turned into the `errorType` names Step Functions routes on.

use std::future::Future;
use std::sync::Arc;

use etl_core::stage::{invoke_json, logical_date_of};
use etl_core::{Config, Context, StageError};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

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

/// JSON logs by default (what CloudWatch and Lambda's log controls expect);
/// `ETL_LOG_FORMAT=text` for people reading a terminal.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let text = std::env::var("ETL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    if text {
        builder.init();
    } else {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .init();
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
