//! What the tests that run the real `etl` binary share.
// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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
