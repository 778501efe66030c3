//! Lambda `marketing-generate`: writes synthetic ad-campaign partitions to the raw zone of the S3 data lake.

use marketing::stages::generate;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        generate::run(&ctx, event).await
    })
    .await
}
