//! Filter expressions, `[?(@.price < 10 && @.tag == 'x')]`: comparisons of `@` (the
//! candidate) or `$` paths with literals, combined with `&&`, `||`, `!` and parentheses.
//! A bare path tests that the node exists.

use std::cmp::Ordering;

use serde_json::Value;

use super::parse::Cursor;
use super::query::select;
use super::Segment;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Exists(Operand),
    Compare(Operand, Op, Operand),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `@…` (relative to the candidate) or `$…` (relative to the document).
    Path {
        current: bool,
        segments: Vec<Segment>,
    },
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Filter {
    pub fn holds(&self, candidate: &Value, root: &Value) -> bool {
        match self {
            Filter::Exists(operand) => operand.resolve(candidate, root).is_some(),
            Filter::Not(inner) => !inner.holds(candidate, root),
            Filter::And(a, b) => a.holds(candidate, root) && b.holds(candidate, root),
            Filter::Or(a, b) => a.holds(candidate, root) || b.holds(candidate, root),
            Filter::Compare(left, op, right) => {
                match (
                    left.resolve(candidate, root),
                    right.resolve(candidate, root),
                ) {
                    (Some(l), Some(r)) => compare(&l, *op, &r),
                    // A missing operand satisfies no comparison but "not equal".
                    _ => *op == Op::Ne,
                }
            }
        }
    }
}

impl Operand {
    fn resolve(&self, candidate: &Value, root: &Value) -> Option<Value> {
        match self {
            Operand::Literal(v) => Some(v.clone()),
            Operand::Path { current, segments } => {
                let start = if *current { candidate } else { root };
                let found = select(segments, start, root);
                found.first().map(|v| (*v).clone())
            }
        }
    }
}

fn compare(left: &Value, op: Op, right: &Value) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => (left == right).then_some(Ordering::Equal),
    };
    match op {
        Op::Eq => ordering == Some(Ordering::Equal),
        Op::Ne => ordering != Some(Ordering::Equal),
        Op::Lt => ordering == Some(Ordering::Less),
        Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ordering == Some(Ordering::Greater),
        Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

pub(super) fn parse(cursor: &mut Cursor<'_>) -> Result<Filter, String> {
    let mut left = conjunction(cursor)?;
    while eat(cursor, "||") {
        left = Filter::Or(Box::new(left), Box::new(conjunction(cursor)?));
    }
    Ok(left)
}

fn conjunction(cursor: &mut Cursor<'_>) -> Result<Filter, String> {
    let mut left = unary(cursor)?;
    while eat(cursor, "&&") {
        left = Filter::And(Box::new(left), Box::new(unary(cursor)?));
    }
    Ok(left)
}

fn unary(cursor: &mut Cursor<'_>) -> Result<Filter, String> {
    skip_spaces(cursor);
    if cursor.peek() == Some('!') && cursor.chars.get(cursor.pos + 1) != Some(&'=') {
        cursor.pos += 1;
        return Ok(Filter::Not(Box::new(unary(cursor)?)));
    }
    if eat(cursor, "(") {
        let inner = parse(cursor)?;
        if !eat(cursor, ")") {
            return Err(cursor.error("expected ')'"));
        }
        return Ok(inner);
    }
    let left = operand(cursor)?;
    let Some(op) = operator(cursor) else {
        return match left {
            Operand::Path { .. } => Ok(Filter::Exists(left)),
            Operand::Literal(_) => Err(cursor.error("a literal alone is not a filter")),
        };
    };
    Ok(Filter::Compare(left, op, operand(cursor)?))
}

fn operator(cursor: &mut Cursor<'_>) -> Option<Op> {
    [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .into_iter()
    .find_map(|(text, op)| eat(cursor, text).then_some(op))
}

fn operand(cursor: &mut Cursor<'_>) -> Result<Operand, String> {
    skip_spaces(cursor);
    match cursor.peek() {
        Some(c @ ('@' | '$')) => {
            cursor.pos += 1;
            let mut segments = Vec::new();
            while matches!(cursor.peek(), Some('.' | '[')) {
                segments.push(cursor.segment()?);
            }
            Ok(Operand::Path {
                current: c == '@',
                segments,
            })
        }
        Some('\'' | '"') => Ok(Operand::Literal(Value::String(cursor.quoted()?))),
        Some(_) => {
            let text = cursor.take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '.'));
            serde_json::from_str(&text)
                .map(Operand::Literal)
                .map_err(|_| cursor.error(&format!("{text:?} is not a literal")))
        }
        None => Err(cursor.error("unexpected end of filter")),
    }
}

fn skip_spaces(cursor: &mut Cursor<'_>) {
    while cursor.peek().is_some_and(char::is_whitespace) {
        cursor.pos += 1;
    }
}

fn eat(cursor: &mut Cursor<'_>, text: &str) -> bool {
    skip_spaces(cursor);
    let len = text.chars().count();
    let matches = cursor
        .chars
        .get(cursor.pos..cursor.pos + len)
        .is_some_and(|found| found.iter().copied().eq(text.chars()));
    if matches {
        cursor.pos += len;
    }
    matches
}
