//! Policy documents after CloudFormation resolution: statements with their Action/NotAction,
//! Resource/NotResource, Principal/NotPrincipal and Condition elements.

use serde_json::Value;

use crate::condition::ConditionClause;
use crate::glob;
use crate::PolicyError;

/// Where a policy comes from, for messages and for the coverage report (which leaves out
/// AWS-managed policies: their grants are not this project's to trim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyKind {
    /// A `Statement:` list in a function's `Policies`.
    Inline,
    /// A SAM policy template in a function's `Policies`, expanded; holds the template name.
    SamTemplate(String),
    /// An AWS-managed policy SAM attaches to the role (or one named in `Policies`).
    AwsManaged,
    /// A customer-managed policy of the template (`AWS::IAM::ManagedPolicy`) in `Policies`.
    CustomerManaged,
    /// The role's permissions boundary.
    Boundary,
    /// A resource-based policy (a bucket policy).
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` / `Resource` (the listed patterns) or `NotAction` / `NotResource` (all others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    AllExcept(Vec<String>),
}

/// `Principal` or `NotPrincipal` of a resource-based policy statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSpec {
    Only(Principals),
    AllExcept(Principals),
}

/// The principals a statement names; `any` is `"*"` or `{"AWS": "*"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub any: bool,
    /// `AWS` entries: account ids, account root ARNs, role/user/session ARNs.
    pub aws: Vec<String>,
    /// `Service`, `Federated` and `CanonicalUser` entries: never a function's role.
    pub other: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    /// Position in the policy (from 1), naming statements without a Sid.
    pub index: usize,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    pub principal: Option<PrincipalSpec>,
    pub conditions: Vec<ConditionClause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The name AWS would show: the logical id of a managed policy or bucket policy, the
    /// role's `<Function>RolePolicy<N>` for SAM's inline policies, an AWS-managed name.
    pub name: String,
    pub kind: PolicyKind,
    pub statements: Vec<Statement>,
}

impl Statement {
    /// The Sid, or `#<position>` for a statement without one.
    pub fn label(&self) -> String {
        self.sid
            .clone()
            .unwrap_or_else(|| format!("#{}", self.index))
    }

    /// Whether Action/NotAction covers the action (case-insensitive, as IAM compares them).
    pub fn covers_action(&self, action: &str) -> bool {
        match &self.actions {
            Patterns::Only(p) => p.iter().any(|p| glob::matches(p, action, true)),
            Patterns::AllExcept(p) => !p.iter().any(|p| glob::matches(p, action, true)),
        }
    }

    /// Whether Resource/NotResource covers the resource (case-sensitive). With
    /// `is_pattern`, the request names a set of ARNs and one shared ARN suffices.
    pub fn covers_resource(&self, resource: &str, is_pattern: bool) -> bool {
        let hit = |p: &String| {
            if is_pattern {
                glob::intersects(p, resource)
            } else {
                glob::matches(p, resource, false)
            }
        };
        match &self.resources {
            Patterns::Only(p) => p.iter().any(hit),
            Patterns::AllExcept(p) => !p.iter().any(hit),
        }
    }
}

impl Policy {
    /// Parses a resolved policy document (`{"Version", "Statement"}`); `resource_based`
    /// requires a Principal in every statement, an identity policy must have none.
    pub fn parse(
        name: &str,
        kind: PolicyKind,
        document: &Value,
        resource_based: bool,
    ) -> Result<Policy, PolicyError> {
        let err = |message: String| PolicyError {
            policy: name.to_string(),
            message,
        };
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            _ => return Err(err("no Statement list".into())),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, i + 1, resource_based).map_err(&err))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            name: name.to_string(),
            kind,
            statements,
        })
    }
}

