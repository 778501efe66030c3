//! Lambda `hr-schema`: applies the schema migrations. Idempotent.

use etl_core::stages::hr_schema;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        hr_schema::run(&ctx, event).await
    })
    .await
}
