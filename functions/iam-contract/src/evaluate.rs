//! Same-account policy evaluation, in the order of the IAM User Guide's "Policy evaluation
//! logic": an explicit Deny anywhere wins; a bucket policy Allow naming the role's session
//! grants on its own; otherwise the identity policies must allow and so must the
//! permissions boundary (a bucket policy Allow naming the role, or everyone, counts as an
//! identity-side allow that the boundary still caps).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::policy::{Effect, Policy, PolicyKind, PrincipalSpec, Principals, Statement};
use crate::template::FunctionPolicies;
use crate::{Contract, EvaluateError};

/// One IAM authorisation a function's API call needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// The function's binary name (`marketing-unify`).
    pub function: String,
    /// The IAM service prefix (`s3`, `secretsmanager`).
    pub service: String,
    /// `service:Action`, e.g. `s3:ListBucket`.
    pub action: String,
    pub resource: String,
    /// Request condition keys (`aws:SecureTransport`, `s3:prefix`, ...). Keys a policy
    /// tests that are not here are absent, as AWS treats them.
    pub context: BTreeMap<String, Vec<String>>,
    /// The resource is a pattern naming a set of ARNs (a secret given by name); the
    /// request is decided as for a member of the set that the policy names.
    pub resource_is_pattern: bool,
}

impl Request {
    /// A request over TLS (`aws:SecureTransport` = true, as every SDK call to AWS is).
    pub fn new(function: &str, action: &str, resource: &str) -> Self {
        Request {
            function: function.into(),
            service: action.split(':').next().unwrap_or_default().to_string(),
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::from([("aws:SecureTransport".into(), vec!["true".into()])]),
            resource_is_pattern: false,
        }
    }

