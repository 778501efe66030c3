//! What `etl run` and `etl bench` show (issue #17 item 2, issue #18 item 6): plain progress
//! lines when stderr is not a terminal, a live view when it is, the logs in a file whose path
//! it prints, and a summary per execution whose row counts, artifacts and cost come from the
//! run. A Map's lines count its items and the rows its Tasks wrote; its Tasks get none of
//! their own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::{cli, download, TestEnv, LAKE};

const DATE: &str = "2026-11-25";
/// The Tasks outside the Map: a line when each starts and ends.
const TOP_LEVEL_TASKS: &[&str] = &["ApplySchema", "PlanDates"];
/// The Tasks in the Map's items: the Map's lines say how they go.
const IN_THE_MAP: &[&str] = &["Hire", "Export", "Sync", "RecordSuccess"];
const TASKS: &[(&str, &str)] = &[
    ("ApplySchema", "hr-schema"),
    ("PlanDates", "plan-dates"),
    ("Hire", "hr-hire"),
    ("Export", "hr-export"),
    ("Sync", "hr-sync"),
    ("RecordSuccess", "record-run"),
];

fn run_args() -> Vec<&'static str> {
    vec![
        "run",
        "hr",
        "--date",
        DATE,
        "--input",
        r#"{"params": {"count": 150, "seed": 3}}"#,
        "--time-scale",
        "0",
    ]
}

/// `etl <args>` in the test's database, bucket and index prefix, logging at info to `logs`.
fn etl(env: &TestEnv, args: &[&str], logs: &Path) -> Command {
    let mut command = cli::command(args);
    command
        .env("DATABASE_URL", &env.db.url)
        .env("ETL_BUCKET", &env.ctx.config.bucket)
        .env("ETL_INDEX_PREFIX", &env.ctx.config.index_prefix)
        .env("ETL_LOG_DIR", logs)
        .env("RUST_LOG", "info");
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || cli::output(&mut command))
        .await
        .unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "etl-progress-{name}-{}",
        integration_tests::unique_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The columns of the summary line of `state`.
fn stage_line<'a>(stderr: &'a str, state: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() == 7 && cols[0] == state)
        .unwrap_or_else(|| panic!("no summary line for {state} in\n{stderr}"))
}

fn ledger_count(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |n| n.to_string())
}

#[tokio::test]
async fn a_plain_run_prints_state_lines_a_summary_from_the_ledger_and_its_log_file() {
    let env = TestEnv::with_lake(LAKE).await;
    let logs = scratch_dir("plain");
    let out = output(etl(&env, &run_args(), &logs)).await;
    let stdout = cli::stdout_of_success(&run_args(), out.clone());
    let stderr = cli::text(&out.stderr);

    // stdout stays the execution's output, JSON.
    let result: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"));
    assert_eq!(result["dates_run"], serde_json::json!(1), "{result}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes off a terminal:\n{stderr}"
    );

    assert_state_lines(&stderr);

    // The log file: named first, JSON lines, the engine's state entries among them.
    let path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("logs: "))
        .and_then(|rest| rest.split(" (-v").next())
        .unwrap_or_else(|| panic!("no log file named:\n{stderr}"));
    assert!(Path::new(path).starts_with(&logs), "{path}");
    let log = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "state entered"),
        "{log}"
    );
    assert!(
        !stderr.contains("state entered"),
        "info logs stay in the file:\n{stderr}"
    );

    // The summary: its execution, each Task with its function and the ledger's counts.
    let header = stderr
        .lines()
        .find(|l| l.starts_with("hr hr-") && l.contains(" SUCCEEDED in "))
        .unwrap_or_else(|| panic!("no summary header:\n{stderr}"));
    let execution = header.split_whitespace().nth(1).unwrap();
    let client = env.ctx.postgres().await.unwrap();
    for (state, function) in TASKS {
        let cols = stage_line(&stderr, state);
        assert_eq!(cols[1], *function, "{cols:?}");
        let Some((pipeline, stage)) = function.split_once('-') else {
            continue;
        };
        let rows = client
            .query(
                "SELECT rows_in, rows_out, rows_rejected FROM etl.runs
                  WHERE execution = $1 AND pipeline = $2 AND stage = $3",
                &[&execution, &pipeline, &stage],
            )
            .await
            .unwrap();
        if let [row] = rows.as_slice() {
            let ledger = [row.get(0), row.get(1), row.get(2)].map(ledger_count);
            assert_eq!(cols[4..7], ledger, "{state}: {cols:?}");
        }
    }
    let hire = stage_line(&stderr, "Hire");
    assert!(hire[5].parse::<u64>().is_ok_and(|n| n > 0), "{hire:?}");

    // Its artifacts: the export's key, which is in S3.
    let export = format!("exports/employees/dt={DATE}/employees.csv");
    let line = format!("s3://{}/{export}", env.ctx.config.bucket);
    assert!(stderr.contains(&line), "no {line} in\n{stderr}");
    assert!(!download(&env.ctx, &export).await.is_empty());
    assert!(
        stderr.contains(&format!("viewer: http://127.0.0.1:8765/runs/{execution}")),
        "{stderr}"
    );

    // Its cost: measured Lambda time, a request per Task entry, S3 requests counted.
    let cost = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("cost: Lambda "))
        .unwrap_or_else(|| panic!("no cost line:\n{stderr}"));
    assert!(cost.contains(" 6 requests;"), "{cost}");
    assert!(cost.contains("PUT/COPY/POST/LIST"), "{cost}");
    assert!(stderr.contains("AWS public prices, us-east-1, as of"));
    assert!(stderr.contains("run summary"), "{stderr}");
    assert_stored_map_events(&env, execution).await;
    std::fs::remove_dir_all(&logs).ok();
}

