//! The `etl` command line: the local front door to the pipelines.

pub mod bench;
pub mod follow;
pub mod functions;
pub mod runner;
pub mod template;

use std::path::PathBuf;

/// The repository root: the nearest ancestor of the current directory holding
/// `template.yaml`, so `etl` works from any sub-directory.
pub fn project_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join("template.yaml").is_file())
        .map(PathBuf::from)
}
