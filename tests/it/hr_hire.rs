//! The hire stage against a real PostgreSQL: deterministic, idempotent, clean, honest about
//! rejects, all-or-nothing when the connection dies, and strict about its input.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use etl_cli::functions::call_in_process;
use etl_core::stages::hr_hire::{self, HireEvent, HireOptions};
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
        // Beyond the measured maximum (docs/pipelines.md § Maximums).
        json!({"logical_date": "2026-11-25", "count": hr_hire::MAX_COUNT + 1}),
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

/// Starts a 400,000-row hire for `date` and kills its COPY mid-load: the error it ends with.
async fn hire_killed_mid_copy(env: &TestEnv, date: &'static str) -> etl_core::StageError {
    let ctx = env.ctx.clone();
    let load = tokio::spawn(async move { hr_hire::run(&ctx, event(date, 400_000, 3)).await });
    kill_the_copy(env).await;
    load.await.unwrap().unwrap_err()
}

/// Waits until the hire's COPY is running, then kills that backend from another connection.
async fn kill_the_copy(env: &TestEnv) {
    let admin = env.ctx.postgres().await.unwrap();
    for _ in 0..200 {
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND query LIKE 'COPY hr.employees%'",
                &[],
            )
            .await
            .unwrap();
        if rows.iter().any(|r| r.get::<_, bool>(0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never saw the COPY running");
}

#[tokio::test]
async fn a_connection_killed_mid_load_leaves_nothing_and_the_retry_completes() {
    let env = migrated().await;
    let err = hire_killed_mid_copy(&env, "2026-11-23").await;
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
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

/// Every column a load decides (ids included, not `loaded_at`), row by row, per batch; and the
/// rejects.
async fn full_fingerprint(env: &TestEnv, filter: &str) -> (String, String) {
    let client = env.ctx.postgres().await.unwrap();
    let employees: Option<String> = client
        .query_one(
            &format!(
                "SELECT md5(string_agg(concat_ws('|', employee_id, logical_date, batch_seed, batch_index,
                        full_name, job_title, department, email, salary, hire_date), ','
                        ORDER BY logical_date, batch_seed, batch_index))
                   FROM hr.employees WHERE {filter}"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let rejects: Option<String> = client
        .query_one(
            &format!(
                "SELECT md5(string_agg(concat_ws('|', logical_date, batch_seed, batch_index, record::text, reason), ','
                        ORDER BY logical_date, batch_seed, batch_index))
                   FROM hr.employee_rejects WHERE {filter}"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (employees.unwrap_or_default(), rejects.unwrap_or_default())
}

fn threads(n: usize) -> HireOptions {
    HireOptions {
        generator_threads: NonZeroUsize::new(n),
        ..HireOptions::default()
    }
}

#[tokio::test]
async fn one_or_many_generator_threads_load_the_same_rows() {
    // Several chunks, the last one short; each load in a fresh database, so both batches get
    // the first id block.
    let mut fingerprints = Vec::new();
    for n in [1, 3] {
        let env = migrated().await;
        let out = hr_hire::run_with(&env.ctx, event("2026-11-20", 30_001, 5), threads(n))
            .await
            .unwrap();
        assert_eq!(out.loaded + out.rejected, 30_001, "{n} threads: {out:?}");
        assert!(out.rejected > 0);
        fingerprints.push((out, full_fingerprint(&env, "true").await));
    }
    assert_eq!(fingerprints[0], fingerprints[1]);
}

/// Each row's physical identity: a row rewritten by an UPDATE or re-inserted has another.
async fn row_versions(env: &TestEnv, filter: &str) -> Vec<(i64, String)> {
    let sql = format!(
        "SELECT employee_id, xmin::text || ctid::text FROM hr.employees WHERE {filter} ORDER BY employee_id"
    );
    pairs(env, &sql).await
}

/// The first two columns of every row `sql` returns.
async fn pairs<A, B>(env: &TestEnv, sql: &str) -> Vec<(A, B)>
where
    A: for<'r> tokio_postgres::types::FromSql<'r>,
    B: for<'r> tokio_postgres::types::FromSql<'r>,
{
    env.ctx
        .postgres()
        .await
        .unwrap()
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_rerun_replaces_exactly_its_batch_and_nothing_else() {
    let env = migrated().await;
    let batch = "logical_date = '2026-11-21' AND batch_seed = 1";
    let others = "NOT (logical_date = '2026-11-21' AND batch_seed = 1)";
    for (date, seed) in [
        ("2026-11-20", 1),
        ("2026-11-21", 1),
        ("2026-11-21", 2), // another batch of the same day
        ("2026-11-22", 1),
    ] {
        hr_hire::run(&env.ctx, event(date, 3000, seed))
            .await
            .unwrap();
    }
    let loaded = full_fingerprint(&env, batch).await;
    let ids: Vec<i64> = row_versions(&env, batch)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let others_before = (
        full_fingerprint(&env, others).await,
        row_versions(&env, others).await,
    );

    // Damage the batch the ways an operator or a bug might: a row gone, a row edited, a
    // stray reject, a row that no run of the batch makes.
    let client = env.ctx.postgres().await.unwrap();
    client
        .batch_execute(&format!(
            "DELETE FROM hr.employees WHERE {batch} AND batch_index = 10;
             UPDATE hr.employees SET full_name = 'Edited' WHERE {batch} AND batch_index = 11;
             DELETE FROM hr.employee_rejects WHERE {batch};
             INSERT INTO hr.employee_rejects (logical_date, batch_seed, batch_index, record, reason)
                  VALUES ('2026-11-21', 1, 99999, '{{}}', 'stray');
             INSERT INTO hr.employees (logical_date, batch_seed, batch_index, full_name, job_title,
                                       department, email, salary, hire_date)
                  VALUES ('2026-11-21', 1, 5000, 'Stray', 'x', 'x', 'x@x.es', 1, '2026-11-21');"
        ))
        .await
        .unwrap();

    let again = hr_hire::run(&env.ctx, event("2026-11-21", 3000, 1))
        .await
        .unwrap();
    assert_eq!(full_fingerprint(&env, batch).await, loaded, "not restored");
    let after = row_versions(&env, batch).await;
    assert_eq!(
        after.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids,
        "employee ids changed: search documents would be duplicated"
    );
    assert_eq!(again.loaded, 1, "only the deleted row is new: {again:?}");
    assert_eq!(again.already_present + again.loaded + again.rejected, 3000);
    assert_eq!(
        (
            full_fingerprint(&env, others).await,
            row_versions(&env, others).await
        ),
        others_before,
        "a row of another batch was touched"
    );

    // Fewer rows: the ones beyond the new count go; more: they come back with the same ids.
    hr_hire::run(&env.ctx, event("2026-11-21", 1000, 1))
        .await
        .unwrap();
    assert_eq!(
        count(
            &env,
            &format!("SELECT count(*) FROM hr.employees WHERE {batch} AND batch_index >= 1000")
        )
        .await,
        0
    );
    hr_hire::run(&env.ctx, event("2026-11-21", 3000, 1))
        .await
        .unwrap();
    assert_eq!(full_fingerprint(&env, batch).await, loaded);
    assert_eq!(
        row_versions(&env, others).await,
        others_before.1,
        "a row of another batch was touched"
    );
}

#[tokio::test]
async fn a_batch_loaded_before_id_blocks_keeps_its_ids() {
    let env = migrated().await;
    hr_hire::run(&env.ctx, event("2026-11-19", 2000, 4))
        .await
        .unwrap();
    // What a load by an earlier build looks like: identity ids (clear of the ones the
    // identity will hand out next, as real ones are), no registered block, and (an earlier
    // run with a smaller count) some rows missing.
    let batch = "logical_date = '2026-11-19' AND batch_seed = 4";
    let client = env.ctx.postgres().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE legacy AS SELECT * FROM hr.employees WHERE {batch};
             DELETE FROM hr.employees WHERE {batch};
             INSERT INTO hr.employees OVERRIDING SYSTEM VALUE
                  SELECT 100000 + 3 * batch_index, logical_date, batch_seed, batch_index, full_name,
                         job_title, department, email, salary, hire_date, loaded_at
                    FROM legacy;
             DELETE FROM hr.hire_batches WHERE {batch};
             DELETE FROM hr.employees WHERE {batch} AND batch_index >= 1500;"
        ))
        .await
        .unwrap();
    let kept = row_versions(&env, batch).await;

    let again = hr_hire::run(&env.ctx, event("2026-11-19", 2000, 4))
        .await
        .unwrap();
    assert_eq!(again.already_present as usize, kept.len(), "{again:?}");
    assert_eq!(again.loaded + again.already_present + again.rejected, 2000);
    let now = row_versions(&env, batch).await;
    assert!(
        kept.iter().all(|row| now.contains(row)),
        "the legacy rows were rewritten"
    );
    assert_eq!(now.len(), kept.len() + again.loaded as usize);
    let id_base: Option<i64> = client
        .query_one(
            &format!("SELECT id_base FROM hr.hire_batches WHERE {batch}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id_base, None, "a legacy batch has no id block");

    // And a re-run adds nothing.
    let third = hr_hire::run(&env.ctx, event("2026-11-19", 2000, 4))
        .await
        .unwrap();
    assert_eq!(third.loaded, 0);
    assert_eq!(row_versions(&env, batch).await, now);
}

#[tokio::test]
async fn a_replace_killed_mid_load_leaves_the_previous_load() {
    let env = migrated().await;
    hr_hire::run(&env.ctx, event("2026-11-18", 50_000, 3))
        .await
        .unwrap();
    let before = (
        full_fingerprint(&env, "true").await,
        row_versions(&env, "true").await,
    );

    let err = hire_killed_mid_copy(&env, "2026-11-18").await;
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert_eq!(
        (
            full_fingerprint(&env, "true").await,
            row_versions(&env, "true").await
        ),
        before,
        "the killed load changed the date"
    );
}

/// `(batch_index, employee_id)` of a batch's rows, in index order.
async fn ids_by_index(env: &TestEnv, filter: &str) -> Vec<(i32, i64)> {
    let sql = format!(
        "SELECT batch_index, employee_id FROM hr.employees WHERE {filter} ORDER BY batch_index"
    );
    pairs(env, &sql).await
}

/// The batch's id blocks: `id_base`, then `more_id_bases`.
async fn id_blocks(env: &TestEnv, filter: &str) -> Vec<i64> {
    let row = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            &format!("SELECT id_base, more_id_bases FROM hr.hire_batches WHERE {filter}"),
            &[],
        )
        .await
        .unwrap();
    let mut blocks = vec![row.get::<_, i64>(0)];
    blocks.extend(row.get::<_, Vec<i64>>(1));
    blocks
}

#[tokio::test]
async fn a_batch_larger_than_an_id_block_gets_unique_ids_that_survive_reruns() {
    // Blocks of 1,000 rows stand in for the 2^21 ids of a real block, so that a batch of a
    // few thousand rows crosses several (10M rows in one hire own 5 real ones).
    const BLOCK: u32 = 1_000;
    let env = migrated().await;
    let small_blocks = HireOptions {
        id_block_rows: NonZeroU32::new(BLOCK),
        ..HireOptions::default()
    };
    let hire = |date: &'static str, count: u64, seed: u64| {
        hr_hire::run_with(&env.ctx, event(date, count, seed), small_blocks)
    };
    let batch = "logical_date = '2026-11-17' AND batch_seed = 6";
    let other = "logical_date = '2026-11-17' AND batch_seed = 7";
    hire("2026-11-17", 2_500, 6).await.unwrap();
    // Another batch registered in between: its blocks come between this batch's.
    hire("2026-11-17", 1_500, 7).await.unwrap();
    let first = ids_by_index(&env, batch).await;
    let blocks = id_blocks(&env, batch).await;
    assert_eq!(blocks.len(), 3, "2,500 rows need 3 blocks: {blocks:?}");
    for (index, id) in &first {
        let (block, offset) = (*index as u32 / BLOCK, *index as u32 % BLOCK);
        assert_eq!(
            *id,
            blocks[block as usize] + i64::from(offset),
            "row {index}"
        );
    }
    let duplicates = "SELECT count(*) - count(DISTINCT employee_id) FROM hr.employees";
    assert_eq!(count(&env, duplicates).await, 0);
    let other_ids = ids_by_index(&env, other).await;
    let other_blocks = id_blocks(&env, other).await;
    assert!(
        other_blocks.iter().all(|b| !blocks.contains(b)),
        "two batches share a block: {blocks:?} {other_blocks:?}"
    );

    // The same run again: the same id on every row, no new block.
    hire("2026-11-17", 2_500, 6).await.unwrap();
    assert_eq!(ids_by_index(&env, batch).await, first);
    assert_eq!(id_blocks(&env, batch).await, blocks);

    // More rows: new blocks for them; the rows it had keep their ids.
    hire("2026-11-17", 4_200, 6).await.unwrap();
    let larger = ids_by_index(&env, batch).await;
    let grown = id_blocks(&env, batch).await;
    assert_eq!(grown.len(), 5);
    assert_eq!(grown[..3], blocks[..]);
    assert!(grown.iter().all(|b| !other_blocks.contains(b)));
    let kept: Vec<(i32, i64)> = larger.iter().filter(|(i, _)| *i < 2_500).copied().collect();
    assert_eq!(kept, first, "a larger re-run moved the earlier rows' ids");
    assert!(larger.iter().any(|(i, _)| *i >= 4_000));
    assert_eq!(count(&env, duplicates).await, 0);

    // Fewer: the blocks stay the batch's, so growing again brings the same ids back.
    hire("2026-11-17", 900, 6).await.unwrap();
    assert_eq!(id_blocks(&env, batch).await, grown);
    hire("2026-11-17", 4_200, 6).await.unwrap();
    assert_eq!(ids_by_index(&env, batch).await, larger);
    assert_eq!(ids_by_index(&env, other).await, other_ids);
}
