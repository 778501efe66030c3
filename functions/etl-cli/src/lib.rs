//! The `etl` command line's machinery: the front door to the pipelines, local (`run`) and
//! deployed (`start`, `schedules`). The binary's `cli` and `commands` modules parse and
//! print; everything here is usable (and tested) without them.

pub mod bench;
pub mod call_counter;
pub mod cost;
pub mod deployed;
pub mod executions;
pub mod follow;
pub mod functions;
pub mod iam;
pub mod item_store;
pub mod lambda_host;
pub mod lambda_init;
pub mod lambda_limits;
pub mod peak_rss;
pub mod progress;
pub mod runner;
pub mod schedules;
pub mod stats;
pub mod summary;
pub mod template;
pub mod ui;

use std::path::PathBuf;

/// The repository root: the nearest ancestor of the current directory holding
/// `template.yaml`, so `etl` works from any sub-directory.
pub fn project_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join("template.yaml").is_file())
        .map(PathBuf::from)
}
