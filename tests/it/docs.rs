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

/// Stack outputs the docs name: "`X` output" and `OutputKey=='X'` (the AWS CLI queries).
fn outputs_named(markdown: &str) -> Vec<String> {
    let mut named = Vec::new();
    for (marker, close) in [("OutputKey=='", "'"), ("`", "` output")] {
        let mut rest = markdown;
        while let Some(start) = rest.find(marker) {
            rest = &rest[start + marker.len()..];
            let Some(end) = rest.find(close) else { break };
            let name = &rest[..end];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                named.push(name.to_string());
            }
            if marker == "`" {
                // Step past this backtick pair, matched or not.
                rest = rest.find('`').map_or("", |i| &rest[i + 1..]);
            }
        }
    }
    named
}

fn template_section_keys(section: &str) -> Vec<String> {
    let text = read(&repo_root().join("template.yaml"));
    let root: serde_yaml::Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    root[section]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_stack_output_the_docs_name_exists() {
    let outputs = template_section_keys("Outputs");
    let mut missing = Vec::new();
    let mut named = 0;
    for file in markdown_files() {
        for output in outputs_named(&read(&file)) {
            named += 1;
            if !outputs.contains(&output) {
                missing.push(format!("{}: {output}", file.display()));
            }
        }
    }
    assert!(
        named >= 3,
        "only {named} outputs named: did the parser break?"
    );
    assert!(
        missing.is_empty(),
        "outputs template.yaml does not have: {missing:#?}"
    );
}

#[test]
fn every_template_parameter_is_documented() {
    let docs = read(&repo_root().join("docs/configuration.md"))
        + &read(&repo_root().join("docs/operations.md"));
    let undocumented: Vec<String> = template_section_keys("Parameters")
        .into_iter()
        .filter(|p| !docs.contains(&format!("`{p}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "parameters neither docs/configuration.md nor docs/operations.md explains: {undocumented:?}"
    );
}

#[test]
fn the_output_parser_finds_both_forms() {
    let text = "the stack's `SchedulerRoleArn` output, `etl` and \
                --query \"Stacks[0].Outputs[?OutputKey=='HrStateMachineArn'].OutputValue\"";
    assert_eq!(
        outputs_named(text),
        vec![
            "HrStateMachineArn".to_string(),
            "SchedulerRoleArn".to_string()
        ]
    );
}
