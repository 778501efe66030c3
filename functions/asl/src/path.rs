//! JSONPath as Step Functions reads it (Jayway's dialect): `$` the input, `$$` the context
//! object, `$name` a variable; then `.name`, `['name']`, `[index]`, and the selectors that
//! make a path indefinite: `[*]`, `.*`, `..name`, slices `[a:b:c]`, unions `[0,2]` and
//! filters `[?(@.x > 1)]`. A definite path names one node (missing is an error the caller
//! turns into `States.Runtime`); an indefinite one yields the array of what it matched,
//! possibly `[]`. Writing (ResultPath) takes definite paths only and creates intermediate
//! objects as Step Functions does.

mod filter;
mod parse;
mod query;

use serde_json::{Map, Value};

pub use filter::Filter;
pub use parse::is_name_char;

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Field(String),
    /// A negative index counts from the end.
    Index(i64),
    /// `[*]` or `.*`: every element or member value.
    Wildcard,
    /// `[start:end:step]`.
    Slice(Option<i64>, Option<i64>, i64),
    /// `[0,2]` or `['a','b']`.
    Union(Vec<Segment>),
    /// `..name` (`None` for `..*`): every descendant with that name.
    Descendants(Option<String>),
    Filter(Filter),
}

/// Where a path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    Input,
    Context,
    Variable(String),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    pub root: Root,
    segments: Vec<Segment>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse::parse(text)
    }

    /// A path that can only name one node: no wildcard, slice, union, filter or `..`.
    pub fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)))
    }

    /// What the path selects in `root`: the node for a definite path (`None` if missing),
    /// the array of matches for an indefinite one.
    pub fn query(&self, root: &Value) -> Option<Value> {
        if self.is_definite() {
            return self.get(root).cloned();
        }
        Some(Value::Array(
            query::select(&self.segments, root, root)
                .into_iter()
                .cloned()
                .collect(),
        ))
    }

    /// The node a definite path names, or `None` if any step is missing.
    fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(root, |value, segment| match segment {
                Segment::Field(name) => value.as_object()?.get(name),
                Segment::Index(i) => query::element(value.as_array()?, *i),
                _ => None,
            })
    }

    /// Why a definite path found nothing in `root`, as Jayway words it (the service's path
    /// errors quote it): "No results for path: $['a']['b']" when only the last step is
    /// missing, "Missing property in path $['a']" when an earlier one is.
    pub fn describe_miss(&self, root: &Value) -> String {
        let mut node = Some(root);
        for (i, segment) in self.segments.iter().enumerate() {
            node = node.and_then(|n| match segment {
                Segment::Field(name) => n.as_object()?.get(name),
                Segment::Index(index) => query::element(n.as_array()?, *index),
                _ => None,
            });
            if node.is_none() {
                let shown = self.normalized(i + 1);
                return if i + 1 == self.segments.len() {
                    format!("No results for path: {shown}")
                } else {
                    format!("Missing property in path {shown}")
                };
            }
        }
        format!(
            "No results for path: {}",
            self.normalized(self.segments.len())
        )
    }

    /// The first `count` segments in bracket notation: `$['a'][0]`.
    fn normalized(&self, count: usize) -> String {
        let mut out = match &self.root {
            Root::Input => "$".to_string(),
            Root::Context => "$$".to_string(),
            Root::Variable(name) => format!("${name}"),
        };
        for segment in self.segments.iter().take(count) {
            match segment {
                Segment::Field(name) => out.push_str(&format!("['{name}']")),
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                _ => out.push_str("[*]"),
            }
        }
        out
    }

    /// Writes `value` at this path inside `root`, creating objects on the way.
    pub fn set(&self, root: Value, value: Value) -> Result<Value, String> {
        if self.root != Root::Input {
            return Err("ResultPath can only point into the state input".into());
        }
        if !self.is_definite() {
            return Err("ResultPath must be a definite path".into());
        }
        set_in(root, &self.segments, value)
    }
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
        Segment::Index(i) => match (node, usize::try_from(*i)) {
            (Value::Array(mut items), Ok(i)) if i < items.len() => {
                let child = std::mem::take(&mut items[i]);
                items[i] = set_in(child, rest, value)?;
                Ok(Value::Array(items))
            }
            (other, _) => Err(format!(
                "cannot set index {i} on a {} value",
                type_name(&other)
            )),
        },
        _ => Err("ResultPath must be a definite path".into()),
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

    fn get(path: &str, doc: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().query(doc)
    }

    #[test]
    fn reads_fields_indexes_and_quoted_names() {
        let doc = json!({"a": {"b c": [10, {"d": true}]}, "x": 1});
        assert_eq!(get("$", &doc), Some(doc.clone()));
        assert_eq!(get("$.x", &doc), Some(json!(1)));
        assert_eq!(get("$.a['b c'][1].d", &doc), Some(json!(true)));
        assert_eq!(get("$.a['b c'][5]", &doc), None);
        assert_eq!(get("$.a['b c'][-2]", &doc), Some(json!(10)));
        assert_eq!(get("$.missing.deeper", &doc), None);
        assert_eq!(
            JsonPath::parse("$$.Map.Item.Value").unwrap().root,
            Root::Context
        );
        assert_eq!(
            JsonPath::parse("$var.x").unwrap().root,
            Root::Variable("var".into())
        );
    }

    #[test]
    fn indefinite_paths_yield_arrays() {
        let doc = json!({"items": [{"x": 0, "n": "a"}, {"x": 2, "n": "b"}, {"x": 5}], "o": {"p": 1, "q": 2}});
        assert_eq!(get("$.items[*].x", &doc), Some(json!([0, 2, 5])));
        assert_eq!(get("$.items[*].n", &doc), Some(json!(["a", "b"])));
        assert_eq!(get("$.items[1:].x", &doc), Some(json!([2, 5])));
        assert_eq!(get("$.items[:1].x", &doc), Some(json!([0])));
        assert_eq!(get("$.items[-1:].x", &doc), Some(json!([5])));
        assert_eq!(get("$.items[0,2].x", &doc), Some(json!([0, 5])));
        assert_eq!(get("$.items[?(@.x == 0)].n", &doc), Some(json!(["a"])));
        assert_eq!(get("$.items[?(@.x >= 2)].x", &doc), Some(json!([2, 5])));
        assert_eq!(get("$.items[?(@.n)].x", &doc), Some(json!([0, 2])));
        assert_eq!(
            get("$.items[?(@.n == 'b' || @.x < 1)].x", &doc),
            Some(json!([0, 2]))
        );
        assert_eq!(get("$.o.*", &doc), Some(json!([1, 2])));
        assert_eq!(get("$..x", &doc), Some(json!([0, 2, 5])));
        assert_eq!(get("$.nothing[*]", &doc), Some(json!([])));
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["a.b", "$.a[", "$.", "$.a[?(@.x ==)]", "$.a[1:2:0]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn extreme_slice_steps_neither_overflow_nor_loop() {
        let doc = json!([0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(get("$[1:5:9223372036854775807]", &doc), Some(json!([1])));
        assert_eq!(get("$[0:5:9223372036854775807]", &doc), Some(json!([0])));
        assert_eq!(get("$[0:5:-9223372036854775807]", &doc), Some(json!([0])));
        assert_eq!(get("$[1:6:2]", &doc), Some(json!([1, 3, 5])));
        assert_eq!(get("$[1:6:-2]", &doc), Some(json!([5, 3, 1])));
        assert_eq!(get("$[-9223372036854775808:2]", &doc), Some(json!([0, 1])));
        assert_eq!(get("$[5:1]", &doc), Some(json!([])));
        let err = JsonPath::parse("$[0:5:-9223372036854775808]").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(JsonPath::parse("$[0:5:0]").is_err());
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
        assert!(JsonPath::parse("$.a[*]")
            .unwrap()
            .set(json!({}), json!(1))
            .is_err());
    }
}
