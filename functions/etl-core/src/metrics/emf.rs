//! CloudWatch Embedded Metric Format (EMF): one JSON object that CloudWatch Logs turns into
//! metrics when a Lambda function writes it to stdout, with no API call and no
//! `cloudwatch:PutMetricData` permission. Pure: builds and checks documents, writes nothing.
//!
//! The rules enforced are the specification's ("Specification: Embedded metric format",
//! Amazon CloudWatch User Guide): a root object with `_aws` holding an integer `Timestamp`
//! (ms since the epoch) and `CloudWatchMetrics`, an array of directives, each with a
//! non-empty `Namespace`, `Dimensions` (at least one set, at most 30 keys each) and at most
//! 100 `Metrics` whose `Unit` is a CloudWatch unit; every referenced dimension is a root
//! string member and every metric a root number.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Our metrics' namespace.
pub const NAMESPACE: &str = "EtlPipelines";

/// Dimension keys.
pub const PIPELINE: &str = "Pipeline";
pub const STAGE: &str = "Stage";

/// The specification's limits.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
const MAX_NAME_CHARS: usize = 1024;
const MAX_DIMENSION_KEY_CHARS: usize = 250;
const MAX_DIMENSION_VALUE_CHARS: usize = 1024;

/// The units CloudWatch accepts (MetricDatum's `Unit`, as the EMF JSON schema lists them).
pub const VALID_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The units our metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Why a document is not valid EMF.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmfError {
    #[error("EMF: {0}")]
    Structure(String),
    #[error("EMF: {count} metrics in one directive, more than {MAX_METRICS_PER_DIRECTIVE}")]
    TooManyMetrics { count: usize },
    #[error("EMF: {count} dimension keys in one set, more than {MAX_DIMENSIONS_PER_SET}")]
    TooManyDimensions { count: usize },
    #[error("EMF: metric {metric:?} has unit {unit:?}, not a CloudWatch unit")]
    InvalidUnit { metric: String, unit: String },
    #[error("EMF: metric {0:?} has no numeric value on the root")]
    NotNumeric(String),
    #[error("EMF: dimension {0:?} has no string value (1-1024 characters) on the root")]
    BadDimension(String),
    #[error("EMF: {0:?} is declared twice")]
    Duplicate(String),
}

/// One metric directive: a namespace, one dimension set, and its metrics with their values.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    dimensions: Vec<&'static str>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl Directive {
    pub fn new(dimensions: &[&'static str]) -> Self {
        Directive {
            dimensions: dimensions.to_vec(),
            metrics: Vec::new(),
        }
    }

    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name, unit, value));
        self
    }

    /// Adds the metric only when there is a value: an unknown figure is left out rather than
    /// reported as 0.
    pub fn metric_opt(self, name: &'static str, unit: Unit, value: Option<f64>) -> Self {
        match value {
            Some(value) => self.metric(name, unit, value),
            None => self,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

/// An EMF document under construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    timestamp_ms: i64,
    dimensions: BTreeMap<&'static str, String>,
    directives: Vec<Directive>,
}

impl Document {
    pub fn new(timestamp_ms: i64) -> Self {
        Document {
            timestamp_ms,
            dimensions: BTreeMap::new(),
            directives: Vec::new(),
        }
    }

    pub fn dimension(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.insert(key, value.into());
        self
    }

    /// Adds a directive; one without metrics is dropped (EMF needs none).
    pub fn directive(mut self, directive: Directive) -> Self {
        if !directive.is_empty() {
            self.directives.push(directive);
        }
        self
    }

    /// The document as JSON, checked against the specification.
    pub fn to_json(&self) -> Result<Value, EmfError> {
        let mut root = Map::new();
        for (key, value) in &self.dimensions {
            root.insert((*key).to_string(), Value::String(value.clone()));
        }
        let mut directives = Vec::with_capacity(self.directives.len());
        for directive in &self.directives {
            let mut metrics = Vec::with_capacity(directive.metrics.len());
            for &(name, unit, value) in &directive.metrics {
                if root.contains_key(name) {
                    return Err(EmfError::Duplicate(name.to_string()));
                }
                root.insert(name.to_string(), number(name, value)?);
                metrics.push(json!({ "Name": name, "Unit": unit.as_str() }));
            }
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [directive.dimensions],
                "Metrics": metrics,
            }));
        }
        root.insert(
            "_aws".to_string(),
            json!({ "Timestamp": self.timestamp_ms, "CloudWatchMetrics": directives }),
        );
        let document = Value::Object(root);
        validate(&document)?;
        Ok(document)
    }

    /// The document as the one line CloudWatch Logs reads (no newline inside: JSON escapes
    /// any in the values).
    pub fn to_line(&self) -> Result<String, EmfError> {
        let document = self.to_json()?;
        serde_json::to_string(&document)
            .map_err(|e| EmfError::Structure(format!("not serialisable: {e}")))
    }
}

