//! Grants no recorded request used: candidates for trimming (or for a missing test).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::evaluate::StatementRef;
use crate::glob;
use crate::policy::{Effect, Patterns, Policy, PolicyKind, Statement};
use crate::{Contract, Decision, EvaluateError, Request};

/// One (action, resource) pair of an Allow statement that no allowed request matched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnusedGrant {
    /// The function's binary; `*` for a permissions boundary shared by several.
    pub function: String,
    pub policy: String,
    /// `inline`, `SAM <template>`, `boundary`, ...
    pub source: String,
    pub statement: String,
    /// The action pattern (`NotAction [..]` for a NotAction statement).
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    pub unused: Vec<UnusedGrant>,
}

impl fmt::Display for CoverageReport {
    /// A Markdown table, for the docs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| function | policy | statement | action | resource |")?;
        writeln!(f, "| --- | --- | --- | --- | --- |")?;
        for g in &self.unused {
            writeln!(
                f,
                "| {} | {} ({}) | {} | `{}` | `{}` |",
                g.function, g.policy, g.source, g.statement, g.action, g.resource
            )?;
        }
        Ok(())
    }
}

/// A statement's use: the (action, resource) pairs of allowed requests it took part in.
type Uses = Vec<(String, String, bool)>;

/// Every grant of the functions' own policies and of their boundaries that none of
/// `requests` exercised. AWS-managed policies are left out: their grants are not ours to
/// trim. A request that was denied exercises nothing.
pub fn unused_grants<'r>(
    contract: &Contract,
    requests: impl IntoIterator<Item = &'r Request>,
) -> Result<CoverageReport, EvaluateError> {
    // (statement, request) for every statement that took part in allowing a request.
    let mut used: Vec<(StatementRef, &Request)> = Vec::new();
    for r in requests {
        if let Decision::Allowed { by } = contract.evaluate(r)?.decision {
            used.extend(by.into_iter().map(|s| (s, r)));
        }
    }
    let uses = |function: Option<&str>, policy: &Policy, s: &Statement| -> Uses {
        let at = StatementRef {
            policy: policy.name.clone(),
            statement: s.label(),
        };
        used.iter()
            .filter(|(s, r)| function.is_none_or(|f| r.function == f) && *s == at)
            .map(|(_, r)| (r.action.clone(), r.resource.clone(), r.resource_is_pattern))
            .collect()
    };
    let mut unused = BTreeSet::new();
    let mut boundaries = BTreeSet::new();
    for f in contract.functions() {
        for policy in &f.identity {
            if policy.kind != PolicyKind::AwsManaged {
                for s in allows(policy) {
                    unused.extend(grants(
                        &f.binary,
                        policy,
                        s,
                        &uses(Some(&f.binary), policy, s),
                    ));
                }
            }
        }
        if let Some(b) = &f.boundary {
            if boundaries.insert(b.name.clone()) {
                for s in allows(b) {
                    unused.extend(grants("*", b, s, &uses(None, b, s)));
                }
            }
        }
    }
    Ok(CoverageReport {
        unused: unused.into_iter().collect(),
    })
}

fn allows(policy: &Policy) -> impl Iterator<Item = &Statement> {
    policy
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
}

/// The statement's (action, resource) pairs that no use matched.
fn grants(function: &str, policy: &Policy, s: &Statement, uses: &Uses) -> Vec<UnusedGrant> {
    let actions: Vec<(String, Option<String>)> = match &s.actions {
        Patterns::Only(a) => a.iter().map(|a| (a.clone(), Some(a.clone()))).collect(),
        Patterns::AllExcept(a) => vec![(format!("NotAction {a:?}"), None)],
    };
    let resources: Vec<(String, Option<String>)> = match &s.resources {
        Patterns::Only(r) => r.iter().map(|r| (r.clone(), Some(r.clone()))).collect(),
        Patterns::AllExcept(r) => vec![(format!("NotResource {r:?}"), None)],
    };
    let source = match &policy.kind {
        PolicyKind::SamTemplate(t) => format!("SAM {t}"),
        PolicyKind::Inline => "inline".into(),
        PolicyKind::CustomerManaged => "managed".into(),
        PolicyKind::Boundary => "boundary".into(),
        PolicyKind::AwsManaged => "AWS managed".into(),
        PolicyKind::Resource => "resource".into(),
    };
    let mut out = Vec::new();
    for (action, action_pattern) in &actions {
        for (resource, resource_pattern) in &resources {
            let used = uses.iter().any(|(a, r, is_pattern)| {
                action_pattern
                    .as_ref()
                    .is_none_or(|p| glob::matches(p, a, true))
                    && resource_pattern.as_ref().is_none_or(|p| {
                        if *is_pattern {
                            glob::intersects(p, r)
                        } else {
                            glob::matches(p, r, false)
                        }
                    })
            });
            if !used {
                out.push(UnusedGrant {
                    function: function.into(),
                    policy: policy.name.clone(),
                    source: source.clone(),
                    statement: s.label(),
                    action: action.clone(),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}