/// A line when each top-level Task starts and ends; for the Map, its start with its items
/// and its end with its items done and the rows its first Task wrote, per second; none for
/// the Tasks inside it.
fn assert_state_lines(stderr: &str) {
    for state in TOP_LEVEL_TASKS {
        assert!(
            stderr.contains(&format!("hr: {state} started\n")),
            "no start line for {state}:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("hr: {state} done in ")),
            "no end line for {state}:\n{stderr}"
        );
    }
    for state in IN_THE_MAP {
        assert!(
            !stderr.contains(&format!("hr: {state} started"))
                && !stderr.contains(&format!("hr: {state} done in")),
            "{state} runs in the Map's items: no lines of its own\n{stderr}"
        );
    }
    assert!(
        stderr.contains("hr: EachDate started, 1 item\n"),
        "no start line for the Map:\n{stderr}"
    );
    let map_end = stderr
        .lines()
        .find(|l| l.starts_with("hr: EachDate done in "))
        .unwrap_or_else(|| panic!("no end line for the Map:\n{stderr}"));
    // `…, 1/1 items, Hire 150 rows (1,234 rows/s)`
    let hired = map_end
        .split_once(", 1/1 items, Hire ")
        .and_then(|(_, rest)| rest.split_once(" rows ("))
        .and_then(|(rows, rate)| Some((rows.parse::<u64>().ok()?, rate)))
        .unwrap_or_else(|| panic!("the Map's end has no items and rows: {map_end}"));
    assert!(hired.0 > 0 && hired.0 <= 150, "{map_end}");
    let rate = hired.1.strip_suffix(" rows/s)").map(|r| r.replace(',', ""));
    assert!(
        rate.and_then(|r| r.parse::<u64>().ok())
            .is_some_and(|r| r > 0),
        "no rows per second: {map_end}"
    );
}

/// The run's stored history (`etl history --json`): the Map's start with its length, and
/// its one iteration's start and end, in GetExecutionHistory's shapes.
async fn assert_stored_map_events(env: &TestEnv, execution: &str) {
    let logs = scratch_dir("history");
    let args = ["history", execution, "--json"];
    let out = output(etl(env, &args, &logs)).await;
    let history: serde_json::Value = serde_json::from_str(&cli::stdout_of_success(&args, out))
        .unwrap_or_else(|e| panic!("etl history --json is not JSON: {e}"));
    let events = history["events"].as_array().expect("events");
    let of_type =
        |t: &str| -> Vec<&serde_json::Value> { events.iter().filter(|e| e["type"] == t).collect() };
    // EachDate's (RetryFailedDates runs only when a date failed).
    let started = of_type("MapStateStarted");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        started[0]["mapStateStartedEventDetails"],
        serde_json::json!({"length": 1}),
        "{started:?}"
    );
    let iteration = serde_json::json!({"name": "EachDate", "index": 0});
    for (t, key) in [
        ("MapIterationStarted", "mapIterationStartedEventDetails"),
        ("MapIterationSucceeded", "mapIterationSucceededEventDetails"),
    ] {
        assert!(
            of_type(t).iter().any(|e| e[key] == iteration),
            "no {t} for EachDate's item 0 in {events:?}"
        );
    }
    std::fs::remove_dir_all(&logs).ok();
}