fn parse_statement(v: &Value, index: usize, resource_based: bool) -> Result<Statement, String> {
    let at = |m: &str| format!("statement {index}: {m}");
    let obj = v.as_object().ok_or_else(|| at("not a mapping"))?;
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(at("Sid is not a string")),
    };
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(at(&format!("Effect {other:?} is neither Allow nor Deny"))),
    };
    let actions = patterns(obj, "Action", "NotAction").map_err(|m| at(&m))?;
    let resources = patterns(obj, "Resource", "NotResource").map_err(|m| at(&m))?;
    let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(p), None) => Some(PrincipalSpec::Only(principals(p).map_err(|m| at(&m))?)),
        (None, Some(p)) => Some(PrincipalSpec::AllExcept(principals(p).map_err(|m| at(&m))?)),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(at("both Principal and NotPrincipal")),
    };
    if resource_based != principal.is_some() {
        return Err(at(if resource_based {
            "a resource-based policy statement needs a Principal"
        } else {
            "an identity-based policy statement cannot have a Principal"
        }));
    }
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(c) => conditions(c).map_err(|m| at(&m))?,
    };
    Ok(Statement {
        sid,
        index,
        effect,
        actions,
        resources,
        principal,
        conditions,
    })
}

fn patterns(
    obj: &serde_json::Map<String, Value>,
    only: &str,
    except: &str,
) -> Result<Patterns, String> {
    match (obj.get(only), obj.get(except)) {
        (Some(v), None) => Ok(Patterns::Only(
            strings(v).map_err(|m| format!("{only}: {m}"))?,
        )),
        (None, Some(v)) => Ok(Patterns::AllExcept(
            strings(v).map_err(|m| format!("{except}: {m}"))?,
        )),
        (None, None) => Err(format!("neither {only} nor {except}")),
        (Some(_), Some(_)) => Err(format!("both {only} and {except}")),
    }
}

/// A string, number or boolean, or a list of them, as strings (YAML may write `false` or
/// `10` unquoted where IAM means the string).
pub(crate) fn strings(v: &Value) -> Result<Vec<String>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{other} is not a string")),
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn principals(v: &Value) -> Result<Principals, String> {
    let mut out = Principals::default();
    match v {
        Value::String(s) if s == "*" => out.any = true,
        Value::Object(map) => {
            for (kind, value) in map {
                let values = strings(value)?;
                if kind == "AWS" {
                    out.any |= values.iter().any(|v| v == "*");
                    out.aws.extend(values.into_iter().filter(|v| v != "*"));
                } else if matches!(kind.as_str(), "Service" | "Federated" | "CanonicalUser") {
                    out.other.extend(values);
                } else {
                    return Err(format!("unknown principal type {kind}"));
                }
            }
        }
        other => return Err(format!("Principal {other} is neither \"*\" nor a mapping")),
    }
    Ok(out)
}

fn conditions(v: &Value) -> Result<Vec<ConditionClause>, String> {
    let ops = v.as_object().ok_or("Condition is not a mapping")?;
    let mut out = Vec::new();
    for (op, keys) in ops {
        let keys = keys
            .as_object()
            .ok_or_else(|| format!("Condition {op} is not a mapping"))?;
        for (key, values) in keys {
            let clause = ConditionClause::new(op, key, strings(values)?)
                .map_err(|op| format!("unsupported condition operator {op}"))?;
            out.push(clause);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_single_values_lists_and_not_elements() {
        let doc = json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}});
        let p = Policy::parse("p", PolicyKind::Inline, &doc, false).unwrap();
        let s = &p.statements[0];
        assert_eq!(s.label(), "#1");
        assert!(s.covers_action("s3:GetObject"));
        assert!(!s.covers_action("IAM:CreateUser"));
    }

    #[test]
    fn principal_presence_is_checked_by_policy_type() {
        let doc = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]});
        assert!(Policy::parse("p", PolicyKind::Resource, &doc, true).is_ok());
        assert!(Policy::parse("p", PolicyKind::Inline, &doc, false).is_err());
    }

    #[test]
    fn unknown_condition_operator_names_itself() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringSortOf": {"k": "v"}}}]});
        let e = Policy::parse("p", PolicyKind::Inline, &doc, false).unwrap_err();
        assert!(e.to_string().contains("StringSortOf"), "{e}");
    }
}
