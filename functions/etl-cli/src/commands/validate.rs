//! `etl validate`: static checks of state machine definitions, with the codes and messages of
//! Step Functions' ValidateStateMachineDefinition (see `asl::validate`), so a definition AWS
//! would refuse at deploy time is refused here first.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use asl::validate::{validate_str, Diagnostic};
use etl_cli::template::{MachineSpec, Template};

use super::exit_code;
use crate::cli::ValidateArgs;

pub fn validate(template: Option<PathBuf>, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let declared = declared_machines(template)?;
    let mut totals = Totals::default();
    for file in &args.files {
        let text = definition_text(file, &declared)?;
        let diagnostics = validate_str(&text);
        print!(
            "{}",
            FileDiagnostics {
                file,
                diagnostics: &diagnostics
            }
        );
        totals.add(&diagnostics);
    }
    eprintln!("{totals}");
    Ok(exit_code(!totals.fails(args.strict)))
}

/// The template's machines, whose files hold `${…}` until substituted. Without `--template`
/// and outside the repository there is no template, and every file is read as it is.
fn declared_machines(template: Option<PathBuf>) -> anyhow::Result<Vec<MachineSpec>> {
    let path = match template {
        Some(path) => path,
        None => match etl_cli::project_root() {
            Some(root) => root.join("template.yaml"),
            None => return Ok(Vec::new()),
        },
    };
    Ok(Template::load(&path)?.machines)
}

/// The definition as AWS receives it: with the template's substitutions applied when the
/// template declares this file, else the file's text.
fn definition_text(file: &Path, declared: &[MachineSpec]) -> anyhow::Result<String> {
    let unreadable = || format!("cannot read {}", file.display());
    let canonical = file.canonicalize().with_context(unreadable)?;
    let machine = declared
        .iter()
        .find(|m| m.definition_path.canonicalize().ok().as_ref() == Some(&canonical));
    match machine {
        Some(machine) => Ok(machine.definition()?),
        None => std::fs::read_to_string(file).with_context(unreadable),
    }
}

/// `file: SEVERITY CODE at location: message`, one line each.
struct FileDiagnostics<'a> {
    file: &'a Path,
    diagnostics: &'a [Diagnostic],
}

impl fmt::Display for FileDiagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in self.diagnostics {
            writeln!(f, "{}: {diagnostic}", self.file.display())?;
        }
        Ok(())
    }
}

/// What all files found, for the closing line on stderr and the exit status.
#[derive(Debug, Default)]
struct Totals {
    files: usize,
    errors: usize,
    warnings: usize,
}

impl Totals {
    fn add(&mut self, diagnostics: &[Diagnostic]) {
        self.files += 1;
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        self.errors += errors;
        self.warnings += diagnostics.len() - errors;
    }

    fn fails(&self, strict: bool) -> bool {
        self.errors > 0 || (strict && self.warnings > 0)
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        write!(
            f,
            "{} checked: {}, {}",
            plural(self.files, "definition"),
            plural(self.errors, "error"),
            plural(self.warnings, "warning")
        )
    }
}

#[cfg(test)]
mod tests {
    use asl::validate::{codes, Severity};

    use super::*;

    fn diagnostic(severity: Severity, code: &str, location: Option<&str>) -> Diagnostic {
        Diagnostic {
            severity,
            code: code.to_string(),
            message: "m".to_string(),
            location: location.map(str::to_string),
        }
    }

    #[test]
    fn one_line_per_diagnostic_then_totals() {
        let diagnostics = [
            diagnostic(
                Severity::Error,
                codes::MISSING_TRANSITION_TARGET,
                Some("/States/A/Next"),
            ),
            diagnostic(Severity::Warning, codes::NO_DOLLAR, Some("/States/A/x")),
            diagnostic(Severity::Error, codes::MISSING_END_STATE, None),
        ];
        let lines = FileDiagnostics {
            file: Path::new("m.asl.json"),
            diagnostics: &diagnostics,
        }
        .to_string();
        assert_eq!(
            lines,
            "m.asl.json: ERROR MISSING_TRANSITION_TARGET at /States/A/Next: m\n\
             m.asl.json: WARNING NO_DOLLAR at /States/A/x: m\n\
             m.asl.json: ERROR MISSING_END_STATE: m\n"
        );
        let mut totals = Totals::default();
        totals.add(&diagnostics);
        totals.add(&[]);
        assert_eq!(
            totals.to_string(),
            "2 definitions checked: 2 errors, 1 warning"
        );
        assert!(totals.fails(false));
    }

    #[test]
    fn warnings_fail_only_when_strict() {
        let mut totals = Totals::default();
        totals.add(&[diagnostic(Severity::Warning, codes::NO_PATH, None)]);
        assert!(!totals.fails(false));
        assert!(totals.fails(true));
        assert_eq!(
            totals.to_string(),
            "1 definition checked: 0 errors, 1 warning"
        );
    }

    #[test]
    fn declared_files_are_substituted_first() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let hr = template.machine("hr").unwrap();
        let raw = std::fs::read_to_string(&hr.definition_path).unwrap();
        assert!(raw.contains("${"), "hr.asl.json has substitutions");
        let text = definition_text(&hr.definition_path, &template.machines).unwrap();
        assert!(!text.contains("${"), "{text}");
        let undeclared = root.join("tests/fixtures/differential.asl.json");
        assert_eq!(
            definition_text(&undeclared, &template.machines).unwrap(),
            std::fs::read_to_string(&undeclared).unwrap()
        );
    }
}
