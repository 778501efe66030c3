//! Lambda `hr-hire`: generates, cleans, validates and loads fake employees for a logical date.

use etl_core::stages::hr_hire;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        hr_hire::run(&ctx, event).await
    })
    .await
}
