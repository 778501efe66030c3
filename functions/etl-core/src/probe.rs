//! Health checks: is each service reachable with the configured settings? Used by
//! `etl services check` and by the tests, so a stopped service fails fast, by name.

use std::future::Future;
use std::time::Duration;

use crate::clients::Context;
use crate::error::{Service, StageError};

/// How long one check may take before the service counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks one service; `Ok` carries a one-line description of what answered.
pub async fn check(ctx: &Context, service: Service) -> Result<String, StageError> {
    match service {
        Service::Postgres => within(service, postgres(ctx)).await,
        Service::S3 => within(service, s3(ctx)).await,
        Service::Elasticsearch => within(service, elasticsearch(ctx)).await,
        Service::StepFunctions => within(service, step_functions(ctx)).await,
        Service::Scheduler => within(service, scheduler(ctx)).await,
        Service::Lambda => Err(StageError::Internal(
            "Lambda has no standing endpoint to probe; invoke a function instead".into(),
        )),
    }
}

async fn postgres(ctx: &Context) -> Result<String, StageError> {
    let client = ctx.postgres().await?;
    let row = client
        .query_one("SELECT current_setting('server_version')", &[])
        .await
        .map_err(StageError::postgres)?;
    Ok(format!("PostgreSQL {}", row.get::<_, String>(0)))
}

async fn s3(ctx: &Context) -> Result<String, StageError> {
    let bucket = &ctx.config.bucket;
    ctx.s3()
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| StageError::aws(Service::S3, e))
        .map_err(|e| with_context(e, &format!("bucket {bucket}")))?;
    Ok(format!("bucket {bucket} reachable"))
}

async fn elasticsearch(ctx: &Context) -> Result<String, StageError> {
    let response = ctx
        .elasticsearch()?
        .send(
            elasticsearch::http::Method::Get,
            "/",
            elasticsearch::http::headers::HeaderMap::new(),
            None,
        )
        .await?;
    let status = response.status_code().as_u16();
    let body = response.text().await.map_err(StageError::elasticsearch)?;
    if !(200..300).contains(&status) {
        return Err(StageError::elasticsearch_status(status, &body));
    }
    let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    Ok(format!(
        "{} {}",
        info["version"]["distribution"]
            .as_str()
            .unwrap_or("elasticsearch"),
        info["version"]["number"].as_str().unwrap_or("?")
    ))
}

async fn step_functions(ctx: &Context) -> Result<String, StageError> {
    let out = ctx
        .step_functions()
        .list_state_machines()
        .max_results(1)
        .send()
        .await
        .map_err(|e| StageError::aws(Service::StepFunctions, e))?;
    Ok(format!(
        "state machines listed ({} on first page)",
        out.state_machines().len()
    ))
}

async fn scheduler(ctx: &Context) -> Result<String, StageError> {
    ctx.scheduler()
        .list_schedules()
        .max_results(1)
        .send()
        .await
        .map_err(|e| StageError::aws(Service::Scheduler, e))?;
    Ok("schedules listed".to_string())
}

async fn within<F>(service: Service, check: F) -> Result<String, StageError>
where
    F: Future<Output = Result<String, StageError>>,
{
    tokio::time::timeout(PROBE_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Err(StageError::unavailable(
                service,
                format!("no answer within {PROBE_TIMEOUT:?}"),
            ))
        })
}

fn with_context(err: StageError, context: &str) -> StageError {
    match err {
        StageError::Service {
            service,
            retryable,
            message,
        } => StageError::Service {
            service,
            retryable,
            message: format!("{context}: {message}"),
        },
        other => other,
    }
}
