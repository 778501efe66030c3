//! The syntax of JSONPath paths, reference paths and intrinsic function calls, and of the
//! payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`, …) whose
//! `key.$` fields hold them. Syntax only: nothing is evaluated.

use serde_json::Value;

use super::{codes, messages, Loc, Report};

/// What a path field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathKind {
    /// Any JSONPath: wildcards, deep scan, slices, unions, filters.
    Path,
    /// One node: names and indexes only; may read the context (`$$`) or a variable.
    Reference,
    /// Where a result is written (`ResultPath`): a reference path into the state's input.
    Result,
}

/// Whether `path` is a valid path of this kind.
pub(super) fn is_valid(path: &str, kind: PathKind) -> bool {
    let rest = if let Some(rest) = path.strip_prefix("$$") {
        if kind == PathKind::Result {
            return false;
        }
        rest
    } else if let Some(rest) = path.strip_prefix('$') {
        // `$name…` reads a variable (JSONPath Variables); nothing can be written to one.
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if name_len > 0 && kind == PathKind::Result {
            return false;
        }
        &rest[name_len..]
    } else {
        return false;
    };
    segments(rest, kind)
}

/// `.name`, `..name`, `.*`, `[…]`, one after another to the end.
fn segments(mut rest: &str, kind: PathKind) -> bool {
    let any = kind == PathKind::Path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("..") {
            if !any || after.starts_with('.') {
                return false;
            }
            rest = if after.starts_with('[') {
                after
            } else {
                match dot_name(after, true) {
                    Some(r) => r,
                    None => return false,
                }
            };
        } else if let Some(after) = rest.strip_prefix('.') {
            match dot_name(after, any) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if rest.starts_with('[') {
            match bracket(rest, any) {
                Some(r) => rest = r,
                None => return false,
            }
        } else {
            return false;
        }
    }
    true
}

/// A name after a dot (or `*` when wildcards are allowed); the rest after it.
fn dot_name(text: &str, wildcard: bool) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('*') {
        return wildcard.then_some(rest);
    }
    let end = text
        .find(|c: char| matches!(c, '.' | '[' | ']' | '(' | ')') || c.is_whitespace())
        .unwrap_or(text.len());
    (end > 0).then_some(&text[end..])
}

/// `[…]` at the start of `text`; the rest after it.
fn bracket(text: &str, any: bool) -> Option<&str> {
    let close = matching_bracket(text)?;
    let inner = text[1..close].trim();
    let rest = &text[close + 1..];
    let valid = if let Some(filter) = inner.strip_prefix('?') {
        any && filter.trim_start().starts_with('(') && filter.trim_end().ends_with(')')
    } else if inner == "*" {
        any
    } else if inner.starts_with('\'') || inner.starts_with('"') {
        let names = split_top(inner, ',');
        (any || names.len() == 1) && names.iter().all(|n| is_quoted(n.trim()))
    } else if inner.contains(':') {
        any && slice(inner)
    } else {
        let indexes = split_top(inner, ',');
        (any || indexes.len() == 1) && indexes.iter().all(|i| index(i.trim(), any))
    };
    valid.then_some(rest)
}

