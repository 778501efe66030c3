//! The marketing data lake as the tests set it up: one place for the services it needs and
//! for writing a day's raw partitions the way the deployed functions write them.

use etl_core::Service;
use marketing::stages::generate;
use marketing::stages::plan::{self, PlanEvent, PlanOutput};

use crate::TestEnv;

/// PostgreSQL (the run ledger) and S3, with the schema applied.
pub async fn marketing_lake() -> TestEnv {
    TestEnv::with_lake(&[Service::Postgres, Service::S3])
        .await
        .with_schema()
        .await
}

/// Plans a day and writes its raw partitions as `marketing-plan` and `marketing-generate`
/// do, so every S3 call is checked against those functions' IAM when the contract is on.
pub async fn generate_marketing_day(env: &TestEnv, event: PlanEvent) -> PlanOutput {
    let planner = env.ctx.for_function("marketing-plan");
    let generator = env.ctx.for_function("marketing-generate");
    let planned = plan::run(&planner, event).await.unwrap();
    for task in planned.tasks.clone() {
        generate::run(&generator, task).await.unwrap();
    }
    planned
}
