//! Lambda `record-run`: records a pipeline run's outcome in the run ledger.

use etl_core::stages::record_run;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        record_run::run(&ctx, event).await
    })
    .await
}
