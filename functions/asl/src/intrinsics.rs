//! Intrinsic functions (`States.Format(...)` and friends) in `.$` fields. The encoding,
//! hashing and random functions are in [`encoding`].

mod encoding;

use serde_json::{json, Value};

use crate::path::{type_name, JsonPath};
use crate::template::{evaluate as eval_path, Roots};

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(Value),
    Path(String),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    name: String,
    args: Vec<Arg>,
}

pub fn is_intrinsic(text: &str) -> bool {
    text.starts_with("States.")
}

/// Evaluates an intrinsic call against the state input, the context object and variables.
pub fn evaluate(text: &str, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    eval_call(&parse_call(text)?, input, roots)
}

/// Checks an intrinsic call's syntax, when the definition is loaded.
pub fn parse(text: &str) -> Result<(), String> {
    parse_call(text).map(|_| ())
}

fn parse_call(text: &str) -> Result<Call, String> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let call = parser.call()?;
    parser.skip_spaces();
    if parser.pos != parser.chars.len() {
        return Err(format!(
            "intrinsic {text:?}: unexpected text after the call"
        ));
    }
    Ok(call)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} at position {}", self.pos))
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        self.skip_spaces();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        self.expect('(')?;
        let mut args = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(format!("expected ',' or ')' at position {}", self.pos)),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_spaces();
        match self.peek() {
            Some('\'') => self.string().map(|s| Arg::Literal(Value::String(s))),
            Some('$') => {
                let start = self.pos;
                let mut in_brackets = false;
                while let Some(c) = self.peek() {
                    match c {
                        '[' => in_brackets = true,
                        ']' => in_brackets = false,
                        ',' | ')' if !in_brackets => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                Ok(Arg::Path(
                    self.chars[start..self.pos]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string(),
                ))
            }
            Some('S') => self.call().map(Arg::Call),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && c != ')') {
                    self.pos += 1;
                }
                let raw: String = self.chars[start..self.pos].iter().collect();
                let value: Value = serde_json::from_str(raw.trim())
                    .map_err(|_| format!("argument {raw:?} is not a literal"))?;
                Ok(Arg::Literal(value))
            }
            None => Err("unexpected end of intrinsic".into()),
        }
    }

    /// A single-quoted string; `\'`, `\\`, `\{` and `\}` are escapes. Braces keep their
    /// backslash so `States.Format` can tell literal braces from placeholders.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => match self.peek() {
                    Some(next @ ('\'' | '\\')) => {
                        out.push(next);
                        self.pos += 1;
                    }
                    Some(next @ ('{' | '}')) => {
                        out.push('\\');
                        out.push(next);
                        self.pos += 1;
                    }
                    _ => out.push('\\'),
                },
                '\'' => return Ok(out),
                other => out.push(other),
            }
        }
        Err("unterminated string".into())
    }
}

fn eval_arg(arg: &Arg, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    match arg {
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Path(p) => eval_path(&JsonPath::parse(p)?, input, roots)
            .ok_or_else(|| format!("the JSONPath '{p}' could not be found")),
        Arg::Call(call) => eval_call(call, input, roots),
    }
}

/// An intrinsic family: answers for the functions it knows, `Ok(None)` for the rest.
type Family = fn(&Args) -> Result<Option<Value>, String>;

const FAMILIES: &[Family] = &[
    json_functions,
    array_functions,
    array_builders,
    math_and_string_functions,
    encoding::functions,
];

fn eval_call(call: &Call, input: &Value, roots: Roots<'_>) -> Result<Value, String> {
    let values = call
        .args
        .iter()
        .map(|a| eval_arg(a, input, roots))
        .collect::<Result<Vec<_>, _>>()?;
    let args = Args {
        name: &call.name,
        values,
    };
    for family in FAMILIES {
        if let Some(value) = family(&args)? {
            return Ok(value);
        }
    }
    Err(format!("intrinsic function {} is not supported", call.name))
}

/// A call's evaluated arguments. The checks name the function in their errors.
struct Args<'a> {
    name: &'a str,
    values: Vec<Value>,
}

