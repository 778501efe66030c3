//! Lambda `plan-dates`: plans the logical dates a pipeline run covers (catchup and backfill).

use etl_core::stages::plan;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        plan::run(&ctx, event).await
    })
    .await
}
