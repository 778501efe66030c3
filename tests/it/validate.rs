//! `etl validate` (issue #15): every deployed definition passes AWS's static checks as the
//! local validator reproduces them, and the real binary fails on a broken one, saying why.

use asl::validate::validate_str;
use integration_tests::cli::{command, output, stdout_of_success, text};
use integration_tests::{repo_root, template, unique_suffix};

/// Each file of infra/statemachines/ as AWS receives it: the template's substitutions applied.
#[test]
fn every_deployed_definition_has_no_error_and_no_warning() {
    let template = template();
    let dir = repo_root().join("infra/statemachines");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("infra/statemachines/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let canonical = path.canonicalize().unwrap();
        let machine = template
            .machines
            .iter()
            .find(|m| m.definition_path.canonicalize().ok().as_ref() == Some(&canonical))
            .unwrap_or_else(|| panic!("{} is not declared in template.yaml", path.display()));
        let definition = machine.definition().unwrap();
        let diagnostics = validate_str(&definition);
        assert!(
            diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} definitions found");
}

#[test]
fn the_binary_fails_on_a_broken_definition_and_passes_a_deployed_one() {
    let broken = std::env::temp_dir().join(format!("etl-validate-{}.asl.json", unique_suffix()));
    std::fs::write(
        &broken,
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}, "B": {"Type": "Succeed"}}}"#,
    )
    .unwrap();
    let broken_arg = broken.to_string_lossy().into_owned();
    let out = output(&mut command(&["validate", &broken_arg]));
    std::fs::remove_file(&broken).ok();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{broken_arg}: ERROR MISSING_TRANSITION_TARGET at /States/A/Next: Missing 'Next' target: Nope\n\
             {broken_arg}: ERROR MISSING_TRANSITION_TARGET at /States/B: State \"B\" is not reachable.\n"
        )
    );
    assert!(
        text(&out.stderr).contains("1 definition checked: 2 errors, 0 warnings"),
        "{}",
        text(&out.stderr)
    );

    // A deployed file holds ${…} until the template's substitutions are applied.
    let args = ["validate", "infra/statemachines/hr.asl.json", "--strict"];
    let stdout = stdout_of_success(&args, output(&mut command(&args)));
    assert_eq!(stdout, "");
}