impl Args<'_> {
    /// The arguments, which must be exactly `N`.
    fn exactly<const N: usize>(&self) -> Result<&[Value; N], String> {
        self.values.as_slice().try_into().map_err(|_| {
            format!(
                "{} takes {N} argument(s), got {}",
                self.name,
                self.values.len()
            )
        })
    }

    fn string<'v>(&self, v: &'v Value) -> Result<&'v str, String> {
        v.as_str()
            .ok_or_else(|| format!("{}: expected a string, got {}", self.name, type_name(v)))
    }

    fn array<'v>(&self, v: &'v Value) -> Result<&'v [Value], String> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| format!("{}: expected an array, got {}", self.name, type_name(v)))
    }

    /// A number rounded half up, as the service rounds `States.MathAdd`'s arguments
    /// (1.5 → 2, -1.5 → -1).
    fn rounded(&self, v: &Value) -> Result<i64, String> {
        match v.as_i64() {
            Some(i) => Ok(i),
            None => v
                .as_f64()
                .map(|f| (f + 0.5).floor() as i64)
                .ok_or_else(|| format!("{}: expected a number, got {v}", self.name)),
        }
    }

    fn integer(&self, v: &Value) -> Result<i64, String> {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("{}: expected an integer, got {v}", self.name))
    }
}

/// `States.Format` and the JSON conversions.
fn json_functions(args: &Args) -> Result<Option<Value>, String> {
    let name = args.name;
    Ok(Some(match name {
        "States.Format" => {
            let (template, values) = args
                .values
                .split_first()
                .ok_or_else(|| format!("{name} needs a template"))?;
            format(args.string(template)?, values)?
        }
        "States.StringToJson" => {
            let [text] = args.exactly()?;
            string_to_json(args.string(text)?).map_err(|e| format!("{name}: {e}"))?
        }
        "States.JsonToString" => {
            let [value] = args.exactly()?;
            Value::String(value.to_string())
        }
        "States.JsonMerge" => {
            let [left, right, deep] = args.exactly()?;
            // The service only merges shallowly, and says so by refusing `true`.
            if deep.as_bool() != Some(false) {
                return Err(format!(
                    "{name}: the third argument must be false (only shallow merging is supported)"
                ));
            }
            match (left, right) {
                (Value::Object(_), Value::Object(_)) => merge(left.clone(), right),
                _ => return Err(format!("{name}: both arguments must be objects")),
            }
        }
        _ => return Ok(None),
    }))
}

/// The functions that read arrays.
fn array_functions(args: &Args) -> Result<Option<Value>, String> {
    Ok(Some(match args.name {
        "States.Array" => Value::Array(args.values.clone()),
        "States.ArrayLength" => {
            let [items] = args.exactly()?;
            json!(args.array(items)?.len())
        }
        "States.ArrayGetItem" => {
            let [items, index] = args.exactly()?;
            let (items, index) = (args.array(items)?, args.integer(index)?);
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| format!("{}: index {index} out of range", args.name))?
        }
        "States.ArrayContains" => {
            let [items, item] = args.exactly()?;
            Value::Bool(args.array(items)?.contains(item))
        }
        "States.ArrayUnique" => {
            let [items] = args.exactly()?;
            let mut seen = Vec::new();
            for item in args.array(items)? {
                if !seen.contains(item) {
                    seen.push(item.clone());
                }
            }
            Value::Array(seen)
        }
        _ => return Ok(None),
    }))
}

/// The functions that make arrays of numbers or of chunks.
fn array_builders(args: &Args) -> Result<Option<Value>, String> {
    let name = args.name;
    Ok(Some(match name {
        "States.ArrayRange" => {
            let [start, end, step] = args.exactly()?;
            let (start, end, step) = (
                args.integer(start)?,
                args.integer(end)?,
                args.integer(step)?,
            );
            if step == 0 {
                return Err(format!("{name}: step must not be 0"));
            }
            let count = (end - start) / step + 1;
            if !(0..=1000).contains(&count) {
                return Err(format!("{name}: would create {count} items (limit 1000)"));
            }
            Value::Array((0..count).map(|i| json!(start + i * step)).collect())
        }
        "States.ArrayPartition" => {
            let [items, size] = args.exactly()?;
            let size = args.integer(size)?;
            if size <= 0 {
                return Err(format!("{name}: chunk size must be positive"));
            }
            Value::Array(
                args.array(items)?
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            )
        }
        _ => return Ok(None),
    }))
}

fn math_and_string_functions(args: &Args) -> Result<Option<Value>, String> {
    Ok(Some(match args.name {
        "States.MathAdd" => {
            let [a, b] = args.exactly()?;
            json!(args.rounded(a)? + args.rounded(b)?)
        }
        "States.StringSplit" => {
            let [text, delimiters] = args.exactly()?;
            let text = args.string(text)?;
            let delimiters: Vec<char> = args.string(delimiters)?.chars().collect();
            Value::Array(
                text.split(|c| delimiters.contains(&c))
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )
        }
        _ => return Ok(None),
    }))
}

/// `States.JsonMerge`: the keys of `right` replace those of `left`.
fn merge(left: Value, right: &Value) -> Value {
    match (left, right) {
        (Value::Object(mut into), Value::Object(from)) => {
            into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(into)
        }
        (_, right) => right.clone(),
    }
}

