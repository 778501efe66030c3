//! The real `etl` binary, run as a process of its own from the repository root (where it
//! finds template.yaml and `.services/env`).
//!
//! Cargo hands `CARGO_BIN_EXE_etl` only to etl-cli's own test targets, and builds the binary
//! only for them; this crate finds it next to its own test binary instead
//! (`target/<profile>/deps/it-<hash>` → `target/<profile>/etl`), which `cargo build
//! --workspace` (scripts/test) leaves there. A missing binary, or one older than a source it
//! was built from, fails the test saying what to run: never a test of yesterday's `etl`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::repo_root;

const BUILD_IT: &str = "run `cargo build --workspace` first (scripts/test does)";

/// `target/<profile>/etl`, checked to exist and to be current.
pub fn binary() -> PathBuf {
    workspace_binary("etl", "functions/etl-cli/src/main.rs")
}

/// `target/<profile>`, where `cargo build --workspace` leaves every binary.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot locate the running test binary");
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not under target/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The workspace binary `name` whose `main.rs` is at `main` (relative to the repository),
/// checked to exist and to be current.
pub fn workspace_binary(name: &str, main: &str) -> PathBuf {
    let binary = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: {BUILD_IT}",
        binary.display()
    );
    assert_current(&binary, Path::new(main));
    binary
}

/// Fails when a source listed in cargo's dep-info for the binary (`<name>.d`, every file it
/// was built from) changed after the binary was written, or when it was built from another
/// checkout sharing the target directory.
fn assert_current(binary: &Path, main: &Path) {
    let Ok(depinfo) = std::fs::read_to_string(binary.with_extension("d")) else {
        return;
    };
    let built = modified(binary).unwrap_or(SystemTime::UNIX_EPOCH);
    // `<target>: <source> <source> …`, spaces inside a path escaped as `\ `.
    let Some((_, sources)) = depinfo.split_once(": ") else {
        return;
    };
    let sources: Vec<PathBuf> = sources
        .replace("\\ ", "\0")
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\0', " ")))
        .collect();
    let here = repo_root().join(main).canonicalize().ok();
    if let Some(built_from) = sources.iter().find(|s| s.ends_with(main)) {
        assert!(
            here.is_none() || built_from.canonicalize().ok() == here,
            "{} was built from {}, another checkout sharing the target directory: {BUILD_IT}",
            binary.display(),
            built_from.display()
        );
    }
    for source in &sources {
        if modified(source).is_some_and(|changed| changed > built) {
            panic!(
                "{} is older than {}: {BUILD_IT}",
                binary.display(),
                source.display()
            );
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `etl <args>` from the repository root, logging warnings only.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        // Its in-process functions' AWS calls checked against template.yaml (issue #14).
        .env(etl_cli::iam::CONTRACT_VAR, crate::iam::template_path());
    command
}

/// Runs it to the end.
pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run etl: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of an `etl` run that must have succeeded; otherwise the test fails with
/// everything the run printed.
pub fn stdout_of_success(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "etl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Waits up to 30 s for `child` (an `etl` server such as `etl ui`) to listen on `port`;
/// fails the test if it exits first or never listens.
pub fn wait_until_listening(child: &mut Child, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
