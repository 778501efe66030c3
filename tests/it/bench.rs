//! `etl bench marketing --runs N`: the real `etl` binary against the local services
//! (`scripts/services up`), at a small size. Each run happens in a process of its own, and
//! the summary covers every run.

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
