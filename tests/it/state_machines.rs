//! The deployed ASL definitions, run locally with the stages in-process.

use std::path::{Path, PathBuf};

use asl::Event;
use etl_cli::runner::{load_machine, run_machine, RunReport};
use etl_core::Service;
use integration_tests::{
    all_migrations, context, env_source, in_process, repo_root, template, TestEnv,
};
use serde_json::json;
use std::sync::Arc;

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
        .filter_map(std::result::Result::ok)
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
    for applied in [json!(all_migrations()), json!([])] {
        let run = run_machine(
            &env.ctx,
            &template,
            "hr-setup",
            &in_process(Some("2026-11-25"), None),
        )
        .await
        .unwrap();
        assert_eq!(
            run.output.unwrap(),
            json!({"logical_date": "2026-11-25", "schema": {"schema_version": all_migrations().len(), "applied": applied}})
        );
    }
}

#[tokio::test]
async fn invalid_input_is_caught_without_retrying() {
    let env = TestEnv::new(&[Service::Postgres]).await;
    let report = run_machine(
        &env.ctx,
        &template(),
        "hr-setup",
        &in_process(
            Some("2026-11-25"),
            Some(json!({"logical_date": "2026-11-31"})),
        ),
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
    let env = env_source()
        .with("DATABASE_URL", "postgres://etl@127.0.0.1:1/etl")
        .with("DATABASE_CONNECT_TIMEOUT_SECS", "2");
    let ctx = Arc::new(context(&env).await);
    let report = run_machine(
        &ctx,
        &template(),
        "hr-setup",
        &in_process(Some("2026-11-25"), None),
    )
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

/// One list of the root Cargo.toml (`members = [...]`), comments left out.
fn manifest_list(manifest: &str, key: &str) -> Vec<String> {
    let manifest: String = manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let Some((_, rest)) = manifest.split_once(&format!("{key} = [")) else {
        return Vec::new();
    };
    let (list, _) = rest
        .split_once(']')
        .unwrap_or_else(|| panic!("Cargo.toml: `{key}` is not closed"));
    list.split(',')
        .map(|e| e.trim().trim_matches('"').to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

/// The workspace members, as directories relative to the root: the root Cargo.toml's
/// `members`, `dir/*` globs expanded to the crates in `dir`, less `exclude`.
fn workspace_members() -> Vec<PathBuf> {
    let root = repo_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let excluded: Vec<PathBuf> = manifest_list(&manifest, "exclude")
        .iter()
        .map(PathBuf::from)
        .collect();
    let mut members = Vec::new();
    for entry in manifest_list(&manifest, "members") {
        let Some(parent) = entry.strip_suffix("/*") else {
            assert!(
                !entry.contains(['*', '?', '[']),
                "Cargo.toml member {entry}: only `dir/*` globs are understood here"
            );
            members.push(PathBuf::from(entry));
            continue;
        };
        for dir in std::fs::read_dir(root.join(parent)).unwrap() {
            let dir = dir.unwrap().path();
            if dir.join("Cargo.toml").is_file() {
                members.push(Path::new(parent).join(dir.file_name().unwrap()));
            }
        }
    }
    members.retain(|m| !excluded.contains(m));
    members.sort();
    members
}

/// A Lambda crate: a binary (`src/main.rs`) on the shared Lambda runtime (`lambda-support`).
fn is_lambda_crate(dir: &Path) -> bool {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    dir.join("src/main.rs").is_file()
        && manifest.lines().any(|l| {
            l.trim_start()
                .strip_prefix("lambda-support")
                .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
        })
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
    let members = workspace_members();
    for function in &registered {
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
            members.contains(&Path::new("functions").join(function)),
            "functions/{function} is not a workspace member (root Cargo.toml `members`)"
        );
    }
    for member in &members {
        if !is_lambda_crate(&repo_root().join(member)) {
            continue;
        }
        let name = member.file_name().unwrap().to_string_lossy();
        assert!(
            in_template.contains(&name.as_ref()),
            "{} is a Lambda crate (src/main.rs on lambda-support) but template.yaml deploys no \
             function with Metadata.BuildProperties.Binary {name}",
            member.display()
        );
    }
}
