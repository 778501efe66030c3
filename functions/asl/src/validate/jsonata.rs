//! The query language: which one a state uses, fields of the other one, and whether each
//! `{% … %}` expression is balanced (a full JSONata parse is the executor's business).
//!
//! As AWS resolves it: a state inherits the machine's top-level `QueryLanguage`, not its
//! parent Map's or Parallel's; only the exact string `JSONPath` means JSONPath, any other
//! value means JSONata (and is reported against the enum); a JSONata machine cannot declare
//! a state JSONPath.

use serde_json::{Map, Value};

use super::{codes, messages, Lang, Loc, Report};

const LANGUAGES: &[&str] = &["JSONPath", "JSONata"];

/// The language a `QueryLanguage` field declares, if it is there.
pub(super) fn declared(report: &mut Report, value: Option<&Value>, loc: &Loc) -> Option<Lang> {
    let value = value?;
    match value.as_str() {
        Some("JSONPath") => Some(Lang::JsonPath),
        Some("JSONata") => Some(Lang::Jsonata),
        Some(_) => {
            report.schema(loc, messages::one_of(LANGUAGES));
            Some(Lang::Jsonata)
        }
        None => {
            report.schema(loc, messages::expected_type("STRING"));
            Some(Lang::Jsonata)
        }
    }
}

/// A state's language, and whether it is a refused downgrade (whose other-language fields are
/// then not reported on top of it, as AWS does).
pub(super) fn state_language(
    report: &mut Report,
    state: &Map<String, Value>,
    loc: &Loc,
    machine: Lang,
) -> (Lang, bool) {
    match declared(
        report,
        state.get("QueryLanguage"),
        &loc.field("QueryLanguage"),
    ) {
        None => (machine, false),
        Some(Lang::JsonPath) if machine == Lang::Jsonata => {
            report.schema(loc, messages::QUERY_LANGUAGE_DOWNGRADE);
            (Lang::JsonPath, true)
        }
        Some(lang) => (lang, false),
    }
}

/// The fields of `allowed` that belong to the other language, reported at the state.
pub(super) fn other_language_fields(
    report: &mut Report,
    object: &Map<String, Value>,
    loc: &Loc,
    lang: Lang,
    allowed: &[&str],
) {
    for field in lang.other().own_fields() {
        if object.contains_key(*field) && allowed.contains(field) {
            report.schema(
                loc,
                messages::wrong_language(lang.name(), field, lang.other().name()),
            );
        }
    }
}

/// Whether `field` may be read in a state of `lang`.
pub(super) fn belongs_to(field: &str, lang: Lang) -> bool {
    lang.allows(field)
}

/// Every `{% … %}` string in a JSONata state's fields, nested states excepted.
pub(super) fn expressions(report: &mut Report, state: &Map<String, Value>, loc: &Loc) {
    for (field, value) in state {
        if !matches!(field.as_str(), "Branches" | "ItemProcessor" | "Iterator") {
            walk(report, value, &loc.field(field));
        }
    }
}

fn walk(report: &mut Report, value: &Value, loc: &Loc) {
    match value {
        Value::String(text) => {
            let inner = text.strip_prefix("{%").and_then(|t| t.strip_suffix("%}"));
            if let Some(problem) = inner.and_then(unbalanced) {
                report.error(codes::INVALID_JSONATA_EXPRESSION, loc, problem);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(report, item, &loc.index(i));
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                walk(report, item, &loc.field(key));
            }
        }
        _ => {}
    }
}

/// What is wrong with an expression's brackets, quotes or comments, in the words of the
/// JSONata parser AWS runs (`Unexpected end of expression`, `Expected "]", got ")"`).
pub(super) fn unbalanced(expression: &str) -> Option<String> {
    let mut open: Vec<char> = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' if !skip_quoted(&mut chars, c) => {
                return Some(if c == '`' {
                    "Quoted property name must be terminated with a backquote (`)".into()
                } else {
                    "String literal must be terminated by a matching quote".into()
                });
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                if !skip_comment(&mut chars) {
                    return Some("Comment has no closing tag".into());
                }
            }
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let Some(opened) = open.pop() else {
                    return Some(format!("Syntax error: \"{c}\""));
                };
                let expected = closing(opened);
                if c != expected {
                    return Some(format!("Expected \"{expected}\", got \"{c}\""));
                }
            }
            _ => {}
        }
    }
    (!open.is_empty() || expression.trim().is_empty())
        .then(|| "Unexpected end of expression".to_string())
}

fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Past the closing `quote`; false when the text ends first.
fn skip_quoted(chars: &mut impl Iterator<Item = char>, quote: char) -> bool {
    let mut escaped = false;
    for c in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote != '`' {
            escaped = true;
        } else if c == quote {
            return true;
        }
    }
    false
}

/// Past the `*/`; false when the text ends first.
fn skip_comment(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) -> bool {
    while let Some(c) = chars.next() {
        if c == '*' && chars.peek() == Some(&'/') {
            chars.next();
            return true;
        }
    }
    false
}
