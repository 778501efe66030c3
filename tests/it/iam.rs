//! template.yaml's IAM contract on the functions' AWS calls (issue #14): a call AWS would
//! deny fails the stage naming function, action and resource; S3's 403-for-a-missing-key
//! rule; `etl iam report`.

use std::sync::Arc;

use etl_cli::functions::call_in_process;
use etl_cli::iam::{deployment, ContractAuditor};
use etl_core::aws_calls::{ApiCall, CallDeployment, CallRecord};
use etl_core::{s3, Context, ErrorKind, LogicalDate, Service};
use iam_contract::Contract;
use integration_tests::cli::{command, output, text};
use integration_tests::iam::template_path;
use integration_tests::marketing::{generate_marketing_day, marketing_lake};
use integration_tests::{unique_suffix, TestEnv};
use marketing::dataset::raw_prefix;
use marketing::stages::plan::{self, PlanEvent};
use marketing::stages::unify::master_keys;
use serde_json::json;

const DATE: &str = "2026-11-25";

fn date() -> LogicalDate {
    DATE.parse().unwrap()
}

fn plan_event(rows: u64) -> PlanEvent {
    PlanEvent {
        logical_date: date(),
        rows: Some(rows),
        partition_rows: Some(500),
        partitions_per_task: Some(2),
        seed: Some(5),
        execution: None,
    }
}

/// template.yaml without the boundary statement that lets plan and unify delete.
fn contract_without_replaced_prefixes(env: &TestEnv) -> Contract {
    let template = std::fs::read_to_string(template_path()).unwrap();
    let start = template
        .find("          - Sid: DataLakeReplacedPrefixes")
        .expect("template.yaml has no DataLakeReplacedPrefixes statement");
    let end = template[start..]
        .find("          - Sid: DataLakeListing")
        .map(|n| start + n)
        .expect("DataLakeListing no longer follows DataLakeReplacedPrefixes");
    let trimmed = format!("{}{}", &template[..start], &template[end..]);
    Contract::load(&trimmed, &deployment(&CallDeployment::of(&env.ctx.config))).unwrap()
}

#[tokio::test]
async fn a_call_the_boundary_denies_fails_the_stage_naming_function_action_and_resource() {
    let env = marketing_lake().await;
    let bucket = env.ctx.config.bucket.clone();
    // Four raw partitions, written as the functions write them (checked, allowed).
    generate_marketing_day(&env, plan_event(2000)).await;
    let planner = env.ctx.for_function("marketing-plan");

    // A re-run with fewer rows prunes two partitions: DeleteObject, which the boundary
    // without DataLakeReplacedPrefixes denies.
    let auditor = ContractAuditor::new(
        contract_without_replaced_prefixes(&env),
        CallDeployment::of(&env.ctx.config),
        None,
    );
    let denied = env
        .ctx
        .for_function_with("marketing-plan", Arc::new(auditor));
    let err = plan::run(&denied, plan_event(1000)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Fatal,
        "AccessDenied is not retryable"
    );
    let message = err.to_string();
    for part in [
        "AccessDenied",
        "marketing-plan may not s3:DeleteObject",
        &format!("arn:aws:s3:::{bucket}/raw/marketing/"),
        "permissions boundary FunctionPermissionsBoundary",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    // Denied before it was sent: nothing was deleted.
    let raw = s3::list(&env.ctx, &bucket, &raw_prefix(date()))
        .await
        .unwrap();
    assert_eq!(raw.len(), 4, "{raw:?}");

    // The deployed template allows it.
    let pruned = plan::run(&planner, plan_event(1000)).await.unwrap();
    assert_eq!(pruned.tasks.len(), 1);
    let raw = s3::list(&env.ctx, &bucket, &raw_prefix(date()))
        .await
        .unwrap();
    assert_eq!(raw.len(), 2, "{raw:?}");
}

#[tokio::test]
async fn a_missing_key_is_access_denied_to_a_function_that_may_list_only_a_prefix() {
    let env = marketing_lake().await;
    let bucket = env.ctx.config.bucket.clone();
    let (parquet_key, _) = master_keys(date());
    let report: Context = env.ctx.for_function("marketing-report");
    // S3 says 404 only to a caller with s3:ListBucket on the whole bucket.
    let err = s3::get_if_exists(&report, &bucket, &parquet_key)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Fatal);
    // Listing the key's own prefix, which the role may, tells absence apart.
    let found = s3::get_if_listed(&report, &bucket, &parquet_key).await;
    assert!(matches!(found, Ok(None)), "{found:?}");
    // The operator's client is not a function's: moto's 404 stands.
    let found = s3::get_if_exists(&env.ctx, &bucket, &parquet_key).await;
    assert!(matches!(found, Ok(None)), "{found:?}");
}