/// `States.StringToJson`: blank text is `null`, as on the service.
fn string_to_json(text: &str) -> Result<Value, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_str(text)?;
    // Java's parser reads "-0" as the integer 0.
    Ok(match value.as_f64() {
        Some(f) if f == 0.0 && value.is_f64() && !text.contains(['.', 'e', 'E']) => json!(0),
        _ => value,
    })
}

/// How `States.Format` renders an argument: strings as they are, objects and arrays the
/// way Java prints maps and lists (`{a=1, b=[x, y]}`), other values as JSON.
fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(format_value).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn format(template: &str, values: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut values = values.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('{' | '}')) => {
                out.extend(chars.next());
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let value = values
                    .next()
                    .ok_or("States.Format: more {} than arguments")?;
                out.push_str(&format_value(value));
            }
            other => out.push(other),
        }
    }
    if values.next().is_some() {
        return Err("States.Format: more arguments than {}".into());
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::Variables;

    fn eval(text: &str) -> Result<Value, String> {
        let input = json!({"name": "Ana", "n": 3, "list": [1, 2, 2], "doc": "{\"a\":1}"});
        let context = json!({"Execution": {"Name": "exec-1"}});
        let vars = Variables::default();
        evaluate(
            text,
            &input,
            Roots {
                context: &context,
                vars: &vars,
            },
        )
    }

    #[test]
    fn formats_strings_paths_and_nested_calls() {
        assert_eq!(
            eval("States.Format('Hi {}, n={}', $.name, $.n)").unwrap(),
            json!("Hi Ana, n=3")
        );
        assert_eq!(
            eval("States.Format('{}-{}', $$.Execution.Name, States.ArrayLength($.list))").unwrap(),
            json!("exec-1-3")
        );
        assert_eq!(
            eval(r"States.Format('it\'s \{literal\} {}', 'x')").unwrap(),
            json!("it's {literal} x")
        );
        assert!(eval("States.Format('{} {}', 'one')").is_err());
    }

    #[test]
    fn array_and_json_helpers() {
        assert_eq!(
            eval("States.Array($.n, 'a', null)").unwrap(),
            json!([3, "a", null])
        );
        assert_eq!(eval("States.ArrayUnique($.list)").unwrap(), json!([1, 2]));
        assert_eq!(
            eval("States.ArrayRange(1, 9, 4)").unwrap(),
            json!([1, 5, 9])
        );
        assert_eq!(
            eval("States.ArrayPartition($.list, 2)").unwrap(),
            json!([[1, 2], [2]])
        );
        assert_eq!(eval("States.ArrayGetItem($.list, 0)").unwrap(), json!(1));
        assert_eq!(
            eval("States.ArrayContains($.list, 2)").unwrap(),
            json!(true)
        );
        assert_eq!(eval("States.StringToJson($.doc)").unwrap(), json!({"a": 1}));
        assert_eq!(
            eval("States.JsonToString($.list)").unwrap(),
            json!("[1,2,2]")
        );
        assert_eq!(eval("States.MathAdd($.n, -1)").unwrap(), json!(2));
        let input = json!({"a": {"x": 1, "y": 2}, "b": {"a": {"y": 3}, "c": 4}});
        let ctx = json!({});
        let vars = Variables::default();
        let ctx = Roots {
            context: &ctx,
            vars: &vars,
        };
        assert_eq!(
            evaluate("States.JsonMerge($.a, $.b, false)", &input, ctx).unwrap(),
            json!({"x": 1, "y": 2, "a": {"y": 3}, "c": 4})
        );
        let nested = json!({"l": {"p": {"x": 1, "y": 2}}, "r": {"p": {"y": 3}}});
        assert!(evaluate("States.JsonMerge($.l, $.r, true)", &nested, ctx).is_err());
        assert_eq!(
            evaluate("States.JsonMerge($.l, $.r, false)", &nested, ctx).unwrap(),
            json!({"p": {"y": 3}})
        );
        assert_eq!(
            eval("States.StringSplit('a,b,,c', ',')").unwrap(),
            json!(["a", "b", "c"])
        );
    }

    #[test]
    fn errors_are_descriptive() {
        assert!(eval("States.Nope(1)")
            .unwrap_err()
            .contains("not supported"));
        assert!(eval("States.ArrayLength($.name)")
            .unwrap_err()
            .contains("array"));
        assert!(eval("States.ArrayLength($.missing)")
            .unwrap_err()
            .contains("could not be found"));
        assert!(eval("States.ArrayRange(0, 5000, 1)").is_err());
    }
}
