//! The `Condition` element: operators, the `IfExists` suffix, the `ForAnyValue:` /
//! `ForAllValues:` set qualifiers and missing-key semantics, as the IAM reference defines
//! them.

use std::collections::BTreeMap;

use crate::glob;

/// One `operator: { key: values }` entry of a statement's `Condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionClause {
    /// As written, e.g. `StringLike` or `ForAnyValue:StringEqualsIfExists`.
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    parsed: Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(NumericOp),
    Bool,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumericOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    set: SetQualifier,
    base: Base,
    negated: bool,
    if_exists: bool,
}

impl ConditionClause {
    /// Fails with the operator's name when IAM does not define it (or this evaluator does not
    /// implement it), so a policy is never half-understood.
    pub fn new(operator: &str, key: &str, values: Vec<String>) -> Result<Self, String> {
        let parsed = parse_operator(operator).ok_or_else(|| operator.to_string())?;
        Ok(ConditionClause {
            operator: operator.to_string(),
            key: key.to_string(),
            values,
            parsed,
        })
    }

    /// Whether the clause holds for the request context (keys compare case-insensitively, as
    /// IAM's condition keys do).
    pub fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let present = context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.key))
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty());
        let op = self.parsed;
        if op.base == Base::Null {
            let absent = present.is_none();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(actual) = present else {
            return missing_key(op);
        };
        let hit = |v: &String| self.values.iter().any(|p| base_matches(op.base, p, v));
        match (op.set, op.negated) {
            (SetQualifier::ForAllValues, false) => actual.iter().all(hit),
            (SetQualifier::ForAllValues, true) => actual.iter().all(|v| !hit(v)),
            (SetQualifier::ForAnyValue, true) => actual.iter().any(|v| !hit(v)),
            (_, false) => actual.iter().any(hit),
            (SetQualifier::Single, true) => !actual.iter().any(hit),
        }
    }
}

/// A key the request does not carry: IfExists and ForAllValues hold vacuously, ForAnyValue
/// fails, a negated operator holds (nothing equals the value) and any other fails.
fn missing_key(op: Operator) -> bool {
    if op.if_exists || op.set == SetQualifier::ForAllValues {
        return true;
    }
    if op.set == SetQualifier::ForAnyValue {
        return false;
    }
    op.negated
}

fn base_matches(base: Base, policy: &str, actual: &str) -> bool {
    match base {
        Base::StringEquals => policy == actual,
        Base::StringEqualsIgnoreCase => policy.to_lowercase() == actual.to_lowercase(),
        Base::StringLike => glob::matches(policy, actual, false),
        Base::Bool => policy.eq_ignore_ascii_case(actual),
        Base::Arn => arn_like(policy, actual),
        Base::Numeric(op) => numeric(op, policy, actual),
        Base::Null => false,
    }
}

/// ArnEquals and ArnLike both compare the six colon-separated parts one by one, each with
/// wildcards; a value that is not an ARN matches nothing.
fn arn_like(policy: &str, actual: &str) -> bool {
    let p: Vec<&str> = policy.splitn(6, ':').collect();
    let a: Vec<&str> = actual.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob::matches(p, a, false))
}

fn numeric(op: NumericOp, policy: &str, actual: &str) -> bool {
    let (Ok(p), Ok(a)) = (policy.trim().parse::<f64>(), actual.trim().parse::<f64>()) else {
        return false;
    };
    match op {
        NumericOp::Eq => a == p,
        NumericOp::Lt => a < p,
        NumericOp::Le => a <= p,
        NumericOp::Gt => a > p,
        NumericOp::Ge => a >= p,
    }
}

