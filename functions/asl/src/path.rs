//! The JSONPath subset ASL definitions use: `$`, `.name`, `['name']`, `[index]`, and `$$` for
//! the context object. Reading a missing path is an error the caller turns into
//! `States.Runtime`; writing (ResultPath) creates intermediate objects as Step Functions does.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// A parsed path, relative to `$` (the input) or `$$` (the context object).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    pub context: bool,
    segments: Vec<Segment>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (false, rest)
        } else {
            return Err(format!("path {text:?} must start with $"));
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    if name.is_empty() || name == "*" {
                        return Err(format!("path {text:?}: unsupported or empty field name"));
                    }
                    segments.push(Segment::Field(name));
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| format!("path {text:?}: unclosed ["))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if let Some(quoted) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        segments.push(Segment::Field(quoted.to_string()));
                    } else {
                        let index = inner.parse::<usize>().map_err(|_| {
                            format!("path {text:?}: unsupported selector [{inner}]")
                        })?;
                        segments.push(Segment::Index(index));
                    }
                    i = close + 1;
                }
                other => return Err(format!("path {text:?}: unexpected character {other:?}")),
            }
        }
        Ok(Self { context, segments })
    }

    /// The value at this path, or `None` if any step is missing.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(root, |value, segment| match segment {
                Segment::Field(name) => value.as_object()?.get(name),
                Segment::Index(i) => value.as_array()?.get(*i),
            })
    }

    /// Writes `value` at this path inside `root`, creating objects on the way.
    pub fn set(&self, root: Value, value: Value) -> Result<Value, String> {
        if self.context {
            return Err("ResultPath cannot point into the context object".into());
        }
        fn set_in(node: Value, segments: &[Segment], value: Value) -> Result<Value, String> {
            let Some((first, rest)) = segments.split_first() else {
                return Ok(value);
            };
            match first {
                Segment::Field(name) => {
                    let mut object = match node {
                        Value::Object(map) => map,
                        Value::Null => Map::new(),
                        other => {
                            return Err(format!(
                                "cannot set field {name:?} on a {} value",
                                type_name(&other)
                            ))
                        }
                    };
                    let child = object.remove(name).unwrap_or(Value::Null);
                    object.insert(name.clone(), set_in(child, rest, value)?);
                    Ok(Value::Object(object))
                }
                Segment::Index(i) => match node {
                    Value::Array(mut items) if *i < items.len() => {
                        let child = std::mem::take(&mut items[*i]);
                        items[*i] = set_in(child, rest, value)?;
                        Ok(Value::Array(items))
                    }
                    other => Err(format!(
                        "cannot set index {i} on a {} value",
                        type_name(&other)
                    )),
                },
            }
        }
        set_in(root, &self.segments, value)
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_fields_indexes_and_quoted_names() {
        let doc = json!({"a": {"b c": [10, {"d": true}]}, "x": 1});
        let get = |p: &str| JsonPath::parse(p).unwrap().get(&doc).cloned();
        assert_eq!(get("$"), Some(doc.clone()));
        assert_eq!(get("$.x"), Some(json!(1)));
        assert_eq!(get("$.a['b c'][1].d"), Some(json!(true)));
        assert_eq!(get("$.a['b c'][5]"), None);
        assert_eq!(get("$.missing.deeper"), None);
        assert!(JsonPath::parse("$$.Map.Item.Value").unwrap().context);
    }

    #[test]
    fn rejects_what_it_does_not_implement() {
        for bad in ["a.b", "$.a[*]", "$..a", "$.a[?(@.x)]", "$.a[", "$."] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn writes_create_intermediate_objects() {
        let p = JsonPath::parse("$.result.inner").unwrap();
        assert_eq!(
            p.set(json!({"keep": 1}), json!(2)).unwrap(),
            json!({"keep": 1, "result": {"inner": 2}})
        );
        assert_eq!(
            JsonPath::parse("$")
                .unwrap()
                .set(json!(1), json!(2))
                .unwrap(),
            json!(2)
        );
        assert!(p.set(json!({"result": 5}), json!(1)).is_err());
    }
}