    /// Sets a condition key (replacing any earlier value).
    pub fn with_context(mut self, key: &str, values: &[&str]) -> Self {
        self.context.insert(
            key.into(),
            values
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        );
        self
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StatementRef {
    pub policy: String,
    /// The Sid, or `#<position>`.
    pub statement: String,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.policy, self.statement)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DenyReason {
    /// No identity policy statement (nor bucket policy statement) allows the request.
    ImplicitDeny,
    /// A Deny statement matched.
    ExplicitDeny { policy: String, sid: String },
    /// The role allows it but the permissions boundary has no Allow for it.
    BoundaryDoesNotAllow {
        boundary: String,
        allowed_by: Vec<StatementRef>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// Every matching Allow statement (identity, boundary, bucket policy).
    Allowed {
        by: Vec<StatementRef>,
    },
    Denied {
        reason: DenyReason,
    },
}

/// A request and its decision; displays as one sentence for test failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub request: Request,
    pub decision: Decision,
}

impl Evaluation {
    pub fn is_allowed(&self) -> bool {
        matches!(self.decision, Decision::Allowed { .. })
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        let verb = if self.is_allowed() { "may" } else { "may not" };
        write!(f, "{} {verb} {} on {}", r.function, r.action, r.resource)?;
        let list = |refs: &[StatementRef]| {
            refs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.decision {
            Decision::Allowed { by } => write!(f, " (allowed by {})", list(by)),
            Decision::Denied { reason } => match reason {
                DenyReason::ImplicitDeny => {
                    write!(
                        f,
                        ": no statement of its role's policies allows it (implicit deny)"
                    )
                }
                DenyReason::ExplicitDeny { policy, sid } => {
                    write!(f, ": explicitly denied by statement {sid} of {policy}")
                }
                DenyReason::BoundaryDoesNotAllow {
                    boundary,
                    allowed_by,
                } => write!(
                    f,
                    ": the permissions boundary {boundary} allows no statement for it \
                     (the role grants it by {})",
                    list(allowed_by)
                ),
            },
        }
    }
}

/// How a resource-policy statement's principal relates to the function's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalMatch {
    /// Names the role session: an Allow grants even past the boundary.
    Session,
    /// Names the role, or everyone: an Allow is capped by the boundary. (For `"*"` AWS
    /// does not document which; capping is the conservative reading.)
    Role,
    /// Names the account: an Allow only delegates to IAM, a Deny applies.
    Account,
}

pub(crate) fn evaluate(contract: &Contract, req: &Request) -> Result<Evaluation, EvaluateError> {
    let f = contract
        .functions
        .get(&req.function)
        .ok_or_else(|| EvaluateError::UnknownFunction(req.function.clone()))?;
    let resource_policies: Vec<&Policy> = contract
        .resource_policies
        .iter()
        .filter(|rp| rp.applies_to(&req.resource))
        .map(|rp| &rp.policy)
        .collect();
    let account = &contract.deployment.account_id;
    let decision = decide(f, &resource_policies, account, req);
    Ok(Evaluation {
        request: req.clone(),
        decision,
    })
}

fn decide(f: &FunctionPolicies, resource: &[&Policy], account: &str, req: &Request) -> Decision {
    let applies = |s: &Statement| {
        s.covers_action(&req.action)
            && s.covers_resource(&req.resource, req.resource_is_pattern)
            && s.conditions.iter().all(|c| c.holds(&req.context))
    };
    let mut identity_allows = Vec::new();
    let mut boundary_allows = Vec::new();
    let mut session_allows = Vec::new();
    let mut role_allows = Vec::new();
    let scopes = f.identity.iter().chain(f.boundary.as_ref());
    for policy in scopes {
        for s in policy.statements.iter().filter(|s| applies(s)) {
            let at = StatementRef {
                policy: policy.name.clone(),
                statement: s.label(),
            };
            match (s.effect, &policy.kind) {
                (Effect::Deny, _) => return explicit_deny(at),
                (Effect::Allow, PolicyKind::Boundary) => boundary_allows.push(at),
                (Effect::Allow, _) => identity_allows.push(at),
            }
        }
    }
    for policy in resource {
        for s in policy.statements.iter().filter(|s| applies(s)) {
            let Some(who) = principal_match(s, f, account) else {
                continue;
            };
            let at = StatementRef {
                policy: policy.name.clone(),
                statement: s.label(),
            };
            match (s.effect, who) {
                (Effect::Deny, _) => return explicit_deny(at),
                (Effect::Allow, PrincipalMatch::Session) => session_allows.push(at),
                (Effect::Allow, PrincipalMatch::Role) => role_allows.push(at),
                (Effect::Allow, PrincipalMatch::Account) => {}
            }
        }
    }
    if !session_allows.is_empty() {
        session_allows.extend(identity_allows);
        return Decision::Allowed { by: session_allows };
    }
    identity_allows.extend(role_allows);
    if identity_allows.is_empty() {
        return Decision::Denied {
            reason: DenyReason::ImplicitDeny,
        };
    }
    match &f.boundary {
        Some(b) if boundary_allows.is_empty() => Decision::Denied {
            reason: DenyReason::BoundaryDoesNotAllow {
                boundary: b.name.clone(),
                allowed_by: identity_allows,
            },
        },
        _ => {
            identity_allows.extend(boundary_allows);
            Decision::Allowed {
                by: identity_allows,
            }
        }
    }
}

fn explicit_deny(at: StatementRef) -> Decision {
    Decision::Denied {
        reason: DenyReason::ExplicitDeny {
            policy: at.policy,
            sid: at.statement,
        },
    }
}

fn principal_match(s: &Statement, f: &FunctionPolicies, account: &str) -> Option<PrincipalMatch> {
    match s.principal.as_ref()? {
        PrincipalSpec::Only(p) => named(p, f, account),
        PrincipalSpec::AllExcept(p) => {
            // The IAM guide: a Deny with NotPrincipal always denies a principal that has a
            // permissions boundary, whatever it lists.
            if s.effect == Effect::Deny && f.boundary.is_some() {
                return Some(PrincipalMatch::Role);
            }
            match named(p, f, account) {
                Some(_) => None,
                None => Some(PrincipalMatch::Role),
            }
        }
    }
}

fn named(p: &Principals, f: &FunctionPolicies, account: &str) -> Option<PrincipalMatch> {
    let root = f
        .role_arn
        .split_once(":iam::")
        .map(|(prefix, _)| format!("{prefix}:iam::{account}:root"));
    if p.aws.contains(&f.session_arn) {
        Some(PrincipalMatch::Session)
    } else if p.any || p.aws.contains(&f.role_arn) {
        Some(PrincipalMatch::Role)
    } else if p
        .aws
        .iter()
        .any(|a| a == account || Some(a) == root.as_ref())
    {
        Some(PrincipalMatch::Account)
    } else {
        None
    }
}
