//! What a compiled expression reads, for the checks the service makes when a state machine is
//! created: `$states.result` and `$states.errorOutput` only where they exist, and no field
//! read straight from the (absent) input document.
//!
//! Source: "Transforming data with JSONata in Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>: "Attempting to
//! access `$states.result` or `$states.errorOutput` in fields and states where they are not
//! accessible will be caught at CreateStateMachine…"; the state input is `$states.input`.

use std::collections::BTreeSet;

use jlens_core::{Expression, Node, NodeKind};

/// The members of `$states` the expression names (`input`, `result`, `errorOutput`,
/// `context`).
pub fn states_members(compiled: &Expression) -> BTreeSet<String> {
    let mut members = BTreeSet::new();
    compiled.ast().root.walk(&mut |node| {
        if let NodeKind::Path { steps, .. } = &node.kind {
            if let [first, second, ..] = steps.as_slice() {
                if let (NodeKind::Variable { name }, NodeKind::Name { name: member }) =
                    (&first.kind, &second.kind)
                {
                    if name == "states" {
                        members.insert(member.clone());
                    }
                }
            }
        }
    });
    members
}

/// The first field name the expression reads from the top-level context, which Step Functions
/// leaves empty (`{% title %}` instead of `{% $states.input.title %}`).
pub fn top_level_field(compiled: &Expression) -> Option<String> {
    top_level_name(&compiled.ast().root)
}

/// Follows only the nodes evaluated against the top-level context: a path's later steps,
/// predicates and function bodies have a context of their own.
fn top_level_name(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Name { name } => Some(name.clone()),
        NodeKind::Path { steps, .. } => steps.first().and_then(top_level_name),
        NodeKind::Binary { lhs, rhs, .. } | NodeKind::Fallback { lhs, rhs, .. } => {
            top_level_name(lhs).or_else(|| top_level_name(rhs))
        }
        NodeKind::Bind { rhs, .. } => top_level_name(rhs),
        NodeKind::Apply { lhs, .. } => top_level_name(lhs),
        NodeKind::Negate { expr } => top_level_name(expr),
        NodeKind::Array { items } | NodeKind::Block { exprs: items, .. } => {
            items.iter().find_map(top_level_name)
        }
        NodeKind::Object { pairs } => pairs
            .iter()
            .find_map(|(k, v)| top_level_name(k).or_else(|| top_level_name(v))),
        NodeKind::Condition {
            condition,
            then,
            otherwise,
        } => top_level_name(condition)
            .or_else(|| top_level_name(then))
            .or_else(|| otherwise.as_deref().and_then(top_level_name)),
        NodeKind::Function { args, .. } | NodeKind::Partial { args, .. } => {
            args.iter().find_map(top_level_name)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonata::compile;

    fn members(source: &str) -> Vec<String> {
        states_members(&compile(source).unwrap())
            .into_iter()
            .collect()
    }

    fn field(source: &str) -> Option<String> {
        top_level_field(&compile(source).unwrap())
    }

    #[test]
    fn states_members_are_found_anywhere() {
        assert_eq!(members("$states.input.a + 1"), ["input"]);
        assert_eq!(
            members("{'r': $count($states.result.items), 'e': $states.errorOutput.Error}"),
            ["errorOutput", "result"]
        );
        assert!(members("$x.result").is_empty());
    }

    #[test]
    fn only_top_level_names_are_reported() {
        assert_eq!(field("title").as_deref(), Some("title"));
        assert_eq!(field("$count(items) + 1").as_deref(), Some("items"));
        assert_eq!(field("$states.input.items.(price * qty)"), None);
        assert_eq!(field("$states.input.products[calories=0]"), None);
        assert_eq!(field("$map($states.input, function($v){ $v.a })"), None);
        assert_eq!(field("$states.input{category: $sum(amount)}"), None);
    }
}
