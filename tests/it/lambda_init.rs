//! `etl bench lambda-init`'s measurement: a real packaged function reaches the Runtime API,
//! and a binary that dies, hangs up or asks for the wrong thing is a typed error, not a figure.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use etl_cli::lambda_init::{measure, InitBenchError};
use integration_tests::target_dir;

/// A throw-away lambda directory holding one `bootstrap` script, removed on drop.
struct FakeFunction {
    dir: PathBuf,
}

impl FakeFunction {
    fn new(name: &str, script: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lambda-init-{name}-{}", std::process::id()));
        let function_dir = dir.join(name);
        std::fs::create_dir_all(&function_dir).unwrap();
        let bootstrap = function_dir.join("bootstrap");
        std::fs::write(&bootstrap, script).unwrap();
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }
}

impl Drop for FakeFunction {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Opens the Runtime API address it is given and sends `request`, then waits, with bash
/// builtins only: the process gets a clean environment, as in Lambda.
fn asking(request: &str) -> String {
    format!(
        "#!/bin/bash\n\
         exec 3<>/dev/tcp/${{AWS_LAMBDA_RUNTIME_API%:*}}/${{AWS_LAMBDA_RUNTIME_API#*:}}\n\
         printf '{request}\\r\\nHost: x\\r\\n\\r\\n' >&3\n\
         read -t 5 <&3\n"
    )
}

#[test]
fn a_missing_binary_says_how_to_build_it() {
    let err = measure(Path::new("/nonexistent"), &["hr-schema"], 1, &[]).unwrap_err();
    assert!(matches!(err, InitBenchError::MissingBinary(_)), "{err}");
    assert!(err.to_string().contains("cargo lambda build"), "{err}");
}

#[test]
fn a_process_that_exits_during_init_is_reported_with_its_stderr() {
    let fake = FakeFunction::new("dies", "#!/bin/bash\necho 'no config' >&2\nexit 3\n");
    let err = measure(&fake.dir, &["dies"], 1, &[]).unwrap_err();
    match err {
        InitBenchError::ExitedDuringInit { stderr, status, .. } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "no config");
        }
        other => panic!("expected ExitedDuringInit, got {other}"),
    }
}

#[test]
fn a_first_request_that_is_not_next_invocation_is_rejected() {
    let fake = FakeFunction::new(
        "wrong",
        &asking("POST /2018-06-01/runtime/init/error HTTP/1.1"),
    );
    let err = measure(&fake.dir, &["wrong"], 1, &[]).unwrap_err();
    assert!(
        matches!(&err, InitBenchError::UnexpectedRequest { request, .. } if request.starts_with("POST")),
        "{err}"
    );
}

#[test]
fn a_runtime_asking_for_work_ends_init_and_gets_settings_only() {
    // The script only asks when it sees the settings it was given and nothing of this test's
    // environment (cargo sets CARGO_MANIFEST_DIR for every test process).
    let script = asking("GET /2018-06-01/runtime/invocation/next HTTP/1.1").replace(
        "exec 3<>",
        "[ \"$ETL_BUCKET\" = lake ] && [ -z \"$CARGO_MANIFEST_DIR\" ] && [ \"$AWS_LAMBDA_FUNCTION_NAME\" = asks ] || exit 9\nexec 3<>",
    );
    let fake = FakeFunction::new("asks", &script);
    let settings = [("ETL_BUCKET".to_string(), "lake".to_string())];
    let figures = measure(&fake.dir, &["asks"], 3, &settings).unwrap();
    let figure = &figures[0];
    assert_eq!(figure.function, "asks");
    assert_eq!(figure.runs, 3);
    assert!(figure.init_ms_median > 0.0 && figure.init_ms_median <= figure.init_ms_max);
    assert!(figure.binary_mib > 0.0);
}

/// The real thing: a function binary packaged by `cargo lambda build` (scripts/test runs it
/// before the tests) starts, builds its clients and asks the Runtime API for work.
#[test]
fn a_packaged_function_reaches_the_runtime_api() {
    let lambda_dir = target_dir().join("lambda");
    assert!(
        lambda_dir.join("record-run/bootstrap").is_file(),
        "no packaged record-run under {}: run `cargo lambda build --bin record-run` (scripts/test does)",
        lambda_dir.display()
    );
    let settings = [("AWS_REGION".to_string(), "us-east-1".to_string())];
    let figures = measure(&lambda_dir, &["record-run"], 2, &settings).unwrap();
    let figure = &figures[0];
    assert_eq!(figure.runs, 2);
    assert!(figure.init_ms_median > 0.0, "{figure:?}");
    let rss = figure.rss_mib_at_init.expect("the process's peak RSS");
    assert!(rss > 1.0, "{figure:?}");
}
