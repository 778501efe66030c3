//! Lambda `marketing-plan`: plans a marketing day: validates its size and splits it into partitions for the generate fan-out.

use marketing::stages::plan;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        plan::run(&ctx, event).await
    })
    .await
}