/// A whole value as a JSON integer (what a count reads as), anything else as a float; NaN and
/// the infinities are not JSON numbers.
fn number(name: &str, value: f64) -> Result<Value, EmfError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact in f64
    if value.fract() == 0.0 && value.abs() < EXACT {
        return Ok(Value::from(value as i64));
    }
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| EmfError::NotNumeric(name.to_string()))
}

fn structure(message: &str) -> EmfError {
    EmfError::Structure(message.to_string())
}

/// Checks a document against the EMF specification.
pub fn validate(document: &Value) -> Result<(), EmfError> {
    let root = document
        .as_object()
        .ok_or_else(|| structure("the root is not a JSON object"))?;
    let metadata = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or_else(|| structure("no `_aws` object on the root"))?;
    if !metadata.get("Timestamp").is_some_and(Value::is_i64) {
        return Err(structure("`_aws.Timestamp` is not an integer"));
    }
    let directives = metadata
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or_else(|| structure("`_aws.CloudWatchMetrics` is not an array"))?;
    for directive in directives {
        validate_directive(root, directive)?;
    }
    Ok(())
}

fn validate_directive(root: &Map<String, Value>, directive: &Value) -> Result<(), EmfError> {
    let namespace = directive
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or_else(|| structure("a directive has no `Namespace` string"))?;
    if namespace.is_empty() || namespace.chars().count() > MAX_NAME_CHARS {
        return Err(structure("a `Namespace` is empty or too long"));
    }
    let sets = directive
        .get("Dimensions")
        .and_then(Value::as_array)
        .filter(|sets| !sets.is_empty())
        .ok_or_else(|| structure("a directive has no `Dimensions` array of sets"))?;
    for set in sets {
        let keys = set
            .as_array()
            .ok_or_else(|| structure("a dimension set is not an array"))?;
        if keys.len() > MAX_DIMENSIONS_PER_SET {
            return Err(EmfError::TooManyDimensions { count: keys.len() });
        }
        for key in keys {
            let key = key
                .as_str()
                .filter(|k| !k.is_empty() && k.chars().count() <= MAX_DIMENSION_KEY_CHARS)
                .ok_or_else(|| structure("a dimension key is not a 1-250 character string"))?;
            let value_ok = root
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty() && v.chars().count() <= MAX_DIMENSION_VALUE_CHARS);
            if !value_ok {
                return Err(EmfError::BadDimension(key.to_string()));
            }
        }
    }
    let metrics = directive
        .get("Metrics")
        .and_then(Value::as_array)
        .ok_or_else(|| structure("a directive has no `Metrics` array"))?;
    if metrics.len() > MAX_METRICS_PER_DIRECTIVE {
        return Err(EmfError::TooManyMetrics {
            count: metrics.len(),
        });
    }
    for metric in metrics {
        validate_metric(root, metric)?;
    }
    Ok(())
}

