//! Lambda `clickstream-simulate`: simulates shopping sessions and bulk-indexes their events into Elasticsearch.

use etl_core::stages::clickstream_simulate;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        clickstream_simulate::run(&ctx, event).await
    })
    .await
}
