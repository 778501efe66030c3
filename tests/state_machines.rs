//! The deployed ASL definitions, run locally with the stages in-process.

use std::path::Path;

use asl::Event;
use etl_cli::runner::{load_machine, run_machine, FunctionHost, RunReport, RunSettings};
use etl_cli::template::Template;
use etl_core::{Config, Context, Service};
use integration_tests::{repo_root, TestEnv};
use serde_json::{json, Value};
use std::sync::Arc;

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).unwrap()
}

fn settings(date: &str, extra: Option<Value>) -> RunSettings {
    RunSettings {
        date: Some(date.parse().unwrap()),
        extra_input: extra,
        host: FunctionHost::InProcess,
        time_scale: 0.0,
        execution_name: None,
        overrides: Default::default(),
    }
}

fn retries(report: &RunReport) -> usize {
    report
        .history
        .iter()
        .filter(|e| matches!(e, Event::RetryScheduled { .. }))
        .count()
}

#[test]
fn every_definition_file_is_deployed_and_loads_with_its_substitutions() {
    let template = template();
    let dir = repo_root().join("infra/statemachines");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".asl.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let name = file.trim_end_matches(".asl.json");
        let spec = template
            .machine(name)
            .unwrap_or_else(|e| panic!("{file} is not deployed by template.yaml: {e}"));
        assert_eq!(spec.definition_path, Path::new(&dir).join(&file));
        let definition = spec.definition().unwrap();
        assert!(
            !definition.contains("${"),
            "{file} keeps an unresolved substitution"
        );
        load_machine(spec, &Default::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[tokio::test]
async fn hr_setup_runs_end_to_end_and_twice_changes_nothing() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let template = template();
    let first = run_machine(
        &env.ctx,
        &template,
        "hr-setup",
        &settings("2026-11-25", None),
    )
    .await
    .unwrap();
    assert_eq!(
        first.output.unwrap(),
        json!({"logical_date": "2026-11-25", "schema": {"schema_version": 2, "applied": [1, 2]}})
    );
    let second = run_machine(
        &env.ctx,
        &template,
        "hr-setup",
        &settings("2026-11-25", None),
    )
    .await
    .unwrap();
    assert_eq!(
        second.output.unwrap(),
        json!({"logical_date": "2026-11-25", "schema": {"schema_version": 2, "applied": []}})
    );
}

#[tokio::test]
async fn invalid_input_is_caught_without_retrying() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let report = run_machine(
        &env.ctx,
        &template(),
        "hr-setup",
        &settings("2026-11-25", Some(json!({"logical_date": "2026-11-31"}))),
    )
    .await
    .unwrap();
    let failure = report.output.as_ref().unwrap_err();
    assert_eq!(failure.error, "InvalidInput");
    assert!(failure.cause.contains("2026-11-31"), "{failure:?}");
    assert_eq!(retries(&report), 0, "InvalidInput must not be retried");
    assert!(report
        .history
        .iter()
        .any(|e| matches!(e, Event::Caught { next, .. } if next == "RejectInput")));
}

#[tokio::test]
async fn an_unreachable_database_is_retried_then_fails_as_retryable() {
    let env = integration_tests::env_source()
        .with("DATABASE_URL", "postgres://etl@127.0.0.1:1/etl")
        .with("DATABASE_CONNECT_TIMEOUT_SECS", "2");
    let ctx = Arc::new(
        Context::new(Config::from_source(&env).unwrap())
            .await
            .unwrap(),
    );
    let report = run_machine(&ctx, &template(), "hr-setup", &settings("2026-11-25", None))
        .await
        .unwrap();
    let failure = report.output.as_ref().unwrap_err();
    assert_eq!(failure.error, "Retryable", "{failure:?}");
    assert!(failure.cause.contains("PostgreSQL"), "{failure:?}");
    assert_eq!(
        retries(&report),
        3,
        "the definition retries Retryable 3 times"
    );
    assert!(report
        .history
        .iter()
        .any(|e| matches!(e, Event::Caught { next, .. } if next == "SetupFailed")));
}

#[test]
fn every_template_function_is_registered_and_has_a_sample_event() {
    let template = template();
    let mut in_template: Vec<&str> = template.functions.values().map(String::as_str).collect();
    in_template.sort_unstable();
    let mut registered = etl_cli::functions::function_names();
    registered.sort_unstable();
    assert_eq!(
        in_template, registered,
        "template.yaml and the CLI's function registry disagree"
    );
    let scripts_test = std::fs::read_to_string(repo_root().join("scripts/test")).unwrap();
    for function in registered {
        assert!(
            repo_root()
                .join(format!("events/{function}.json"))
                .is_file(),
            "no events/{function}.json"
        );
        assert!(
            repo_root()
                .join(format!("functions/{function}/Cargo.toml"))
                .is_file(),
            "no Lambda crate functions/{function}"
        );
        assert!(
            scripts_test.contains(function),
            "scripts/test does not package {function}"
        );
    }
}
