//! `etl list`: what the template declares.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use etl_cli::functions::function_names;
use etl_cli::template::Template;

use super::load_template;
use crate::cli::ListArgs;

pub fn list(template: Option<PathBuf>, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let template = load_template(template)?;
    if args.functions {
        for binary in template.function_binaries() {
            println!("{binary}");
        }
    } else {
        println!(
            "{}",
            Declared {
                template: &template,
                functions: &function_names()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The state machines with their definitions, then the functions.
struct Declared<'a> {
    template: &'a Template,
    functions: &'a [&'a str],
}

impl fmt::Display for Declared<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "state machines:")?;
        for m in &self.template.machines {
            writeln!(f, "  {:<20} {}", m.name, m.definition_path.display())?;
        }
        write!(f, "functions:")?;
        for function in self.functions {
            write!(f, "\n  {function}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn machines_then_functions() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let listing = Declared {
            template: &template,
            functions: &["hr-schema", "hr-hire"],
        }
        .to_string();
        let hr = template.machine("hr").unwrap();
        let hr_line = format!("  hr                   {}\n", hr.definition_path.display());
        assert!(listing.starts_with("state machines:\n"), "{listing}");
        assert!(listing.contains(&hr_line), "{listing}");
        assert!(
            listing.ends_with("\nfunctions:\n  hr-schema\n  hr-hire"),
            "{listing}"
        );
    }
}
