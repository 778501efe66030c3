//! The docs stay true to the tree: the layout names every crate, every relative link leads
//! somewhere, and nothing outside the template lists the functions by hand.

use std::path::{Path, PathBuf};

use integration_tests::{repo_root, template};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README, CONTRIBUTING and every page under docs/.
fn markdown_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of `[text](target)` links that point into the repository.
fn relative_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        let is_external = target.contains("://") || target.starts_with("mailto:");
        if !is_external && !target.starts_with('#') && !target.contains(' ') {
            links.push(target.split('#').next().unwrap_or(target).to_string());
        }
        rest = &rest[end..];
    }
    links
}

#[test]
fn the_layout_names_every_crate_under_functions() {
    let architecture = read(&repo_root().join("docs/architecture.md"));
    let layout = architecture
        .split("## Layout")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/architecture.md has a Layout section");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("functions")).expect("functions/") {
        let entry = entry.expect("functions entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("Cargo.toml").is_file() && !layout.contains(&format!("{name}/")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md's Layout does not name {missing:?}"
    );
}

#[test]
fn every_relative_link_in_the_docs_exists() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let dir = file.parent().expect("a file has a directory");
        for link in relative_links(&read(&file)) {
            checked += 1;
            if !dir.join(&link).exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} links found: did the parser break?"
    );
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn the_function_list_comes_from_the_template_only() {
    // scripts/test packages what `etl list --functions` reports; a hand-written list there
    // would let a new stage go unpackaged (or a removed one fail the build).
    let scripts_test = read(&repo_root().join("scripts/test"));
    assert!(scripts_test.contains("etl\" list --functions"));
    let named: Vec<String> = template()
        .functions
        .values()
        .filter(|f| scripts_test.contains(f.as_str()))
        .cloned()
        .collect();
    assert!(
        named.is_empty(),
        "scripts/test names functions by hand: {named:?}"
    );
}
