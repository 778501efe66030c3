//! The clickstream simulator against osmem: funnel invariants on the indexed documents,
//! stable counts on re-runs, strict input, and the state machine.

use std::collections::HashMap;

use elasticsearch::http::Method;
use etl_cli::functions::call_in_process;
use etl_cli::runner::run_machine;
use etl_core::search::index::{call, CLICKSTREAM};
use etl_core::stages::clickstream_simulate::{self, SimulateEvent};
use etl_core::{ErrorKind, Service};
use integration_tests::{doc_count, in_process, scalar, template, TestEnv};
use serde_json::{json, Value};

async fn lake() -> TestEnv {
    TestEnv::with_lake(&[Service::Postgres, Service::Elasticsearch])
        .await
        .with_schema()
        .await
}

fn event(value: Value) -> SimulateEvent {
    serde_json::from_value(value).unwrap()
}

async fn search_type(env: &TestEnv, event_type: &str) -> Vec<Value> {
    let index = env.ctx.index_name(CLICKSTREAM.name);
    let body = json!({"size": 10000, "query": {"term": {"event_type": event_type}}}).to_string();
    let response = call(
        env.ctx.elasticsearch().unwrap(),
        Method::Post,
        &format!("/{index}/_search"),
        Some(&body),
    )
    .await
    .unwrap();
    let doc: Value = response.json().await.unwrap();
    doc["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"].clone())
        .collect()
}

#[tokio::test]
async fn indexed_events_keep_the_funnel_and_reruns_keep_the_count() {
    let env = lake().await;
    let input =
        json!({"logical_date": "2026-11-25", "params": {"hour": 9, "sessions": 400, "seed": 1}});
    let first = clickstream_simulate::run(&env.ctx, event(input.clone()))
        .await
        .unwrap();
    assert_eq!((first.indexed, first.failed), (first.events, 0));
    assert_eq!(doc_count(&env.ctx, CLICKSTREAM.name).await, first.events);
    for _ in 0..2 {
        let again = clickstream_simulate::run(&env.ctx, event(input.clone()))
            .await
            .unwrap();
        assert_eq!(again.events, first.events);
    }
    assert_eq!(
        doc_count(&env.ctx, CLICKSTREAM.name).await,
        first.events,
        "re-runs must not add documents"
    );

    let carts = search_type(&env, "add_to_cart").await;
    let purchases = search_type(&env, "purchase").await;
    assert_eq!(carts.len() as u64, first.by_type["add_to_cart"]);
    assert!(!purchases.is_empty() && purchases.len() < carts.len());
    let carts_by_session: HashMap<&str, &Value> = carts
        .iter()
        .map(|c| (c["session_id"].as_str().unwrap(), c))
        .collect();
    for purchase in &purchases {
        let session = purchase["session_id"].as_str().unwrap();
        let cart = carts_by_session
            .get(session)
            .unwrap_or_else(|| panic!("purchase without add_to_cart in session {session}"));
        assert!(cart["timestamp"].as_str() <= purchase["timestamp"].as_str());
        assert_eq!(purchase["order_total"], cart["cart_value"]);
        let ts = purchase["timestamp"].as_str().unwrap();
        assert!(ts.starts_with("2026-11-25T09:"), "outside the hour: {ts}");
    }
}

#[tokio::test]
async fn bad_events_are_invalid_input() {
    let env = lake().await;
    for bad in [
        json!({"logical_date": "2026-11-25", "params": {"hour": 24}}),
        json!({"logical_date": "2026-11-25", "params": {"sessions": 0}}),
        json!({"logical_date": "2026-11-25", "params": {"sessions": 50_000_000u64}}),
        // Beyond the measured maximum (docs/pipelines.md § Maximums).
        json!({"logical_date": "2026-11-25", "params": {"sessions": clickstream_simulate::MAX_SESSIONS + 1}}),
        json!({"logical_date": "2026-11-25", "params": {"sesions": 10}}),
        json!({"logical_date": "25/11/2026"}),
        json!({"params": {"sessions": 10}}),
    ] {
        let err = call_in_process(&env.ctx, "clickstream-simulate", bad.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad} gave {err}");
    }
}

