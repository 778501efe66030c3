//! Export to S3 (moto) and sync to Elasticsearch (osmem), against real local services.

use std::time::Duration;

use etl_core::search::index::EMPLOYEES;
use etl_core::search::{ensure_index, BulkConfig, BulkSink};
use etl_core::stages::hr_export::{self, ExportEvent};
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::stages::hr_sync::{self, SyncEvent};
use etl_core::Context;
use integration_tests::{doc_count, download, es_get, TestEnv, LAKE};
use serde_json::json;

async fn lake() -> TestEnv {
    TestEnv::with_lake(LAKE).await.with_schema().await
}

async fn hire(ctx: &Context, date: &str, count: u64) -> u64 {
    let event: HireEvent =
        serde_json::from_value(json!({"logical_date": date, "count": count})).unwrap();
    hr_hire::run(ctx, event).await.unwrap().loaded
}

fn sync_event(date: &str, full: bool) -> SyncEvent {
    serde_json::from_value(json!({"logical_date": date, "full": full})).unwrap()
}

#[tokio::test]
async fn sync_indexes_one_interval_and_reruns_keep_the_count() {
    let env = lake().await;
    let day_one = hire(&env.ctx, "2026-11-20", 3000).await;
    let day_two = hire(&env.ctx, "2026-11-21", 1000).await;

    let first = hr_sync::run(&env.ctx, sync_event("2026-11-20", false))
        .await
        .unwrap();
    assert_eq!(
        (first.selected, first.indexed, first.failed),
        (day_one, day_one, 0)
    );
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, day_one);
    for _ in 0..3 {
        let again = hr_sync::run(&env.ctx, sync_event("2026-11-20", false))
            .await
            .unwrap();
        assert_eq!(again.indexed, day_one);
    }
    assert_eq!(
        doc_count(&env.ctx, EMPLOYEES.name).await,
        day_one,
        "re-runs must overwrite, not duplicate"
    );

    hr_sync::run(&env.ctx, sync_event("2026-11-21", false))
        .await
        .unwrap();
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, day_one + day_two);
    let full = hr_sync::run(&env.ctx, sync_event("2026-11-21", true))
        .await
        .unwrap();
    assert_eq!(full.selected, day_one + day_two);
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, day_one + day_two);

    // A document carries the row as it is in PostgreSQL, accents included.
    let row = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one("SELECT employee_id, full_name, email FROM hr.employees WHERE full_name ~ '[áéíóúñ]' LIMIT 1", &[])
        .await
        .unwrap();
    let id: i64 = row.get(0);
    let index = env.ctx.index_name(EMPLOYEES.name);
    let doc = es_get(&env.ctx, &format!("/{index}/_doc/{id}")).await;
    assert_eq!(doc["_source"]["full_name"], json!(row.get::<_, String>(1)));
    assert_eq!(doc["_source"]["email"], json!(row.get::<_, String>(2)));
    assert_eq!(doc["_source"]["hire_date"], json!("2026-11-20"));
}

#[tokio::test]
async fn item_failures_are_reported_with_reasons_not_dropped() {
    let env = lake().await;
    let es = env.ctx.elasticsearch().unwrap();
    let index = env.ctx.index_name("bulk_failures");
    ensure_index(es, &index, &EMPLOYEES).await.unwrap();
    let config = BulkConfig {
        max_docs: 3,
        ..BulkConfig::default()
    };
    let mut sink = BulkSink::new(es, &index, config);
    for i in 0..5 {
        sink.push(
            i.to_string(),
            &json!({"employee_id": i, "full_name": "Ana"}),
        )
        .await
        .unwrap();
    }
    // `salary` must be a number: the server refuses this document.
    sink.push("bad".into(), &json!({"employee_id": 99, "salary": "lots"}))
        .await
        .unwrap();
    let report = sink.finish().await.unwrap();
    assert_eq!(report.indexed, 5);
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.failures[0].id, "bad");
    assert!(report.failures[0].status >= 400 && report.failures[0].status < 500);
    assert!(!report.failures[0].reason.is_empty());
    assert_eq!(report.requests, 2);
}

#[tokio::test]
async fn export_writes_quoted_utf8_csv_with_identical_bytes_on_rerun() {
    let env = lake().await;
    hire(&env.ctx, "2026-11-20", 500).await;
    // A name with a comma, quotes and characters outside Latin-1.
    env.ctx
        .postgres()
        .await
        .unwrap()
        .execute(
            "INSERT INTO hr.employees (logical_date, batch_seed, batch_index, full_name, job_title, department, email, salary, hire_date)
             VALUES ('2026-11-20', 999, 0, 'O''Brien, \"Pepe\" Núñez 🚀', 'Jefe, \"de\" sección', 'I+D', 'pepe@empresa.es', 1234.5, '2026-11-20')",
            &[],
        )
        .await
        .unwrap();
    hire(&env.ctx, "2026-11-22", 300).await; // after the export date: not exported

    let event = || ExportEvent {
        logical_date: "2026-11-21".parse().unwrap(),
        execution: None,
    };
    // As the deployed function: its S3 calls are checked against its role (ETL_IAM_CONTRACT).
    let exporter = env.ctx.for_function("hr-export");
    let first = hr_export::run(&exporter, event()).await.unwrap();
    assert_eq!(first.key, "exports/employees/dt=2026-11-21/employees.csv");
    let body = download(&env.ctx, &first.key).await;
    assert_eq!(body.len() as u64, first.bytes);
    let text = String::from_utf8(body.clone()).expect("the export must be UTF-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("employee_id,full_name,job_title,department,email,salary,hire_date")
    );
    assert!(
        text.contains(r#","O'Brien, ""Pepe"" Núñez 🚀","Jefe, ""de"" sección",I+D,pepe@empresa.es,1234.50,2026-11-20"#),
        "RFC 4180 quoting expected:\n{}",
        text.lines().find(|l| l.contains("Pepe")).unwrap_or("(missing)")
    );
    assert_eq!(lines.count() as u64, first.rows);
    let expected_rows: i64 = env
        .ctx
        .postgres()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM hr.employees WHERE hire_date <= '2026-11-21'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(first.rows, expected_rows as u64);

    for _ in 0..2 {
        let again = hr_export::run(&exporter, event()).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(
            download(&env.ctx, &again.key).await,
            body,
            "a re-run changed the CSV bytes"
        );
    }
}

#[tokio::test]
async fn large_exports_stream_through_a_multipart_upload() {
    let env = lake().await;
    hire(&env.ctx, "2026-11-20", 150_000).await;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        hr_export::run(
            &env.ctx.for_function("hr-export"),
            ExportEvent {
                logical_date: "2026-11-20".parse().unwrap(),
                execution: None,
            },
        ),
    )
    .await
    .expect("export hung")
    .unwrap();
    assert!(out.parts >= 2, "{out:?}");
    assert!(out.bytes > etl_core::s3::PART_SIZE as u64);
    let body = download(&env.ctx, &out.key).await;
    assert_eq!(body.len() as u64, out.bytes);
    assert_eq!(
        body.iter().filter(|&&b| b == b'\n').count() as u64,
        out.rows + 1
    );
}
