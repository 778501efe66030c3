//! The marketing data lake against moto and Postgres: KPIs against an independent
//! computation, quarantine, byte-identical re-runs, the empty day, strict input, and the
//! state machine end to end with its ledger rows.

use std::collections::BTreeMap;

use etl_cli::functions::call_in_process;
use etl_cli::runner::{run_machine, RunSettings};
use etl_core::{s3, ErrorKind, LogicalDate};
use integration_tests::marketing::{generate_marketing_day, marketing_lake};
use integration_tests::{download, in_process, scalar, template, TestEnv};
use marketing::dataset::{header, raw_key};
use marketing::kpi::KpiReport;
use marketing::stages::plan::PlanEvent;
use marketing::stages::report::{self, report_keys, ReportEvent};
use marketing::stages::unify::{self, master_keys, QuarantineKind, UnifyEvent};
use serde_json::{json, Value};

const DATE: &str = "2026-11-25";

fn date() -> LogicalDate {
    DATE.parse().unwrap()
}

fn local_dir(env: &TestEnv) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("marketing-test-{}", env.ctx.config.bucket))
}

async fn unify_and_report(env: &TestEnv) -> (unify::UnifyOutput, report::ReportOutput) {
    // As the functions: their AWS calls checked against template.yaml (tests/support/iam.rs).
    let unified = unify::run(
        &env.ctx.for_function("marketing-unify"),
        UnifyEvent {
            logical_date: date(),
            execution: None,
            local_dir: Some(local_dir(env)),
        },
    )
    .await
    .unwrap();
    let reported = report::run(
        &env.ctx.for_function("marketing-report"),
        ReportEvent {
            logical_date: date(),
            execution: None,
        },
    )
    .await
    .unwrap();
    (unified, reported)
}

async fn put_raw(env: &TestEnv, partition: u32, body: String) {
    s3::put(
        &env.ctx,
        &env.ctx.config.bucket,
        &raw_key(date(), partition),
        "text/csv",
        body.into(),
    )
    .await
    .unwrap();
}

async fn generate(env: &TestEnv, rows: u64, partition_rows: u32) {
    let event = PlanEvent {
        logical_date: date(),
        rows: Some(rows),
        partition_rows: Some(partition_rows),
        partitions_per_task: Some(2),
        seed: Some(5),
        execution: None,
    };
    generate_marketing_day(env, event).await;
}

/// One hand-made row: platform, audience, impressions, ctr (bp), cpc (cents), view
/// (hundredths), conversions, order value (cents).
type HandRow = (&'static str, &'static str, i64, i64, i64, i64, i64, i64);

const HAND_ROWS: [HandRow; 6] = [
    (
        "Facebook ADS",
        "Mujer 18-25",
        10_000,
        200,
        10,
        150,
        5,
        1_000,
    ),
    ("Facebook ADS", "Hombre +46", 55_555, 123, 37, 999, 0, 0),
    ("Facebook ADS", "Mujer 18-25", 1_000, 500, 50, 10, 1, 250),
    (
        "Google ADS",
        "Hombre +46",
        1_000_000,
        100,
        1,
        1_000,
        400,
        200,
    ),
    ("Google ADS", "Mujer 26-35", 20_000, 333, 25, 420, 66, 1_234),
    ("Google ADS", "Mujer 18-25", 7_777, 450, 12, 505, 3, 2_000),
];

fn hand_csv() -> String {
    let mut csv = header() + "\n";
    for (i, (platform, audience, impressions, ctr_bp, cpc_cents, view, conversions, order)) in
        HAND_ROWS.iter().enumerate()
    {
        let clicks = impressions * ctr_bp / 10_000;
        let cost = clicks * cpc_cents;
        let revenue = conversions * order;
        csv += &format!(
            "00000000-0000-4000-8000-00000000000{i},2026-11-0{},{platform},{audience},{impressions},{:.4},{clicks},{:.2},{:.2},{:.2},{conversions},{:.2}\n",
            i + 1,
            *ctr_bp as f64 / 10_000.0,
            *cpc_cents as f64 / 100.0,
            cost as f64 / 100.0,
            *view as f64 / 100.0,
            revenue as f64 / 100.0,
        );
    }
    csv
}

fn close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

