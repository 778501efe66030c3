//! Lambda `marketing-unify`: unifies a day's raw partitions into the master dataset (Parquet + CSV), quarantining bad data.

use marketing::stages::unify;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_support::run(env!("CARGO_PKG_NAME"), |ctx, event| async move {
        unify::run(&ctx, event).await
    })
    .await
}
