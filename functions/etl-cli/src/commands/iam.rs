//! `etl iam report`: the call log decided against template.yaml's IAM contract.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use etl_cli::iam::{report, IamReport};

use super::exit_code;
use crate::cli::{IamAction, IamReportArgs};

pub fn iam(template: Option<PathBuf>, action: IamAction) -> anyhow::Result<ExitCode> {
    let IamAction::Report(args) = action;
    let template = match template {
        Some(path) => path,
        None => etl_cli::project_root()
            .context("no template.yaml in this directory or its parents (use --template)")?
            .join("template.yaml"),
    };
    run_report(&template, &args)
}

fn run_report(template: &std::path::Path, args: &IamReportArgs) -> anyhow::Result<ExitCode> {
    let log = std::fs::read_to_string(&args.calls)
        .with_context(|| format!("cannot read the call log {}", args.calls.display()))?;
    let report = report(template, &log)?;
    if args.markdown {
        print!("{report}");
    } else {
        print!("{}", plain(&report));
    }
    if report.denials() > 0 {
        eprintln!(
            "error: {} AWS call(s) that AWS would deny (see above)",
            report.denials()
        );
    }
    Ok(exit_code(report.denials() == 0))
}

/// The report as aligned text.
fn plain(report: &IamReport) -> String {
    let mut out = format!(
        "{:<24} {:>8} {:>10} {:>8}\n",
        "function", "calls", "unchecked", "denials"
    );
    for (name, calls) in &report.functions {
        out += &format!(
            "{name:<24} {:>8} {:>10} {:>8}\n",
            calls.calls,
            calls.unchecked,
            calls.denials.len()
        );
        for d in &calls.denials {
            out += &format!("  denied: {d}\n");
        }
    }
    out += &format!(
        "\ngrants no call exercised: {}\n",
        report.unused.unused.len()
    );
    for g in &report.unused.unused {
        out += &format!(
            "  {} {}/{} ({}): {} on {}\n",
            g.function, g.policy, g.statement, g.source, g.action, g.resource
        );
    }
    out
}