fn parse_operator(text: &str) -> Option<Operator> {
    let (set, rest) = if let Some(r) = text.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, r)
    } else if let Some(r) = text.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, r)
    } else {
        (SetQualifier::Single, text)
    };
    let (name, if_exists) = match rest.strip_suffix("IfExists") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    let (base, negated) = match name {
        "StringEquals" => (Base::StringEquals, false),
        "StringNotEquals" => (Base::StringEquals, true),
        "StringEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, true),
        "StringLike" => (Base::StringLike, false),
        "StringNotLike" => (Base::StringLike, true),
        "NumericEquals" => (Base::Numeric(NumericOp::Eq), false),
        "NumericNotEquals" => (Base::Numeric(NumericOp::Eq), true),
        "NumericLessThan" => (Base::Numeric(NumericOp::Lt), false),
        "NumericLessThanEquals" => (Base::Numeric(NumericOp::Le), false),
        "NumericGreaterThan" => (Base::Numeric(NumericOp::Gt), false),
        "NumericGreaterThanEquals" => (Base::Numeric(NumericOp::Ge), false),
        "Bool" => (Base::Bool, false),
        "ArnEquals" | "ArnLike" => (Base::Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Base::Arn, true),
        // Null takes no suffix or qualifier.
        "Null" if !if_exists && set == SetQualifier::Single => (Base::Null, false),
        _ => return None,
    };
    Some(Operator {
        set,
        base,
        negated,
        if_exists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.iter().map(std::string::ToString::to_string).collect(),
                )
            })
            .collect()
    }

    fn clause(op: &str, key: &str, values: &[&str]) -> ConditionClause {
        ConditionClause::new(
            op,
            key,
            values
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn any_policy_value_may_match() {
        let c = clause("StringLike", "s3:prefix", &["raw/*", "curated/*"]);
        assert!(c.holds(&ctx(&[("s3:prefix", &["curated/x"])])));
        assert!(!c.holds(&ctx(&[("s3:prefix", &["reports/x"])])));
        assert!(
            !c.holds(&ctx(&[])),
            "a missing key fails a positive operator"
        );
    }

    #[test]
    fn negated_operators_need_every_value_to_differ_and_hold_on_missing_keys() {
        let c = clause("StringNotEquals", "aws:SourceAccount", &["1", "2"]);
        assert!(!c.holds(&ctx(&[("aws:SourceAccount", &["2"])])));
        assert!(c.holds(&ctx(&[("aws:SourceAccount", &["3"])])));
        assert!(c.holds(&ctx(&[])));
    }

    #[test]
    fn if_exists_and_null() {
        let c = clause("StringEqualsIfExists", "s3:delimiter", &["/"]);
        assert!(c.holds(&ctx(&[])));
        assert!(!c.holds(&ctx(&[("s3:delimiter", &["|"])])));
        let null = clause("Null", "s3:prefix", &["true"]);
        assert!(null.holds(&ctx(&[])));
        assert!(!null.holds(&ctx(&[("s3:prefix", &["a"])])));
    }

    #[test]
    fn bool_numeric_arn_and_keys_ignore_case() {
        let b = clause("Bool", "aws:SecureTransport", &["false"]);
        assert!(b.holds(&ctx(&[("aws:securetransport", &["FALSE"])])));
        assert!(!b.holds(&ctx(&[("aws:SecureTransport", &["true"])])));
        let n = clause("NumericLessThanEquals", "s3:max-keys", &["10"]);
        assert!(n.holds(&ctx(&[("s3:max-keys", &["10"])])));
        assert!(!n.holds(&ctx(&[("s3:max-keys", &["11"])])));
        assert!(!n.holds(&ctx(&[("s3:max-keys", &["many"])])));
        let a = clause(
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:states:*:1:stateMachine:*"],
        );
        assert!(a.holds(&ctx(&[(
            "aws:SourceArn",
            &["arn:aws:states:eu-west-1:1:stateMachine:m"]
        )])));
        assert!(!a.holds(&ctx(&[(
            "aws:SourceArn",
            &["arn:aws:states:eu-west-1:2:stateMachine:m"]
        )])));
    }

    #[test]
    fn set_qualifiers() {
        let any = clause("ForAnyValue:StringEquals", "aws:TagKeys", &["a"]);
        let all = clause("ForAllValues:StringEquals", "aws:TagKeys", &["a", "b"]);
        let tags = ctx(&[("aws:TagKeys", &["a", "c"])]);
        assert!(any.holds(&tags));
        assert!(!all.holds(&tags));
        assert!(all.holds(&ctx(&[])), "ForAllValues holds on a missing key");
        assert!(!any.holds(&ctx(&[])));
    }

    #[test]
    fn unknown_operators_are_refused() {
        assert!(ConditionClause::new("StringSortOf", "k", vec![]).is_err());
        assert!(ConditionClause::new("NullIfExists", "k", vec![]).is_err());
    }
}
