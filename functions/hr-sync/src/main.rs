//! Lambda `hr-sync`: indexes one hire-date interval of employees into Elasticsearch.

use etl_core::stages::hr_sync;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        hr_sync::run(&ctx, event).await
    })
    .await
}
