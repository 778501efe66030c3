//! Lambda `hr-export`: exports the employees as of a logical date to S3 as CSV (reverse ETL).

// The export future (COPY stream → multipart upload) nests deeper than the default limit.
#![recursion_limit = "256"]

use etl_core::stages::hr_export;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        hr_export::run(&ctx, event).await
    })
    .await
}