#[tokio::test]
async fn kpis_match_an_independent_computation_on_a_hand_made_dataset() {
    let env = marketing_lake().await;
    put_raw(&env, 0, hand_csv()).await;
    let (unified, reported) = unify_and_report(&env).await;
    assert_eq!(
        (unified.rows_in, unified.rows_out, unified.rows_quarantined),
        (6, 6, 0)
    );
    assert_eq!(reported.rows, 6);

    // The stored kpis.json, checked against sums done here in plain integers.
    let kpis: Value =
        serde_json::from_slice(&download(&env.ctx, &report_keys(date())[0]).await).unwrap();
    let mut by_platform: BTreeMap<&str, [i64; 5]> = BTreeMap::new();
    let mut views: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (platform, audience, impressions, ctr_bp, cpc, view, conversions, order) in HAND_ROWS {
        let clicks = impressions * ctr_bp / 10_000;
        let sums = by_platform.entry(platform).or_default();
        sums[0] += impressions;
        sums[1] += clicks;
        sums[2] += clicks * cpc;
        sums[3] += conversions;
        sums[4] += conversions * order;
        let v = views.entry(audience).or_default();
        v.0 += view;
        v.1 += 1;
    }
    let platforms = kpis["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for (entry, (name, [impressions, clicks, cost_cents, conversions, revenue_cents])) in
        platforms.iter().zip(&by_platform)
    {
        assert_eq!(entry["platform"], *name);
        assert_eq!(entry["totals"]["impressions"], *impressions);
        assert_eq!(entry["totals"]["clicks"], *clicks);
        assert_eq!(entry["totals"]["conversions"], *conversions);
        let cost = *cost_cents as f64 / 100.0;
        let revenue = *revenue_cents as f64 / 100.0;
        close(&entry["cost"], cost, "cost");
        close(&entry["cpc"], cost / *clicks as f64, "cpc");
        close(
            &entry["ctr_percent"],
            *clicks as f64 / *impressions as f64 * 100.0,
            "ctr",
        );
        close(&entry["roi"], (revenue - cost) / cost, "roi");
    }
    let by_audience = kpis["view_time_by_audience"].as_array().unwrap();
    assert_eq!(by_audience.len(), views.len());
    let means: Vec<f64> = by_audience
        .iter()
        .map(|v| v["mean_view_time"].as_f64().unwrap())
        .collect();
    assert!(
        means.windows(2).all(|w| w[0] >= w[1]),
        "sorted descending: {means:?}"
    );
    for entry in by_audience {
        let (sum, n) = views[entry["audience"].as_str().unwrap()];
        close(
            &entry["mean_view_time"],
            sum as f64 / 100.0 / n as f64,
            "view time",
        );
    }
    assert_eq!(
        kpis["view_time_by_platform_audience"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let html = String::from_utf8(download(&env.ctx, &report_keys(date())[2]).await).unwrap();
    assert!(html.matches("<svg").count() >= 2, "two inline charts");
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );
    let md = String::from_utf8(download(&env.ctx, &report_keys(date())[1]).await).unwrap();
    assert!(md.contains("| Google ADS |") && md.contains("## Mean video view time per audience"));
    assert!(unified.local_parquet.is_file() && unified.local_csv.is_file());
}

#[tokio::test]
async fn a_corrupt_partition_is_quarantined_and_the_report_covers_the_rest() {
    let env = marketing_lake().await;
    generate(&env, 3_000, 1_000).await;
    let good_one = String::from_utf8(download(&env.ctx, &raw_key(date(), 1)).await).unwrap();
    put_raw(&env, 1, "this,is,not\nour,data,at all\n".to_string()).await;
    let good_two = String::from_utf8(download(&env.ctx, &raw_key(date(), 2)).await).unwrap();
    let mut with_bad_row = good_two.clone();
    with_bad_row += "11111111-1111-4111-8111-111111111111,2026-11-20,Google ADS,Mujer 18-25,5000,0.0200,100,0.10,99.00,1.00,1,5.00\n";
    put_raw(&env, 2, with_bad_row).await;

    let (unified, reported) = unify_and_report(&env).await;
    assert_eq!(unified.partitions, 3);
    assert_eq!(unified.partitions_corrupt, 1);
    assert_eq!(
        (unified.rows_in, unified.rows_out, unified.rows_quarantined),
        (2_001, 2_000, 1)
    );
    assert_eq!(reported.rows, 2_000);
    let reasons: Vec<(u32, QuarantineKind)> = unified
        .quarantined
        .iter()
        .map(|q| (q.partition, q.kind))
        .collect();
    assert_eq!(
        reasons,
        vec![(1, QuarantineKind::Corrupt), (2, QuarantineKind::Rows)]
    );
    for q in &unified.quarantined {
        let reason: Value =
            serde_json::from_slice(&download(&env.ctx, &q.reason_key).await).unwrap();
        assert_eq!(reason["kind"], serde_json::to_value(q.kind).unwrap());
        assert!(!q.reason.is_empty());
        assert!(!download(&env.ctx, &q.key).await.is_empty());
    }
    assert!(unified.quarantined[0].reason.contains("header mismatch"));
    assert!(unified.quarantined[1].reason.contains("costo_total"));
    let rows_csv =
        String::from_utf8(download(&env.ctx, &unified.quarantined[1].key).await).unwrap();
    assert!(rows_csv.contains("11111111-1111-4111-8111-111111111111"));
    // The master CSV holds exactly the good rows.
    let master = String::from_utf8(download(&env.ctx, &master_keys(date()).1).await).unwrap();
    assert_eq!(master.lines().count(), 2_001);

    // Repaired and re-run: the day's quarantine is replaced, so the old files are deleted
    // (DeleteObject, which the permissions boundary must allow on that prefix).
    put_raw(&env, 1, good_one).await;
    put_raw(&env, 2, good_two).await;
    let (rerun, _) = unify_and_report(&env).await;
    assert_eq!((rerun.partitions_corrupt, rerun.rows_out), (0, 3_000));
    assert!(rerun.quarantined.is_empty(), "{:?}", rerun.quarantined);
    for q in &unified.quarantined {
        for key in [&q.key, &q.reason_key] {
            let head = env
                .ctx
                .s3()
                .head_object()
                .bucket(&env.ctx.config.bucket)
                .key(key.as_str())
                .send()
                .await;
            assert!(
                head.is_err(),
                "{key} outlived the re-run that replaced the quarantine"
            );
        }
    }
}

#[tokio::test]
async fn an_empty_day_gives_an_empty_but_valid_report() {
    let env = marketing_lake().await;
    let (unified, reported) = unify_and_report(&env).await;
    assert_eq!((unified.partitions, unified.rows_out), (0, 0));
    assert_eq!(reported.rows, 0);
    let kpis: KpiReport =
        serde_json::from_slice(&download(&env.ctx, &report_keys(date())[0]).await).unwrap();
    assert!(kpis.platforms.is_empty() && kpis.view_time_by_audience.is_empty());
    assert_eq!((kpis.overall.cpc, kpis.overall.roi), (None, None));
    let master = String::from_utf8(download(&env.ctx, &master_keys(date()).1).await).unwrap();
    assert_eq!(master.trim_end(), header());
    let html = String::from_utf8(download(&env.ctx, &report_keys(date())[2]).await).unwrap();
    assert!(html.contains("no data"));
}

#[tokio::test]
async fn bad_events_are_rejected_with_invalid_input() {
    let env = marketing_lake().await;
    let cases = [
        ("marketing-plan", json!({"logical_date": "2026-02-30"})),
        ("marketing-plan", json!({"logical_date": DATE, "rows": 0})),
        (
            "marketing-plan",
            json!({"logical_date": DATE, "rows": 1_000_000_000u64}),
        ),
        (
            "marketing-plan",
            json!({"logical_date": DATE, "partition_rows": 0}),
        ),
        (
            "marketing-plan",
            json!({"logical_date": DATE, "rows": 10, "partitions_per_task": 0}),
        ),
        ("marketing-plan", json!({"logical_date": DATE, "row": 10})),
        (
            "marketing-generate",
            json!({"logical_date": DATE, "seed": 1, "rows": 100, "partition_rows": 10, "partitions": [10]}),
        ),
        (
            "marketing-generate",
            json!({"logical_date": DATE, "seed": 1, "rows": 100, "partition_rows": 10, "partitions": []}),
        ),
        ("marketing-unify", json!({"logical_date": "yesterday"})),
        ("marketing-report", json!({"logical_date": DATE})),
    ];
    for (function, payload) in cases {
        let err = call_in_process(&env.ctx, function, payload.clone())
            .await
            .expect_err(&format!("{function} {payload}"));
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{function} {payload}: {err}"
        );
    }
    // Nothing was written.
    let listed = s3::list(&env.ctx, &env.ctx.config.bucket, "")
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

fn settings(extra: Value) -> RunSettings {
    in_process(Some(DATE), Some(extra))
}

async fn lake_snapshot(env: &TestEnv) -> BTreeMap<String, Vec<u8>> {
    let mut snapshot = BTreeMap::new();
    for entry in s3::list(&env.ctx, &env.ctx.config.bucket, "")
        .await
        .unwrap()
    {
        let body = download(&env.ctx, &entry.key).await;
        snapshot.insert(entry.key, body);
    }
    snapshot
}

#[tokio::test]
async fn the_machine_runs_end_to_end_and_a_rerun_gives_the_same_keys_and_bytes() {
    let env = marketing_lake().await;
    let template = template();
    let params = json!({"params": {"rows": 25_000, "partition_rows": 10_000, "partitions_per_task": 2, "seed": 3}});
    let first = run_machine(&env.ctx, &template, "marketing", &settings(params.clone()))
        .await
        .unwrap();
    let output = first.output.expect("the execution succeeds");
    assert_eq!(output["partitions"], 3);
    assert_eq!(output["unified"]["rows_out"], 25_000);
    assert_eq!(output["report"]["rows"], 25_000);
    let before = lake_snapshot(&env).await;
    assert!(before.keys().any(|k| k.ends_with("part-00002.csv")));
    assert!(before.keys().any(|k| k.ends_with("report.html")));

    let second = run_machine(&env.ctx, &template, "marketing", &settings(params))
        .await
        .unwrap();
    assert!(second.output.is_ok());
    let after = lake_snapshot(&env).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (key, bytes) in &before {
        if after[key] != *bytes {
            let at = bytes
                .iter()
                .zip(&after[key])
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let show = |b: &[u8]| {
                String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())])
                    .to_string()
            };
            panic!(
                "{key} changed on a re-run at byte {at}:\n{}\n---\n{}",
                show(bytes),
                show(&after[key])
            );
        }
    }
    assert_eq!(
        scalar(&env.ctx, "SELECT count(*) FROM etl.runs WHERE pipeline = 'marketing' AND stage = 'pipeline' AND status = 'succeeded'").await,
        2
    );
    assert_eq!(
        scalar(&env.ctx, "SELECT count(*) FROM etl.runs WHERE pipeline = 'marketing' AND stage IN ('unify', 'report') AND status = 'succeeded'").await,
        4
    );
}