/// The byte offset of the `]` closing the `[` at 0, skipping quoted text and nested brackets.
fn matching_bracket(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on `sep` outside quotes.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == sep => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            Some(_) | None => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_quoted(text: &str) -> bool {
    text.len() >= 2
        && ((text.starts_with('\'') && text.ends_with('\''))
            || (text.starts_with('"') && text.ends_with('"')))
}

fn index(text: &str, negative: bool) -> bool {
    let digits = if negative {
        text.strip_prefix('-').unwrap_or(text)
    } else {
        text
    };
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// `start:end:step`, each part optional.
fn slice(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() <= 3
        && parts
            .iter()
            .all(|p| p.trim().is_empty() || index(p.trim(), true))
}

/// The intrinsic functions AWS provides.
const INTRINSICS: &[&str] = &[
    "Format",
    "StringToJson",
    "JsonToString",
    "Array",
    "ArrayPartition",
    "ArrayContains",
    "ArrayRange",
    "ArrayGetItem",
    "ArrayLength",
    "ArrayUnique",
    "Base64Encode",
    "Base64Decode",
    "Hash",
    "JsonMerge",
    "MathRandom",
    "MathAdd",
    "StringSplit",
    "UUID",
];

/// Whether `text` is one well-formed intrinsic function call, nested calls and all.
pub(super) fn is_intrinsic(text: &str) -> bool {
    let mut parser = Intrinsic { text, pos: 0 };
    parser.call() && parser.at_end()
}

struct Intrinsic<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Intrinsic<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos == self.text.len()
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_spaces();
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len_utf8();
        }
        found
    }

    /// `States.Name(arg, …)`.
    fn call(&mut self) -> bool {
        self.skip_spaces();
        let Some(after) = self.rest().strip_prefix("States.") else {
            return false;
        };
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        if !INTRINSICS.contains(&&after[..name_len]) {
            return false;
        }
        self.pos += "States.".len() + name_len;
        if !self.eat('(') {
            return false;
        }
        if self.eat(')') {
            return true;
        }
        loop {
            if !self.argument() {
                return false;
            }
            if self.eat(')') {
                return true;
            }
            if !self.eat(',') {
                return false;
            }
        }
    }

    fn argument(&mut self) -> bool {
        self.skip_spaces();
        let rest = self.rest();
        if rest.starts_with('\'') {
            self.string()
        } else if rest.starts_with("States.") {
            self.call()
        } else if rest.starts_with('$') {
            self.path()
        } else {
            self.literal()
        }
    }

    /// `'…'`, with `\` escaping the next character.
    fn string(&mut self) -> bool {
        let mut escaped = false;
        for (i, c) in self.rest().char_indices().skip(1) {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '\'' {
                self.pos += i + 1;
                return true;
            }
        }
        false
    }

    /// A path argument runs to the next top-level `,` or `)`.
    fn path(&mut self) -> bool {
        let rest = self.rest();
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']') => depth = depth.saturating_sub(1),
                (None, ')') if depth > 0 => depth -= 1,
                (None, ',' | ')') if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let path = rest[..end].trim_end();
        self.pos += end;
        is_valid(path, PathKind::Path)
    }

    /// A number, `true`, `false` or `null`.
    fn literal(&mut self) -> bool {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c == ',' || c == ')' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        self.pos += end;
        matches!(token, "true" | "false" | "null") || token.parse::<f64>().is_ok()
    }
}

/// A path field's value: `null` where allowed, else a path of `kind`.
pub(super) fn path_field(
    report: &mut Report,
    value: &Value,
    loc: &Loc,
    field: &str,
    kind: PathKind,
    nullable: bool,
) {
    if nullable && value.is_null() {
        return;
    }
    let valid = value.as_str().is_some_and(|p| is_valid(p, kind));
    if !valid {
        let message = match kind {
            PathKind::Path => messages::invalid_path(field),
            PathKind::Reference | PathKind::Result => messages::invalid_reference_path(field),
        };
        report.schema(loc, message);
    }
}

/// `ErrorPath`, `CausePath` and `key.$` fields: a path or an intrinsic function call.
pub(super) fn path_or_intrinsic(report: &mut Report, value: &Value, loc: &Loc, field: &str) {
    let valid = value
        .as_str()
        .is_some_and(|text| is_valid(text, PathKind::Path) || is_intrinsic(text));
    if !valid {
        report.schema(loc, messages::invalid_path_or_intrinsic(field));
    }
}

/// A payload template: every `key.$` holds a path or intrinsic; a plain key whose string
/// value looks like one is a `NO_DOLLAR` warning, since it stays a literal.
pub(super) fn template(report: &mut Report, value: &Value, loc: &Loc) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let field_loc = loc.field(key);
                if key.ends_with(".$") {
                    path_or_intrinsic(report, field, &field_loc, key);
                } else if field.as_str().is_some_and(looks_like_path) {
                    report.warning(codes::NO_DOLLAR, &field_loc, messages::no_dollar(key));
                } else {
                    template(report, field, &field_loc);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                template(report, item, &loc.index(i));
            }
        }
        _ => {}
    }
}

/// `$.x`, `$$.x`, `$` or `States.Fn(…)`: what a reader would take for a path.
pub(super) fn looks_like_path(text: &str) -> bool {
    text == "$"
        || text.starts_with("$.")
        || text.starts_with("$[")
        || text.starts_with("$$.")
        || (text.starts_with("States.") && text.ends_with(')') && is_intrinsic(text))
}