#[tokio::test]
async fn a_report_of_a_date_never_unified_is_invalid_input_not_access_denied() {
    let env = marketing_lake().await;
    let err = call_in_process(
        &env.ctx,
        "marketing-report",
        json!({ "logical_date": DATE }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("unify that date first"), "{err}");
}

fn record(call: ApiCall, bucket: &str) -> String {
    serde_json::to_string(&CallRecord {
        call,
        deployment: CallDeployment {
            bucket: bucket.into(),
            ..CallDeployment::default()
        },
        decision: "unchecked".into(),
        ..CallRecord::default()
    })
    .unwrap()
}

#[test]
fn etl_iam_report_counts_calls_lists_unused_grants_and_fails_on_a_denial() {
    let bucket = "etl-test-report";
    let allowed = ApiCall::new("marketing-report", "s3", "PutObject")
        .bucket(bucket)
        .key("reports/marketing/dt=2026-11-25/kpis.json");
    let denied = ApiCall::new("marketing-report", "s3", "DeleteObject")
        .bucket(bucket)
        .key("curated/marketing/dt=2026-11-25/master.parquet");
    let log = std::env::temp_dir().join(format!("iam-calls-{}.jsonl", unique_suffix()));
    std::fs::write(&log, record(allowed.clone(), bucket) + "\n").unwrap();
    let args = [
        "iam",
        "report",
        "--calls",
        log.to_str().unwrap(),
        "--markdown",
    ];
    let out = output(&mut command(&args));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("| marketing-report | 1 | 1 | 0 |"),
        "{stdout}"
    );
    assert!(stdout.contains("ReadCuratedMarketing"), "{stdout}");
    assert!(!stdout.contains("WriteReports"), "{stdout}");

    let both = record(allowed, bucket) + "\n" + &record(denied, bucket) + "\n";
    std::fs::write(&log, both).unwrap();
    let out = output(&mut command(&args));
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "marketing-report may not s3:DeleteObject on arn:aws:s3:::etl-lake/curated/marketing/"
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_file(&log);
}

/// Creates a secret in moto; deleted by [`delete_secret`].
async fn create_secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    let name = format!("etl-test/iam-{}", unique_suffix());
    let created = client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    created.arn().unwrap_or_default().to_string()
}

async fn delete_secret(client: &aws_sdk_secretsmanager::Client, arn: &str) {
    let _ = client
        .delete_secret()
        .secret_id(arn)
        .force_delete_without_recovery(true)
        .send()
        .await;
}

/// Each function reads its settings from the secrets as deployed (DatabaseSecretArn for
/// all, ElasticsearchSecretArn for the two that index): its own GetSecretValue, allowed.
#[tokio::test]
async fn every_function_may_read_the_secrets_it_is_deployed_with() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let client = aws_sdk_secretsmanager::Client::new(env.ctx.aws_config());
    let db = create_secret(&client, &json!({ "url": env.db.url }).to_string()).await;
    let es_url = env
        .env
        .get("ELASTICSEARCH_URL")
        .unwrap_or("http://127.0.0.1:9200");
    let es = create_secret(&client, &json!({ "url": es_url }).to_string()).await;
    let secrets = env
        .env
        .clone()
        .with("DATABASE_URL", "")
        .with("DATABASE_SECRET_ARN", &db);
    let config = etl_core::Config::from_source(&secrets).unwrap();
    let indexing = ["hr-sync", "clickstream-simulate"];
    let es_config = etl_core::Config::from_source(
        &secrets
            .clone()
            .with("ELASTICSEARCH_URL", "")
            .with("ELASTICSEARCH_SECRET_ARN", &es),
    )
    .unwrap();
    for function in etl_cli::functions::function_names() {
        let config = if indexing.contains(&function) {
            es_config.clone()
        } else {
            config.clone()
        };
        // A context of its own, as each Lambda container has: the secret is read once.
        let ctx = integration_tests::iam::audited_context(config)
            .await
            .for_function(function);
        let _connection = ctx
            .postgres()
            .await
            .unwrap_or_else(|e| panic!("{function}: {e}"));
        ctx.resolve_secrets()
            .await
            .unwrap_or_else(|e| panic!("{function}: {e}"));
    }
    delete_secret(&client, &db).await;
    delete_secret(&client, &es).await;
}

/// A multipart upload that fails is aborted (etl-core's ObjectWriter): the functions that
/// stream uploads hold s3:AbortMultipartUpload for it.
#[tokio::test]
async fn an_abandoned_multipart_upload_is_aborted_by_the_function() {
    let env = marketing_lake().await;
    let bucket = env.ctx.config.bucket.clone();
    let unify = env.ctx.for_function("marketing-unify");
    let key = format!("curated/marketing/dt={DATE}/abandoned.parquet");
    let mut writer = s3::ObjectWriter::new(&unify, &bucket, &key, "application/octet-stream");
    writer.write(&vec![0_u8; s3::PART_SIZE + 1]).await.unwrap();
    writer.abort().await;
    let uploads = env
        .ctx
        .s3()
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
}
