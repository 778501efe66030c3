//! `etl bench marketing` and `etl bench hr` with `--runs N`: the real `etl` binary against the
//! local services (`scripts/services up`), at a small size. Each run happens in a process of
//! its own, and the summary covers every run.

use integration_tests::cli::{command, output, stdout_of_success};
use integration_tests::repo_root;
use serde_json::Value;

fn etl_ok(args: &[&str]) -> String {
    assert!(
        repo_root().join(".services/env").is_file(),
        ".services/env is missing: start the local services with `scripts/services up`"
    );
    stdout_of_success(args, output(&mut command(args)))
}

#[test]
fn several_runs_each_run_in_a_fresh_process_and_are_summarised() {
    // The stages record themselves in the run ledger, which the schema creates.
    etl_ok(&["invoke", "hr-schema", "--event", "events/hr-schema.json"]);
    let out: Value = serde_json::from_str(&etl_ok(&[
        "bench",
        "marketing",
        "--rows",
        "3000",
        "--runs",
        "2",
    ]))
    .expect("the benchmark prints JSON on stdout");

    let runs = out["runs"].as_array().expect("a list of runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        let phases = run.as_array().expect("a run is a list of phases");
        let stages: Vec<&str> = phases[..3]
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default())
            .collect();
        assert!(
            stages[0].starts_with("generate")
                && stages[1].starts_with("unify")
                && stages[2].starts_with("report"),
            "{stages:?}"
        );
        for stage in &phases[..3] {
            assert_eq!(stage["rows"], 3000, "{stage}");
            let rss = stage["peak_rss_mib"]
                .as_f64()
                .expect("a peak RSS per stage");
            assert!(rss > 1.0 && rss < 4096.0, "{stage}");
        }
    }
    let summary = out["summary"].as_array().expect("a summary");
    assert_eq!(summary.len(), runs[0].as_array().map_or(0, Vec::len));
    for phase in summary {
        assert_eq!(phase["runs"], 2, "{phase}");
        let (min, median, max) = (
            phase["seconds_min"].as_f64().unwrap_or(f64::NAN),
            phase["seconds_median"].as_f64().unwrap_or(f64::NAN),
            phase["seconds_max"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(min > 0.0 && min <= median && median <= max, "{phase}");
    }
}

#[test]
fn the_hire_benchmark_reports_ours_the_copy_ceiling_and_their_ratio() {
    let json = std::env::temp_dir().join(format!("etl-bench-hr-{}.json", std::process::id()));
    let path = json.to_string_lossy().into_owned();
    let out: Value = serde_json::from_str(&etl_ok(&[
        "bench",
        "hr",
        "--rows",
        "5000",
        "--runs",
        "2",
        "--no-sync",
        "--ceiling-client",
        "in-process",
        "--json",
        &path,
    ]))
    .expect("the benchmark prints JSON on stdout");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("--json writes the report"))
            .expect("the report is JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(out, written, "stdout and --json carry the same report");

    let workloads = out["workloads"].as_array().expect("workload lines");
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["workload"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["hr-hire", "hr-hire-again"], "no sync asked for");
    let hire = &workloads[0];
    assert_eq!(hire["ours"]["runs"], 2, "{hire}");
    assert_eq!(hire["ceiling"]["runs"], 2, "{hire}");
    assert_eq!(
        hire["ours"]["rows"], hire["ceiling"]["rows"],
        "the ceiling loads the rows the stage loaded: {hire}"
    );
    assert!(hire["ours"]["rows"].as_u64().unwrap_or(0) > 4900, "{hire}");
    assert_eq!(
        hire["ceiling"]["note"],
        "COPY FROM STDIN (FORMAT csv), in process"
    );
    let (min, median, max) = (
        hire["ratio"]["min"].as_f64().unwrap_or(f64::NAN),
        hire["ratio"]["median"].as_f64().unwrap_or(f64::NAN),
        hire["ratio"]["max"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(min > 0.0 && min <= median && median <= max, "{hire}");
    assert!(workloads[1]["ceiling"].is_null(), "{}", workloads[1]);
}
