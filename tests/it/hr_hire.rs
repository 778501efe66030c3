//! The hire stage against a real PostgreSQL: deterministic, idempotent, clean, honest about
//! rejects, all-or-nothing when the connection dies, and strict about its input.

use std::time::Duration;

use etl_cli::functions::call_in_process;
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::{ErrorKind, Service};
use integration_tests::{scalar, TestEnv};
use serde_json::json;

async fn migrated() -> TestEnv {
    TestEnv::new(&[Service::Postgres]).await.with_schema().await
}

fn event(date: &str, count: u64, seed: u64) -> HireEvent {
    serde_json::from_value(json!({"logical_date": date, "count": count, "seed": seed})).unwrap()
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    scalar(&env.ctx, sql).await
}

/// A digest of every hired row's text, in load order.
async fn fingerprint(env: &TestEnv) -> String {
    env.ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT md5(string_agg(full_name || job_title || email || salary::text, ',' ORDER BY batch_index)) FROM hr.employees",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn hiring_is_deterministic_and_rerunning_adds_nothing() {
    let env = migrated().await;
    let first = hr_hire::run(&env.ctx, event("2026-11-25", 5000, 7))
        .await
        .unwrap();
    assert_eq!(first.generated, 5000);
    assert!(
        first.rejected > 0,
        "the generator injects a few invalid rows: {first:?}"
    );
    assert_eq!(first.loaded + first.rejected, 5000);
    let table = count(&env, "SELECT count(*) FROM hr.employees").await;
    let before = fingerprint(&env).await;

    for _ in 0..3 {
        let again = hr_hire::run(&env.ctx, event("2026-11-25", 5000, 7))
            .await
            .unwrap();
        assert_eq!(again.loaded, 0);
        assert_eq!(again.already_present, first.loaded);
        assert_eq!(again.rejected, first.rejected);
    }
    assert_eq!(
        count(&env, "SELECT count(*) FROM hr.employees").await,
        table
    );
    let after = fingerprint(&env).await;
    assert_eq!(before, after, "a re-run changed the rows");

    // Rejected rows are recorded with their reasons, never dropped.
    assert_eq!(
        count(&env, "SELECT count(*) FROM hr.employee_rejects").await,
        first.rejected as i64
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM hr.employee_rejects WHERE reason = '' OR record IS NULL"
        )
        .await,
        0
    );

    // Another seed on the same day is another batch of people.
    let other = hr_hire::run(&env.ctx, event("2026-11-25", 100, 8))
        .await
        .unwrap();
    assert_eq!(other.loaded + other.rejected, 100);
}

#[tokio::test]
async fn names_keep_their_accents_and_text_is_clean() {
    let env = migrated().await;
    hr_hire::run(&env.ctx, event("2026-11-24", 2000, 1))
        .await
        .unwrap();
    let client = env.ctx.postgres().await.unwrap();
    let accented: i64 = client
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE full_name ~ '[áéíóúñÁÉÍÓÚÑüç]'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(accented > 200, "only {accented} accented names survived");
    let messy: i64 = client
        .query_one(
            "SELECT count(*) FROM hr.employees
              WHERE full_name <> btrim(full_name) OR full_name ~ '\\s\\s' OR job_title ~ '\\s$'
                 OR length(full_name) > 50 OR length(job_title) > 50",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(messy, 0);
    let wrong_dates: i64 = client
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE hire_date <> DATE '2026-11-24'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        wrong_dates, 0,
        "hire dates must fall in the logical date's interval"
    );
}

#[tokio::test]
async fn malformed_events_are_invalid_input_and_change_nothing() {
    let env = migrated().await;
    for bad in [
        json!({"logical_date": "2026-02-30"}),
        json!({"logical_date": "yesterday"}),
        json!({"count": 10}),
        json!({"logical_date": "2026-11-25", "count": -5}),
        json!({"logical_date": "2026-11-25", "count": 0}),
        json!({"logical_date": "2026-11-25", "count": 1_000_000_000u64}),
        // Beyond what the 300 s timeout allows: accepted before the limits came from it.
        json!({"logical_date": "2026-11-25", "count": 5_000_000u64}),
        json!({"logical_date": "2026-11-25", "count": "many"}),
        json!({"logical_date": "2026-11-25", "locale": "xx_XX"}),
        json!({"logical_date": "2026-11-25", "seed": u64::MAX}),
        json!(["not", "an", "object"]),
    ] {
        let err = call_in_process(&env.ctx, "hr-hire", bad.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad} gave {err}");
    }
    assert_eq!(count(&env, "SELECT count(*) FROM hr.employees").await, 0);
    assert_eq!(
        count(&env, "SELECT count(*) FROM hr.employee_rejects").await,
        0
    );
}

#[tokio::test]
async fn a_connection_killed_mid_load_leaves_nothing_and_the_retry_completes() {
    let env = migrated().await;
    let ctx = env.ctx.clone();
    let load =
        tokio::spawn(async move { hr_hire::run(&ctx, event("2026-11-23", 400_000, 3)).await });

    // Wait until the COPY is running, then kill that backend from another connection.
    let admin = env.ctx.postgres().await.unwrap();
    let mut killed = false;
    for _ in 0..200 {
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND query LIKE 'COPY hire_staging%'",
                &[],
            )
            .await
            .unwrap();
        if rows.iter().any(|r| r.get::<_, bool>(0)) {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed, "never saw the COPY running");
    let err = load.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    drop(admin);
    assert_eq!(
        count(&env, "SELECT count(*) FROM hr.employees").await,
        0,
        "partial data left behind"
    );

    let retry = hr_hire::run(&env.ctx, event("2026-11-23", 400_000, 3))
        .await
        .unwrap();
    assert_eq!(retry.loaded + retry.rejected, 400_000);
    assert_eq!(
        count(&env, "SELECT count(*) FROM hr.employees").await,
        retry.loaded as i64
    );
}
