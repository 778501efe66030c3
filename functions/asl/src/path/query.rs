//! Evaluating segments against a document: every node a path reaches, in document order.

use serde_json::Value;

use super::Segment;

/// The element at `index` (negative counts from the end).
pub(super) fn element(items: &[Value], index: i64) -> Option<&Value> {
    let len = i64::try_from(items.len()).ok()?;
    let i = if index < 0 { len + index } else { index };
    usize::try_from(i).ok().and_then(|i| items.get(i))
}

/// The nodes `segments` reach from `node`; `root` is `$` for filters that refer to it.
pub(super) fn select<'a>(segments: &[Segment], node: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![node];
    for segment in segments {
        current = current
            .into_iter()
            .flat_map(|n| step(segment, n, root))
            .collect();
    }
    current
}

fn step<'a>(segment: &Segment, node: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    match segment {
        Segment::Field(name) => node
            .as_object()
            .and_then(|o| o.get(name))
            .into_iter()
            .collect(),
        Segment::Index(i) => node
            .as_array()
            .and_then(|items| element(items, *i))
            .into_iter()
            .collect(),
        Segment::Wildcard => children(node),
        Segment::Slice(start, end, step) => node
            .as_array()
            .map(|items| slice(items, *start, *end, *step))
            .unwrap_or_default(),
        Segment::Union(parts) => parts
            .iter()
            .flat_map(|p| self::step(p, node, root))
            .collect(),
        Segment::Descendants(name) => {
            let mut out = Vec::new();
            descend(node, name.as_deref(), &mut out);
            out
        }
        Segment::Filter(filter) => match node {
            Value::Array(items) => items.iter().filter(|i| filter.holds(i, root)).collect(),
            other if filter.holds(other, root) => vec![other],
            _ => Vec::new(),
        },
    }
}

fn children(node: &Value) -> Vec<&Value> {
    match node {
        Value::Array(items) => items.iter().collect(),
        Value::Object(fields) => fields.values().collect(),
        _ => Vec::new(),
    }
}

/// Every descendant of `node` named `name` (every descendant for `None`), parents first.
fn descend<'a>(node: &'a Value, name: Option<&str>, out: &mut Vec<&'a Value>) {
    match (node, name) {
        (Value::Object(fields), Some(name)) => {
            out.extend(fields.get(name));
        }
        (Value::Object(_) | Value::Array(_), None) => out.extend(children(node)),
        _ => {}
    }
    for child in children(node) {
        descend(child, name, out);
    }
}

/// Python-style slice bounds, as Jayway reads them: the elements from `start` up to `end`
/// taken every `|step|`, reversed for a negative step.
fn slice(items: &[Value], start: Option<i64>, end: Option<i64>, step: i64) -> Vec<&Value> {
    let len = items.len();
    // Bounds work in usize so no user-supplied number can overflow: a negative bound
    // counts back from the end and anything outside the array clamps to its edges.
    let clamp = |i: i64| -> usize {
        let distance = usize::try_from(i.unsigned_abs()).unwrap_or(usize::MAX);
        if i < 0 {
            len.saturating_sub(distance)
        } else {
            distance.min(len)
        }
    };
    let (start, end) = (clamp(start.unwrap_or(0)), end.map_or(len, clamp));
    // A stride longer than the array reaches one element at most, so clamping it keeps
    // `step_by` well defined for huge steps without changing the result.
    let stride = usize::try_from(step.unsigned_abs())
        .unwrap_or(usize::MAX)
        .clamp(1, len.max(1));
    let mut out: Vec<&Value> = items
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .step_by(stride)
        .collect();
    if step < 0 {
        out.reverse();
    }
    out
}
