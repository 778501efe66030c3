//! The sync split across invocations (issue #18 item 5): a limit per invocation, a keyset
//! cursor, and the `hr` machine looping its Sync task until no employee remains; and gzip
//! request bodies, signed as sent (SigV4 over the compressed bytes) and accepted by the
//! cluster.

use std::collections::HashMap;

use etl_cli::lambda_limits::LambdaLimits;
use etl_cli::runner::{run_machine, RunSettings};
use etl_cli::template::FunctionSizing;
use etl_core::search::index::EMPLOYEES;
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::stages::hr_sync::{self, SyncEvent};
use integration_tests::sigv4_proxy::{Expected, SigV4Proxy, ACCESS_KEY, SECRET_KEY};
use integration_tests::{context, doc_count, es_get, in_process, scalar, template, TestEnv, LAKE};
use serde_json::{json, Value};

const DATE: &str = "2026-11-20";

fn sync_event(value: Value) -> SyncEvent {
    serde_json::from_value(value).unwrap()
}

/// What an `hr` run whose Sync loops should show: more employees than `more_rows_than`,
/// `invocations(rows)` Sync entries and as many in the published totals, each employee
/// indexed once.
struct SyncLoop {
    more_rows_than: u64,
    invocations: fn(u64) -> u64,
    why: &'static str,
}

impl SyncLoop {
    async fn check(&self, env: &TestEnv, settings: &RunSettings) {
        let report = run_machine(&env.ctx, &template(), "hr", settings)
            .await
            .unwrap();
        let output = report.output.clone().unwrap();
        let rows = scalar(&env.ctx, "SELECT count(*) FROM hr.employees").await as u64;
        assert!(rows > self.more_rows_than, "{rows} rows loaded");
        let invocations = (self.invocations)(rows);
        let syncs = report.tasks_entered().filter(|s| *s == "Sync").count() as u64;
        assert_eq!(syncs, invocations, "{}", self.why);
        assert_eq!(
            output["results"][0]["published"]["sync"],
            json!({"indexed": rows, "failed": 0, "invocations": invocations}),
            "{output}"
        );
        assert_each_employee_indexed_once(env, rows).await;
    }
}

/// Every employee of the index, sent exactly once: as many documents as rows, and each
/// document at version 1 (a second send of the same `_id` would make it 2).
async fn assert_each_employee_indexed_once(env: &TestEnv, rows: u64) {
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, rows);
    let index = env.ctx.index_name(EMPLOYEES.name);
    let found = es_get(
        &env.ctx,
        &format!("/{index}/_search?size=10000&version=true&_source=false"),
    )
    .await;
    let hits = found["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len() as u64, rows);
    let resent: Vec<&Value> = hits.iter().filter(|h| h["_version"] != json!(1)).collect();
    assert!(resent.is_empty(), "sent more than once: {resent:?}");
}

#[tokio::test]
async fn the_machine_syncs_a_day_in_invocations_of_at_most_the_limit_each_doc_once() {
    let env = TestEnv::with_lake(LAKE).await;
    let settings = RunSettings {
        overrides: HashMap::from([("MaxConcurrency".to_string(), "1".to_string())]),
        ..in_process(
            Some(DATE),
            Some(json!({"params": {"count": 3500, "seed": 3, "sync_max_docs": 1000}})),
        )
    };
    let expected = SyncLoop {
        more_rows_than: 3000,
        invocations: |rows| rows.div_ceil(1000),
        why: "one Sync per 1,000 employees",
    };
    expected.check(&env, &settings).await;
}

/// The cloud failure: a cluster slower than `max_docs` assumes, so one invocation cannot
/// index its share before its `Timeout`. The stage stops on time instead (the deadline
/// comes from hr-sync's `Timeout` here, 60 s, as Lambda's would), and the loop continues
/// from the last id sent. A margin as long as the `Timeout` makes every invocation stop
/// after its first row, so the count of invocations says the deadline was seen (with the
/// template's 900 s, none would stop) without depending on the machine's speed.
#[tokio::test]
async fn an_invocation_out_of_time_stops_and_the_machine_continues_each_doc_once() {
    let env = TestEnv::with_lake(LAKE).await;
    let sizing = FunctionSizing {
        timeout_seconds: 60,
        ..template().sizing("hr-sync").unwrap()
    };
    let settings = RunSettings {
        overrides: HashMap::from([("MaxConcurrency".to_string(), "1".to_string())]),
        lambda_limits: LambdaLimits {
            sizing: HashMap::from([("hr-sync".to_string(), sizing)]),
            ..LambdaLimits::default()
        },
        ..in_process(
            Some(DATE),
            Some(json!({"params": {"count": 6, "seed": 3, "sync_stop_margin_ms": 60_000}})),
        )
    };
    let expected = SyncLoop {
        more_rows_than: 1,
        invocations: |rows| rows,
        why: "one Sync per employee, each stopped on time",
    };
    expected.check(&env, &settings).await;
}

