//! Step Functions on moto for the tests of deployed machines (`etl start`, `etl schedules`,
//! `etl ui --deployed`, `etl history --deployed`): the client, and stand-in machines.

use etl_core::{Context, Service};
use serde_json::Value;

use crate::{context, env_source, require};

/// Clients for moto, with `services` checked. Fails the test, saying what to run, when the
/// services are not up; never points at real AWS.
pub async fn moto(services: &[Service]) -> Context {
    let env = env_source();
    assert!(
        env.get("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: these tests need moto (`scripts/services up`), never real AWS"
    );
    let ctx = context(&env).await;
    require(&ctx, services).await;
    ctx
}

/// Deploys a stand-in machine named `name` (moto executes its Pass, Fail and Choice states),
/// returning its ARN.
pub async fn deploy(ctx: &Context, name: &str, definition: &Value) -> String {
    ctx.step_functions()
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/etl-test-machine")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "moto CreateStateMachine {name}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            )
        })
        .state_machine_arn()
        .to_string()
}