#[tokio::test]
async fn a_failing_stage_is_recorded_in_the_ledger_then_fails_the_execution() {
    let env = marketing_lake().await;
    let template = template();
    let report = run_machine(
        &env.ctx,
        &template,
        "marketing",
        &settings(json!({"params": {"rows": 0}})),
    )
    .await
    .unwrap();
    let failure = report.output.expect_err("rows = 0 fails");
    assert_eq!(failure.error, "InvalidInput", "{failure:?}");
    assert_eq!(
        scalar(&env.ctx, "SELECT count(*) FROM etl.runs WHERE pipeline = 'marketing' AND stage = 'pipeline' AND status = 'failed' AND error_name = 'InvalidInput'").await,
        1
    );
}

#[tokio::test]
async fn a_smaller_rerun_prunes_the_partitions_it_no_longer_has() {
    let env = marketing_lake().await;
    generate(&env, 5_000, 1_000).await;
    let task_keys = |n: u32| (0..n).map(|p| raw_key(date(), p)).collect::<Vec<_>>();
    generate(&env, 2_000, 1_000).await;
    let listed: Vec<String> = s3::list(&env.ctx, &env.ctx.config.bucket, "raw/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(listed, task_keys(2));
}

#[tokio::test]
async fn uploads_arrive_whole_in_parts_and_carry_a_checksum() {
    let env = marketing_lake().await;
    let size = 2 * s3::PART_SIZE + 12_345;
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let key = "curated/test/one-big-chunk.bin";
    let mut writer = s3::ObjectWriter::new(
        &env.ctx,
        &env.ctx.config.bucket,
        key,
        "application/octet-stream",
    );
    writer.write(&body[..10]).await.unwrap();
    writer.write(&body[10..]).await.unwrap();
    let (bytes, parts) = writer.finish().await.unwrap();
    assert_eq!((bytes, parts), (size as u64, 3));
    assert!(
        download(&env.ctx, key).await == body,
        "the object is the bytes written, in order"
    );

    // Payloads are not signed, but each still carries a CRC32 checksum that the server keeps.
    let small = "curated/test/small.bin";
    s3::put(
        &env.ctx,
        &env.ctx.config.bucket,
        small,
        "application/octet-stream",
        body[..1000].to_vec().into(),
    )
    .await
    .unwrap();
    let head = env
        .ctx
        .s3()
        .head_object()
        .bucket(&env.ctx.config.bucket)
        .key(small)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(head.checksum_crc32().is_some(), "{head:?}");
    assert_eq!(download(&env.ctx, small).await, &body[..1000]);
}