fn validate_metric(root: &Map<String, Value>, metric: &Value) -> Result<(), EmfError> {
    let name = metric
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME_CHARS)
        .ok_or_else(|| structure("a metric has no 1-1024 character `Name`"))?;
    if let Some(unit) = metric.get("Unit") {
        let valid = unit.as_str().is_some_and(|u| VALID_UNITS.contains(&u));
        if !valid {
            return Err(EmfError::InvalidUnit {
                metric: name.to_string(),
                unit: unit.to_string(),
            });
        }
    }
    let numeric = match root.get(name) {
        Some(Value::Number(_)) => true,
        Some(Value::Array(values)) => values.len() <= 100 && values.iter().all(Value::is_number),
        _ => false,
    };
    if numeric {
        Ok(())
    } else {
        Err(EmfError::NotNumeric(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Document {
        Document::new(1_764_028_800_000)
            .dimension(PIPELINE, "hr")
            .dimension(STAGE, "hr-hire")
            .directive(
                Directive::new(&[PIPELINE, STAGE])
                    .metric("RowsIn", Unit::Count, 100.0)
                    .metric("Duration", Unit::Milliseconds, 1234.0)
                    .metric_opt("Bytes", Unit::Bytes, None),
            )
    }

    #[test]
    fn a_built_document_has_the_required_keys_and_values_on_the_root() {
        let doc = sample().to_json().unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_764_028_800_000_i64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Pipeline", "Stage"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "RowsIn", "Unit": "Count"},
                {"Name": "Duration", "Unit": "Milliseconds"}
            ])
        );
        assert_eq!(doc["Pipeline"], "hr");
        assert_eq!(doc["RowsIn"], 100);
        assert!(doc.get("Bytes").is_none(), "an unknown figure is left out");
        validate(&doc).unwrap();
    }

    #[test]
    fn the_line_is_one_json_object_without_a_newline() {
        let line = sample().dimension(STAGE, "multi\nline").to_line().unwrap();
        assert!(!line.contains('\n'));
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert!(parsed.is_object());
    }

    #[test]
    fn the_specification_example_is_valid() {
        // The example document of the specification itself.
        let example = json!({
          "_aws": {
            "Timestamp": 1_574_109_732_004_i64,
            "CloudWatchMetrics": [{
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}]
            }]
          },
          "functionVersion": "$LATEST",
          "time": 100,
          "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"
        });
        validate(&example).unwrap();
    }

    fn with(mutate: impl FnOnce(&mut Value)) -> Result<(), EmfError> {
        let mut doc = sample().to_json().unwrap();
        mutate(&mut doc);
        validate(&doc)
    }

    #[test]
    fn missing_required_keys_are_refused() {
        assert!(validate(&json!([1])).is_err());
        assert!(with(|d| {
            d.as_object_mut().unwrap().remove("_aws");
        })
        .is_err());
        assert!(with(|d| {
            d["_aws"].as_object_mut().unwrap().remove("Timestamp");
        })
        .is_err());
        assert!(with(|d| d["_aws"]["Timestamp"] = json!("2026-11-25")).is_err());
        assert!(with(|d| {
            d["_aws"]
                .as_object_mut()
                .unwrap()
                .remove("CloudWatchMetrics");
        })
        .is_err());
        assert!(with(|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).is_err());
        assert!(with(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([])).is_err());
        assert!(with(|d| {
            d.as_object_mut().unwrap().remove("Stage");
        })
        .is_err());
    }

    #[test]
    fn values_must_be_numbers_and_units_cloudwatch_units() {
        assert_eq!(
            with(|d| d["RowsIn"] = json!("100")),
            Err(EmfError::NotNumeric("RowsIn".into()))
        );
        assert!(with(|d| d["RowsIn"] = json!([1, 2, 3])).is_ok());
        assert!(matches!(
            with(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Rows")),
            Err(EmfError::InvalidUnit { .. })
        ));
        for unit in [Unit::Count, Unit::Bytes, Unit::Milliseconds] {
            assert!(VALID_UNITS.contains(&unit.as_str()));
        }
        let not_finite = Document::new(0)
            .dimension(PIPELINE, "hr")
            .directive(Directive::new(&[PIPELINE]).metric("X", Unit::Count, f64::NAN));
        assert_eq!(not_finite.to_json(), Err(EmfError::NotNumeric("X".into())));
    }

    #[test]
    fn limits_of_100_metrics_and_30_dimensions_hold() {
        let metrics: Vec<Value> = (0..101)
            .map(|i| json!({"Name": format!("m{i}"), "Unit": "Count"}))
            .collect();
        assert_eq!(
            with(|d| {
                for i in 0..101 {
                    d[format!("m{i}")] = json!(1);
                }
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(metrics);
            }),
            Err(EmfError::TooManyMetrics { count: 101 })
        );
        assert_eq!(
            with(|d| {
                let keys: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
                for key in &keys {
                    d[key] = json!("v");
                }
                d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([keys]);
            }),
            Err(EmfError::TooManyDimensions { count: 31 })
        );
    }

    #[test]
    fn a_metric_declared_twice_is_refused() {
        let doc = Document::new(0).dimension(PIPELINE, "hr").directive(
            Directive::new(&[PIPELINE])
                .metric("X", Unit::Count, 1.0)
                .metric("X", Unit::Count, 2.0),
        );
        assert_eq!(doc.to_json(), Err(EmfError::Duplicate("X".into())));
    }
}
