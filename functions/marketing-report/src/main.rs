//! Lambda `marketing-report`: computes the marketing KPI report (JSON, Markdown, HTML with charts) of a day's master dataset.

use marketing::stages::report;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        report::run(&ctx, event).await
    })
    .await
}