#[tokio::test]
async fn the_state_machine_simulates_and_records_the_run() {
    let env = lake().await;
    let template = template();
    let run = |input: Value| in_process(Some("2026-11-25"), Some(input));
    let report = run_machine(
        &env.ctx,
        &template,
        "clickstream",
        &run(json!({"params": {"hour": 3, "sessions": 100}})),
    )
    .await
    .unwrap();
    let output = report.output.unwrap();
    assert_eq!(output["indexed"], output["events"], "{output}");
    // Without params the defaults apply (a whole day, 1000 sessions).
    let report = run_machine(&env.ctx, &template, "clickstream", &run(json!({})))
        .await
        .unwrap();
    assert!(report.output.unwrap()["events"].as_u64().unwrap() > 1000);
    assert_eq!(
        scalar(&env.ctx, "SELECT count(*) FROM etl.runs WHERE pipeline = 'clickstream' AND stage = 'pipeline' AND status = 'succeeded'").await,
        2
    );
}

#[tokio::test]
async fn funnel_statistics_come_from_aggregations_and_match_the_simulation() {
    let env = lake().await;
    let mut carts = 0;
    let mut purchases = 0;
    let mut sessions = 0;
    for hour in [8, 20] {
        let out = clickstream_simulate::run(
            &env.ctx,
            event(json!({"logical_date": "2026-11-24", "params": {"hour": hour, "sessions": 300, "seed": 2}})),
        )
        .await
        .unwrap();
        carts += out.by_type["add_to_cart"];
        purchases += out.by_type["purchase"];
        sessions += u64::from(out.sessions);
    }
    // Another day must not leak into the statistics.
    clickstream_simulate::run(
        &env.ctx,
        event(json!({"logical_date": "2026-11-25", "params": {"sessions": 50}})),
    )
    .await
    .unwrap();

    let stats = etl_core::clickstream::stats::funnel(&env.ctx, "2026-11-24".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stats.sessions, sessions);
    assert_eq!(
        stats.sessions_with_cart, carts,
        "one add_to_cart per carting session"
    );
    assert_eq!(stats.sessions_with_purchase, purchases);
    assert!((stats.view_to_cart - carts as f64 / sessions as f64).abs() < 1e-9);
    let purchase_docs = search_type(&env, "purchase").await;
    let expected_revenue: f64 = purchase_docs
        .iter()
        .filter(|d| d["timestamp"].as_str().unwrap().starts_with("2026-11-24"))
        .map(|d| d["order_total"].as_f64().unwrap())
        .sum();
    assert!(
        (stats.revenue - expected_revenue).abs() < 0.01,
        "{} vs {expected_revenue}",
        stats.revenue
    );
    assert!(!stats.top_categories.is_empty());
    assert!(stats
        .top_categories
        .windows(2)
        .all(|w| w[0].revenue >= w[1].revenue));
}

#[tokio::test]
async fn follow_streams_live_events_at_the_requested_rate() {
    let env = lake().await;
    let totals = etl_cli::follow::follow(
        &env.ctx,
        150,
        Some(std::time::Duration::from_secs(2)),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(totals.seconds >= 2, "{totals:?}");
    assert!(totals.events >= 150 * totals.seconds, "{totals:?}");
    assert_eq!((totals.indexed, totals.failed), (totals.events, 0));
    let index = env.ctx.index_name(CLICKSTREAM.name);
    etl_core::search::refresh(env.ctx.elasticsearch().unwrap(), &index)
        .await
        .unwrap();
    assert_eq!(doc_count(&env.ctx, CLICKSTREAM.name).await, totals.indexed);
}