#[tokio::test]
async fn each_invocation_continues_after_the_last_id_and_says_when_none_remain() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let hire: HireEvent =
        serde_json::from_value(json!({"logical_date": DATE, "count": 2000})).unwrap();
    let loaded = hr_hire::run(&env.ctx, hire).await.unwrap().loaded;
    let first_id = scalar(&env.ctx, "SELECT min(employee_id) FROM hr.employees").await;

    let first = hr_sync::run(
        &env.ctx,
        sync_event(json!({"logical_date": DATE, "max_docs": 1500})),
    )
    .await
    .unwrap();
    assert_eq!((first.selected, first.indexed), (1500, 1500));
    assert!(first.progress.more, "{:?}", first.progress);
    let cursor = first.progress.after_employee_id.unwrap();
    assert!(cursor >= first_id + 1499, "{cursor}");

    // The loop's way: the previous progress handed back.
    let second = hr_sync::run(
        &env.ctx,
        sync_event(json!({
            "logical_date": DATE, "max_docs": 1500, "sync": first.progress
        })),
    )
    .await
    .unwrap();
    assert_eq!(second.selected, loaded - 1500);
    assert!(!second.progress.more);
    assert_eq!(
        (second.progress.invocations, second.progress.indexed),
        (2, loaded)
    );
    assert_each_employee_indexed_once(&env, loaded).await;

    // Past the last id there is nothing, and nothing more.
    let past = hr_sync::run(
        &env.ctx,
        sync_event(
            json!({"logical_date": DATE, "after_employee_id": second.progress.after_employee_id}),
        ),
    )
    .await
    .unwrap();
    assert_eq!((past.selected, past.progress.more), (0, false));

    let refused = hr_sync::run(
        &env.ctx,
        sync_event(json!({"logical_date": DATE, "max_docs": 0})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.kind(),
        etl_core::ErrorKind::InvalidInput,
        "{refused}"
    );
}

/// Gzip bodies through the proxy that checks SigV4 as OpenSearch Service does: the
/// signature covers the compressed bytes (the proxy hashes what it received), and osmem
/// (which accepts `Content-Encoding: gzip`) indexes every document; several requests in
/// flight, each small.
#[tokio::test]
async fn gzip_bodies_are_signed_as_sent_and_indexed() {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let hire: HireEvent =
        serde_json::from_value(json!({"logical_date": DATE, "count": 1200})).unwrap();
    let loaded = hr_hire::run(&env.ctx, hire).await.unwrap().loaded;
    let upstream = env.ctx.config.elasticsearch.url.to_string();
    let proxy = SigV4Proxy::start(&upstream, Expected::opensearch("us-east-1")).await;
    let source = env
        .env
        .clone()
        .with("ELASTICSEARCH_URL", &proxy.url)
        .with("ELASTICSEARCH_AUTH", "sigv4")
        .with("ELASTICSEARCH_BULK_GZIP", "on")
        .with("ELASTICSEARCH_BULK_BYTES", "65536")
        .with("ELASTICSEARCH_BULK_CONCURRENCY", "3")
        .with("AWS_REGION", "us-east-1")
        .with("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .with("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let ctx = context(&source).await;
    let output = hr_sync::run(
        &ctx.for_function("hr-sync"),
        sync_event(json!({"logical_date": DATE})),
    )
    .await
    .unwrap();
    assert_eq!((output.indexed, output.failed), (loaded, 0));
    assert!(output.requests > 2, "{} requests", output.requests);
    let seen = proxy.seen();
    let bulk = seen.iter().filter(|s| s.path == "/_bulk").count() as u64;
    assert_eq!(bulk, output.requests);
    for s in &seen {
        assert_eq!(s.verdict, Ok(()), "{} {}", s.method, s.path);
    }
    assert_each_employee_indexed_once(&env, loaded).await;
}
