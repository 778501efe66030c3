//! The viewer (`etl ui`, issue #17) in a real browser: Debian's headless Chromium, driven
//! over WebDriver (tests/support/webdriver.rs). Every pipeline runs into this test's own
//! database, bucket and indices; `etl ui` serves them as a process of its own. Screenshots
//! land in `$CARGO_TARGET_DIR/screenshots/` (docs/images/ copies the grid's and a run's).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Stdio};

use elasticsearch::http::Method;
use etl_cli::lambda_limits::InjectedFault;
use etl_cli::runner::{run_machine, RunReport, RunSettings};
use etl_core::search::index::call;
use etl_core::Context;
use integration_tests::webdriver::{Browser, Driver, TAB};
use integration_tests::{cli, free_port, in_process, template, TestEnv, LAKE};
use serde_json::{json, Map, Value};

const DAY: &str = "2026-10-05";
const FAILED_DAY: &str = "2026-10-06";

/// `etl ui` on a free port, against this test's database, bucket and indices; killed on drop.
struct Viewer {
    child: Child,
    url: String,
}

impl Viewer {
    fn start(env: &TestEnv) -> Self {
        let port = free_port();
        let child = cli::command(&["ui", "--port", &port.to_string()])
            .env("DATABASE_URL", &env.db.url)
            .env("ETL_BUCKET", &env.ctx.config.bucket)
            .env("ETL_INDEX_PREFIX", &env.ctx.config.index_prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etl ui: {e}"));
        let mut viewer = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        cli::wait_until_listening(&mut viewer.child, port, "etl ui");
        viewer
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fatal(state: &str) -> InjectedFault {
    InjectedFault {
        state: state.into(),
        nth: 1,
        error: "Fatal".into(),
    }
}

fn on(day: &str, params: Value) -> RunSettings {
    in_process(Some(day), Some(json!({ "params": params })))
}

/// One run of each machine for DAY, and an hr run for FAILED_DAY that fails in SyncAgain (its
/// Sync and SyncAgain fail with an error no Retry matches, as in the redrive tests).
async fn run_every_pipeline(ctx: &std::sync::Arc<Context>) -> HashMap<&'static str, RunReport> {
    let template = template();
    let hr_params = json!({"count": 60, "seed": 3});
    let mut failing = on(FAILED_DAY, hr_params.clone());
    failing.faults = vec![fatal("Sync"), fatal("SyncAgain")];
    let runs = [
        ("hr-setup", "hr-setup", on(DAY, json!({}))),
        ("hr", "hr", on(DAY, hr_params)),
        ("hr-failed", "hr", failing),
        (
            "clickstream",
            "clickstream",
            on(DAY, json!({"hour": 9, "sessions": 60, "seed": 1})),
        ),
        (
            "marketing",
            "marketing",
            on(
                DAY,
                json!({"rows": 25_000, "partition_rows": 10_000, "partitions_per_task": 2, "seed": 3}),
            ),
        ),
    ];
    let mut reports = HashMap::new();
    for (label, machine, settings) in runs {
        let report = run_machine(ctx, &template, machine, &settings)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            report.succeeded(),
            label != "hr-failed",
            "{label}: {:?}",
            report.output
        );
        reports.insert(label, report);
    }
    reports
}

/// Every state of a States object, nested ones (Parallel branches, Map processors) included.
fn count_states(states: &Map<String, Value>) -> usize {
    states
        .values()
        .map(|state| {
            let mut inner: Vec<&Value> =
                state["Branches"].as_array().into_iter().flatten().collect();
            inner.extend(
                ["ItemProcessor", "Iterator"]
                    .iter()
                    .filter_map(|k| state.get(*k)),
            );
            1 + inner
                .iter()
                .filter_map(|g| g["States"].as_object())
                .map(count_states)
                .sum::<usize>()
        })
        .sum()
}

/// The page fits its window: nothing wider than the viewport (wide tables scroll inside).
async fn assert_fits(browser: &Browser, page: &str, width: u32) {
    let sizes = browser
        .script("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await;
    let (scroll, inner) = (
        sizes[0].as_u64().unwrap_or(0),
        sizes[1].as_u64().unwrap_or(0),
    );
    assert!(
        inner > 0 && inner <= u64::from(width),
        "{page}: innerWidth {inner} at {width}"
    );
    assert!(
        scroll <= inner,
        "{page} at {width} px: scrollWidth {scroll} > innerWidth {inner}"
    );
}

async fn assert_visible(browser: &Browser, page: &str, css: &str) {
    let shown = browser
        .script(&format!(
            "var e = document.querySelector({}); if (!e) return false; var r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0;",
            json!(css)
        ))
        .await;
    assert_eq!(shown, json!(true), "{page}: {css} is not visible");
}

/// (pipeline, date) → status as the ledger and the executions table say: the newest
/// `pipeline` row of a date (else its newest stage row); hr-setup, which writes no ledger
/// rows, from its executions.
async fn expected_cells(ctx: &Context) -> BTreeMap<(String, String), String> {
    let client = ctx.postgres().await.unwrap();
    let mut cells = BTreeMap::new();
    let ledger = client
        .query(
            "SELECT pipeline, logical_date::text, status FROM etl.runs r
              WHERE run_id = (SELECT run_id FROM etl.runs o
                               WHERE o.pipeline = r.pipeline AND o.logical_date = r.logical_date
                               ORDER BY (o.stage = 'pipeline') DESC, o.run_id DESC LIMIT 1)",
            &[],
        )
        .await
        .unwrap();
    for row in ledger {
        cells.insert((row.get(0), row.get(1)), row.get(2));
    }
    let setups = client
        .query(
            "SELECT machine, input->>'logical_date', lower(status) FROM etl.executions WHERE machine = 'hr-setup'",
            &[],
        )
        .await
        .unwrap();
    for row in setups {
        cells.insert((row.get(0), row.get(1)), row.get(2));
    }
    cells
}

/// The grid's cells with a run, as the browser shows them.
async fn shown_cells(browser: &Browser) -> BTreeMap<(String, String), String> {
    let cells = browser
        .script(
            "return Array.from(document.querySelectorAll('#runs-grid td[data-pipeline]'))
                 .filter(td => td.dataset.status !== 'none')
                 .map(td => [td.dataset.pipeline, td.dataset.date, td.dataset.status,
                             (td.querySelector('[aria-label]') || {}).getAttribute ? td.querySelector('[aria-label]').getAttribute('aria-label') : '']);",
        )
        .await;
    let mut shown = BTreeMap::new();
    for cell in cells.as_array().unwrap_or(&Vec::new()) {
        let field = |i: usize| cell[i].as_str().unwrap_or_default().to_string();
        // The status is in words too, not only in the colour.
        assert!(
            field(3).contains(&field(2)),
            "cell label {:?} lacks its status {:?}",
            field(3),
            field(2)
        );
        shown.insert((field(0), field(1)), field(2));
    }
    shown
}

/// The grid shows exactly the ledger's runs, fits at both widths, and Tab reaches its first
/// cell.
async fn check_grid(browser: &Browser, viewer: &Viewer, ctx: &Context) {
    browser.goto(&format!("{}/", viewer.url)).await;
    assert_eq!(shown_cells(browser).await, expected_cells(ctx).await);
    let rows = browser
        .script("return Array.from(document.querySelectorAll('#runs-grid tbody th[scope=row]')).map(th => th.textContent);")
        .await;
    assert_eq!(
        rows,
        json!(["hr-setup", "hr", "clickstream", "marketing"]),
        "every pipeline a row"
    );
    let filtered = format!(
        "{}/?pipeline=hr&from={FAILED_DAY}&to={FAILED_DAY}",
        viewer.url
    );
    browser.goto(&filtered).await;
    let only: Vec<(String, String)> = shown_cells(browser).await.into_keys().collect();
    assert_eq!(
        only,
        [("hr".to_string(), FAILED_DAY.to_string())],
        "the filters narrow the grid"
    );

    browser.goto(&format!("{}/", viewer.url)).await;
    let first_cell = browser.find("#runs-grid a.cell").await;
    let first_href = browser.attribute(&first_cell, "href").await;
    let mut reached = false;
    for _ in 0..20 {
        browser.press(TAB).await;
        let active = browser.active().await;
        if browser
            .attribute(&active, "class")
            .await
            .is_some_and(|c| c.contains("cell"))
        {
            assert_eq!(
                browser.attribute(&active, "href").await,
                first_href,
                "the first cell first"
            );
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached a cell of the grid");
    for width in [1280, 390] {
        browser.set_window(width, 900).await;
        assert_fits(browser, "the grid", width).await;
        assert_visible(browser, "the grid", "#runs-grid").await;
        browser.screenshot(&format!("ui-grid-{width}")).await;
    }
    browser.set_window(1280, 900).await;
}

/// The failed run's page names the failing state and error; its graph has a node per state.
async fn check_failed_run(browser: &Browser, viewer: &Viewer, failed: &RunReport) {
    browser
        .goto(&format!("{}/runs/{}", viewer.url, failed.execution_name))
        .await;
    let state = browser.text(&browser.find("#failed-state").await).await;
    let error = browser.text(&browser.find("#failed-error").await).await;
    let failure = failed.output.as_ref().unwrap_err();
    assert_eq!(
        (state.as_str(), error.as_str()),
        ("SyncAgain", failure.error.as_str())
    );
    let definition: Value =
        serde_json::from_str(&template().machine("hr").unwrap().definition().unwrap()).unwrap();
    let states = count_states(definition["States"].as_object().unwrap());
    assert_eq!(
        browser.find_all("svg.graph g.state").await.len(),
        states,
        "one node per state"
    );
    let failed_node = browser
        .find("svg.graph g.state[data-state=SyncAgain]")
        .await;
    assert_eq!(
        browser
            .attribute(&failed_node, "data-status")
            .await
            .as_deref(),
        Some("failed")
    );
    let events = browser.find_all("#events tbody tr").await.len();
    assert!(
        events > 10,
        "the timeline has the execution's events ({events})"
    );
    for width in [1280, 390] {
        browser.set_window(width, 900).await;
        assert_fits(browser, "the run page", width).await;
        assert_visible(browser, "the run page", "svg.graph").await;
        assert_visible(browser, "the run page", "#failure").await;
        browser.screenshot(&format!("ui-run-{width}")).await;
    }
    browser.set_window(1280, 900).await;
}

async fn search(ctx: &Context, index: &str, body: Value) -> Value {
    let es = ctx.elasticsearch().unwrap();
    let path = format!("/{}/_search", ctx.index_name(index));
    call(es, Method::Post, &path, Some(&body.to_string()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `data-metric` → the figure the dashboard shows.
async fn shown_metrics(browser: &Browser) -> HashMap<String, String> {
    let metrics = browser
        .script("return Array.from(document.querySelectorAll('[data-metric]')).map(e => [e.dataset.metric, e.textContent]);")
        .await;
    metrics
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m[0].as_str().unwrap_or_default().to_string(),
                m[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The dashboards' numbers are Elasticsearch's aggregations, asked here directly.
async fn check_dashboards(browser: &Browser, viewer: &Viewer, ctx: &Context) {
    browser
        .goto(&format!("{}/dashboards/clickstream", viewer.url))
        .await;
    let shown = shown_metrics(browser).await;
    for step in ["page_view", "add_to_cart", "purchase"] {
        let found = search(
            ctx,
            "ecommerce_clickstream*",
            json!({"size": 0,
            "query": {"term": {"event_type": step}},
            "aggs": {"sessions": {"cardinality": {"field": "session_id"}}}}),
        )
        .await;
        let sessions = found["aggregations"]["sessions"]["value"].as_u64().unwrap();
        assert!(sessions > 0, "{step}: no sessions in {found}");
        assert_eq!(
            shown.get(&format!("funnel.{step}")),
            Some(&sessions.to_string()),
            "{step}"
        );
    }
    for width in [1280, 390] {
        browser.set_window(width, 900).await;
        assert_fits(browser, "the clickstream dashboard", width).await;
        assert_visible(browser, "the clickstream dashboard", "#funnel svg").await;
        browser
            .screenshot(&format!("ui-dashboard-clickstream-{width}"))
            .await;
    }
    browser.set_window(1280, 900).await;

    browser.goto(&format!("{}/dashboards/hr", viewer.url)).await;
    browser.screenshot("ui-dashboard-hr-1280").await;
    let shown = shown_metrics(browser).await;
    // The top 12, as the saved visualisation `hr-by-department` asks.
    let found = search(
        ctx,
        "empleados_search*",
        json!({"size": 0,
        "aggs": {"d": {"terms": {"field": "department", "size": 12}}}}),
    )
    .await;
    let buckets = found["aggregations"]["d"]["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty(), "no departments in {found}");
    for bucket in buckets {
        let name = bucket["key"].as_str().unwrap();
        assert_eq!(
            shown.get(&format!("department.{name}")),
            Some(&bucket["doc_count"].to_string()),
            "{name}: the page shows {shown:?}"
        );
    }
}

/// The marketing report, as the run page links it, renders: its charts are SVG and nothing
/// is wider than the window.
async fn check_report(browser: &Browser, viewer: &Viewer, marketing: &RunReport) {
    browser
        .goto(&format!("{}/runs/{}", viewer.url, marketing.execution_name))
        .await;
    let links = browser
        .script("return Array.from(document.querySelectorAll('#artifact-list a')).map(a => a.textContent);")
        .await;
    let keys: BTreeSet<String> = links
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    let report = keys
        .iter()
        .find(|k| k.ends_with("report.html"))
        .unwrap_or_else(|| panic!("no report among {keys:?}"));
    assert!(
        keys.iter().any(|k| k.ends_with(".parquet")),
        "the master dataset is linked: {keys:?}"
    );
    // The master dataset is readable in the page: its Parquet schema and first rows.
    let parquet = keys.iter().find(|k| k.ends_with(".parquet")).unwrap();
    browser
        .goto(&format!("{}/artifacts?key={parquet}", viewer.url))
        .await;
    let columns = browser.find_all("#parquet-schema tbody tr").await.len();
    assert!(
        columns > 3,
        "the master dataset's schema has {columns} columns"
    );
    let csv = keys
        .iter()
        .find(|k| k.ends_with(".csv") && k.starts_with("curated/"))
        .unwrap();
    browser
        .goto(&format!("{}/artifacts?key={csv}", viewer.url))
        .await;
    let rows = browser.find_all("table.preview tr").await.len();
    assert!(rows > 1, "the master CSV shows its first rows ({rows})");
    browser
        .goto(&format!("{}/artifacts/raw?key={report}", viewer.url))
        .await;
    let charts = browser.find_all("svg").await.len();
    assert!(charts > 0, "the report has no SVG chart");
    assert_fits(browser, "the marketing report", 1280).await;
    browser.screenshot("marketing-report-1280").await;
}

#[tokio::test]
async fn the_viewer_shows_the_ledgers_runs_failures_graphs_and_dashboards_in_chromium() {
    let driver = Driver::start();
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let reports = run_every_pipeline(&env.ctx).await;
    let viewer = Viewer::start(&env);
    let browser = driver.browser(1280, 900).await;

    check_grid(&browser, &viewer, &env.ctx).await;
    check_failed_run(&browser, &viewer, &reports["hr-failed"]).await;
    check_dashboards(&browser, &viewer, &env.ctx).await;
    check_report(&browser, &viewer, &reports["marketing"]).await;

    // `etl history` prints the same stored history as GetExecutionHistory JSON.
    let name = &reports["hr-failed"].execution_name;
    let args = ["history", name.as_str(), "--json"];
    let out = cli::output(cli::command(&args).env("DATABASE_URL", &env.db.url));
    let history: Value = serde_json::from_str(&cli::stdout_of_success(&args, out)).unwrap();
    let events = history["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "ExecutionStarted");
    assert_eq!(events[events.len() - 1]["type"], "ExecutionFailed");
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e["id"] == json!(i + 1) && e["previousEventId"] == json!(i)));
}

#[test]
fn the_viewer_cannot_be_told_to_listen_beyond_loopback() {
    for args in [["ui", "--bind", "0.0.0.0"], ["ui", "--host", "0.0.0.0"]] {
        let out = cli::output(&mut cli::command(&args));
        assert!(!out.status.success(), "etl {args:?} was accepted");
        assert!(
            cli::text(&out.stderr).contains("unexpected argument"),
            "{}",
            cli::text(&out.stderr)
        );
    }
}
