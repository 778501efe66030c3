//! The employees schema stage against a real PostgreSQL: versioned, idempotent, safe under
//! concurrency, and refusing a database that no longer matches the code.

use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::{ErrorKind, Service};
use integration_tests::{all_migrations, TestEnv};

/// Every column and index of our schemas: what "the schema changed" means.
async fn schema_fingerprint(env: &TestEnv) -> Vec<String> {
    let client = env.ctx.postgres().await.unwrap();
    let columns = client
        .query(
            "SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type
               FROM information_schema.columns
              WHERE table_schema IN ('hr', 'etl')
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let indexes = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname IN ('hr', 'etl') ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    columns
        .iter()
        .chain(indexes.iter())
        .map(|row| row.get::<_, String>(0))
        .collect()
}

/// Runs one statement in the test's database.
async fn execute(env: &TestEnv, sql: &str) {
    env.ctx
        .postgres()
        .await
        .unwrap()
        .execute(sql, &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn schema_stage_creates_everything_later_stages_need_and_is_idempotent() {
    let env = TestEnv::new(&[Service::Postgres]).await;

    let first = hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap();
    let every = all_migrations();
    assert_eq!(
        every,
        (1..=every.len() as i32).collect::<Vec<_>>(),
        "versions are 1, 2, 3…"
    );
    assert_eq!(first.migrations.applied, every);
    assert_eq!(first.migrations.already_applied, 0);
    let after_first = schema_fingerprint(&env).await;
    for expected in [
        "hr.employees.employee_id bigint",
        "hr.employees.full_name character varying",
        "hr.employees.hire_date date",
        "hr.employees.salary numeric",
        "hr.employee_rejects.reason text",
        "etl.runs.status text",
        "etl.runs.rows_rejected bigint",
        "etl.leases.expires_at timestamp with time zone",
        "etl.executions.journal jsonb",
        "etl.schema_migrations.checksum text",
    ] {
        assert!(
            after_first.iter().any(|c| c == expected),
            "missing column {expected}; have {after_first:#?}"
        );
    }
    assert!(after_first
        .iter()
        .any(|i| i.contains("employees_natural_key") && i.contains("UNIQUE")));

    let second = hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap();
    assert!(second.migrations.applied.is_empty());
    assert_eq!(second.migrations.already_applied, every.len());
    assert_eq!(second.migrations.schema_version, every.len() as i32);
    assert_eq!(
        schema_fingerprint(&env).await,
        after_first,
        "a second run changed the schema"
    );
}

#[tokio::test]
async fn concurrent_runs_apply_each_migration_exactly_once() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let runs = (0..4).map(|_| hr_schema::run(&env.ctx, SchemaEvent::default()));
    let results = futures::future::join_all(runs).await;
    let mut applied: Vec<i32> = Vec::new();
    for result in results {
        applied.extend(result.unwrap().migrations.applied);
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        all_migrations(),
        "each migration must be applied by exactly one run"
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused_and_changes_nothing() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap();
    let before = schema_fingerprint(&env).await;
    execute(
        &env,
        "UPDATE etl.schema_migrations SET checksum = 'edited' WHERE version = 1",
    )
    .await;

    let err = hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal);
    assert!(err.to_string().contains("migration 1"), "{err}");
    assert_eq!(schema_fingerprint(&env).await, before);
}

#[tokio::test]
async fn a_database_newer_than_the_code_is_refused() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap();
    execute(
        &env,
        "INSERT INTO etl.schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')",
    )
    .await;
    let err = hr_schema::run(&env.ctx, SchemaEvent::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
}