#[tokio::test]
async fn verbose_keeps_the_logs_on_stderr() {
    let env = TestEnv::with_lake(LAKE).await;
    let logs = scratch_dir("verbose");
    let mut args = vec!["-v"];
    args.extend(run_args());
    let out = output(etl(&env, &args, &logs)).await;
    cli::stdout_of_success(&args, out.clone());
    let stderr = cli::text(&out.stderr);
    assert!(stderr.contains("state entered"), "{stderr}");
    assert!(!stderr.contains("logs: "), "{stderr}");
    assert_eq!(std::fs::read_dir(&logs).unwrap().count(), 0);
    std::fs::remove_dir_all(&logs).ok();
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), the live view draws with
/// escape codes and the summary still closes the run.
#[tokio::test]
async fn on_a_terminal_the_view_is_live_and_ends_with_the_summary() {
    let env = TestEnv::with_lake(LAKE).await;
    let logs = scratch_dir("tty");
    let shell_quoted: Vec<String> = run_args()
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let inner = format!(
        "{} {} 2>&1",
        cli::binary().display(),
        shell_quoted.join(" ")
    );
    let template = etl(&env, &[], &logs);
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .current_dir(integration_tests::repo_root());
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let out = output(command).await;
    let printed = cli::text(&out.stdout);
    assert!(
        out.status.success(),
        "script/etl failed: {}\n{printed}",
        out.status
    );
    assert!(printed.contains("\u{1b}["), "no escape codes:\n{printed}");
    // The Map's end, printed above the spinners.
    assert!(printed.contains(", 1/1 items, Hire "), "{printed}");
    assert!(printed.contains("run summary"), "{printed}");
    assert!(printed.contains("cost: Lambda "), "{printed}");
    std::fs::remove_dir_all(&logs).ok();
}

/// `etl bench` off a terminal: a line as each timed phase starts and one with its figures as
/// it ends, each labelled with its run of `--runs N` (each run a process of its own) and its
/// workload, then a line per finished run.
#[tokio::test]
async fn a_piped_benchmark_prints_a_line_per_phase_start_and_end() {
    let env = TestEnv::new(&[etl_core::Service::Postgres]).await;
    let logs = scratch_dir("bench");
    let args = [
        "bench",
        "hr",
        "--rows",
        "2000",
        "--runs",
        "2",
        "--no-sync",
        "--ceiling-client",
        "in-process",
    ];
    let out = output(etl(&env, &args, &logs)).await;
    cli::stdout_of_success(&args, out.clone());
    let stderr = cli::text(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes off a terminal:\n{stderr}"
    );
    let hire = etl_cli::bench::HIRE;
    for run in ["1/2", "2/2"] {
        let label = format!("bench run {run} hr-hire: {hire}");
        assert!(
            stderr.contains(&format!("{label} started\n")),
            "no start line for {label}:\n{stderr}"
        );
        let end = stderr
            .lines()
            .find(|l| l.starts_with(&format!("{label} done: ")))
            .unwrap_or_else(|| panic!("no end line for {label}:\n{stderr}"));
        assert!(
            end.contains(" rows in ") && end.ends_with(" rows/s)"),
            "{end}"
        );
        let ceiling = format!(
            "bench run {run} hr-hire: {} done: ",
            etl_cli::bench::HIRE_CEILING
        );
        assert!(stderr.contains(&ceiling), "no {ceiling} in\n{stderr}");
        assert!(
            stderr.contains(&format!("bench run {run} done in ")),
            "the parent's line for run {run}:\n{stderr}"
        );
    }
    std::fs::remove_dir_all(&logs).ok();
}
