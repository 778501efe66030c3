//! The distributed Map's fields (`ItemReader`, `ItemBatcher`, `ResultWriter`, the failure
//! tolerance, `Label`) and `ProcessorConfig`, as typed data, with the checks made at load.
//!
//! Sources (AWS Step Functions developer guide):
//! - "Using Map state in Distributed mode": <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>
//! - "ItemReader (Map)": <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html>
//! - "ItemBatcher (Map)": <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html>
//! - "ResultWriter (Map)": <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html>
//! - "Tolerated failure threshold": <https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html>

use serde::Deserialize;
use serde_json::Value;

use super::checks::{optional_path, template};
use super::MapState;
use crate::limits::PAYLOAD_LIMIT_BYTES;

pub const GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
pub const LIST_OBJECTS_V2: &str = "arn:aws:states:::s3:listObjectsV2";
pub const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

/// The longest `Label`.
const LABEL_LIMIT_CHARS: usize = 40;

/// The Map fields only a distributed Map may carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DistributedFields {
    #[serde(default)]
    pub item_reader: Option<ItemReader>,
    #[serde(default)]
    pub item_batcher: Option<ItemBatcher>,
    #[serde(default)]
    pub result_writer: Option<ResultWriter>,
    #[serde(default)]
    pub tolerated_failure_percentage: Option<f64>,
    #[serde(default)]
    pub tolerated_failure_percentage_path: Option<String>,
    #[serde(default)]
    pub tolerated_failure_count: Option<u64>,
    #[serde(default)]
    pub tolerated_failure_count_path: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ItemReader {
    pub resource: String,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub reader_config: ReaderConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    #[serde(rename = "InputType", default)]
    pub input_type: Option<InputType>,
    #[serde(rename = "CSVHeaderLocation", default)]
    pub csv_header_location: Option<CsvHeaderLocation>,
    #[serde(rename = "CSVHeaders", default)]
    pub csv_headers: Option<Vec<String>>,
    #[serde(rename = "CSVDelimiter", default)]
    pub csv_delimiter: Option<CsvDelimiter>,
    #[serde(rename = "MaxItems", default)]
    pub max_items: Option<u64>,
    #[serde(rename = "MaxItemsPath", default)]
    pub max_items_path: Option<String>,
}

/// `ReaderConfig.InputType`. `MANIFEST` (S3 inventory) and `PARQUET` parse so that they can
/// be refused by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InputType {
    Json,
    Jsonl,
    Csv,
    Manifest,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CsvHeaderLocation {
    FirstRow,
    Given,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CsvDelimiter {
    Comma,
    Pipe,
    Semicolon,
    Space,
    Tab,
}

impl CsvDelimiter {
    pub fn byte(self) -> u8 {
        match self {
            CsvDelimiter::Comma => b',',
            CsvDelimiter::Pipe => b'|',
            CsvDelimiter::Semicolon => b';',
            CsvDelimiter::Space => b' ',
            CsvDelimiter::Tab => b'\t',
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ItemBatcher {
    #[serde(default)]
    pub max_items_per_batch: Option<u64>,
    #[serde(default)]
    pub max_items_per_batch_path: Option<String>,
    #[serde(default)]
    pub max_input_bytes_per_batch: Option<u64>,
    #[serde(default)]
    pub max_input_bytes_per_batch_path: Option<String>,
    #[serde(default)]
    pub batch_input: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ResultWriter {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub writer_config: Option<WriterConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct WriterConfig {
    #[serde(default)]
    pub transformation: Option<Transformation>,
    #[serde(default)]
    pub output_type: Option<OutputType>,
}

/// What each child's entry in the results holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Transformation {
    /// The child's output with its execution metadata.
    None,
    /// The child's output only.
    Compact,
    /// The outputs, with arrays spliced in.
    Flatten,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OutputType {
    Json,
    Jsonl,
}

/// `ItemProcessor.ProcessorConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ProcessorConfig {
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub execution_type: Option<ExecutionType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    Inline,
    Distributed,
}

/// How each child workflow runs: `STANDARD` children may be redriven, `EXPRESS` ones not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionType {
    Standard,
    Express,
}

impl MapState {
    /// The item processor's `ProcessorConfig`; an invalid one was refused at load.
    pub fn processor_config(&self) -> ProcessorConfig {
        self.item_processor
            .processor_config
            .as_ref()
            .and_then(|c| ProcessorConfig::deserialize(c).ok())
            .unwrap_or_default()
    }

    pub fn is_distributed(&self) -> bool {
        self.processor_config().mode == Some(Mode::Distributed)
    }
}

/// The checks on a Map state's raw JSON, before it is typed: the distributed fields only in
/// a distributed Map, each in its documented shape (so that a refusal names the field).
pub fn check_raw(state: &serde_json::Map<String, Value>) -> Result<(), String> {
    let config = state
        .get("ItemProcessor")
        .or_else(|| state.get("Iterator"))
        .and_then(|p| p.get("ProcessorConfig"));
    let config = match config {
        None => ProcessorConfig::default(),
        Some(raw) => ProcessorConfig::deserialize(raw)
            .map_err(|e| format!("ItemProcessor.ProcessorConfig: {e}"))?,
    };
    if config.mode != Some(Mode::Distributed) {
        if config.execution_type.is_some() {
            return Err("ProcessorConfig: ExecutionType is only for Mode DISTRIBUTED".into());
        }
        return match DISTRIBUTED_FIELDS.iter().find(|f| state.contains_key(**f)) {
            Some(name) => Err(format!(
                "the field {name:?} belongs to the distributed Map: set ItemProcessor.ProcessorConfig.Mode to DISTRIBUTED"
            )),
            None => Ok(()),
        };
    }
    if config.execution_type.is_none() {
        return Err(
            "ProcessorConfig: ExecutionType (STANDARD or EXPRESS) is required with Mode DISTRIBUTED"
                .into(),
        );
    }
    let shape = |name: &str, result: Result<(), serde_json::Error>| {
        result.map_err(|e| format!("{name}: {e}"))
    };
    if let Some(raw) = state.get("ItemReader") {
        shape("ItemReader", ItemReader::deserialize(raw).map(drop))?;
    }
    if let Some(raw) = state.get("ItemBatcher") {
        shape("ItemBatcher", ItemBatcher::deserialize(raw).map(drop))?;
    }
    if let Some(raw) = state.get("ResultWriter") {
        shape("ResultWriter", ResultWriter::deserialize(raw).map(drop))?;
    }
    Ok(())
}

/// The checks on a distributed Map's typed fields (the raw ones passed [`check_raw`]).
pub fn check(map: &MapState) -> Result<(), String> {
    let fields = &map.distributed;
    if let Some(reader) = &fields.item_reader {
        if map.items_path.is_some() {
            return Err(
                "ItemsPath and ItemReader together are not supported locally: the items come from the ItemReader"
                    .into(),
            );
        }
        check_reader(reader).map_err(|e| format!("ItemReader: {e}"))?;
    }
    if let Some(batcher) = &fields.item_batcher {
        check_batcher(batcher).map_err(|e| format!("ItemBatcher: {e}"))?;
    }
    if let Some(writer) = &fields.result_writer {
        check_writer(writer).map_err(|e| format!("ResultWriter: {e}"))?;
    }
    check_tolerance(fields)?;
    if let Some(label) = &fields.label {
        check_label(label)?;
    }
    Ok(())
}

/// The Map fields only a distributed Map may carry.
pub const DISTRIBUTED_FIELDS: &[&str] = crate::fields::DISTRIBUTED_MAP;

/// A value and its `…Path` variant exclude each other.
fn one_of<T>(value: Option<&T>, path: Option<&str>, name: &str) -> Result<(), String> {
    if value.is_some() && path.is_some() {
        return Err(format!("{name} and {name}Path exclude each other"));
    }
    optional_path(path)
}

/// The `Parameters` keys (without `.$`) outside `allowed`, for the refusal.
fn parameter_names_outside(parameters: Option<&Value>, allowed: &[&str]) -> Option<String> {
    parameters?
        .as_object()?
        .keys()
        .map(|k| k.strip_suffix(".$").unwrap_or(k))
        .find(|k| !allowed.contains(k))
        .map(ToString::to_string)
}

fn check_reader(reader: &ItemReader) -> Result<(), String> {
    let config = &reader.reader_config;
    let allowed: &[&str] = match reader.resource.as_str() {
        GET_OBJECT => &["Bucket", "Key"],
        LIST_OBJECTS_V2 => &["Bucket", "Prefix"],
        other => {
            return Err(format!(
                "the Resource {other:?} is not supported locally (only {GET_OBJECT} and {LIST_OBJECTS_V2})"
            ))
        }
    };
    template(reader.parameters.as_ref(), "Parameters")?;
    if !reader.parameters.as_ref().is_some_and(Value::is_object) {
        return Err("Parameters with the Bucket is required".into());
    }
    if let Some(name) = parameter_names_outside(reader.parameters.as_ref(), allowed) {
        return Err(format!(
            "the parameter {name:?} is not supported locally for {} (only {})",
            reader.resource,
            allowed.join(", ")
        ));
    }
    match (reader.resource.as_str(), config.input_type) {
        (GET_OBJECT, None) => return Err(format!("ReaderConfig.InputType is required with {GET_OBJECT}")),
        (GET_OBJECT, Some(InputType::Manifest | InputType::Parquet)) => {
            return Err(
                "ReaderConfig.InputType MANIFEST and PARQUET are not supported locally (JSON, JSONL and CSV are)"
                    .into(),
            )
        }
        (LIST_OBJECTS_V2, Some(_)) => {
            return Err(format!("ReaderConfig.InputType does not apply to {LIST_OBJECTS_V2}"))
        }
        _ => {}
    }
    check_csv(config)?;
    one_of(
        config.max_items.as_ref(),
        config.max_items_path.as_deref(),
        "MaxItems",
    )
}

fn check_csv(config: &ReaderConfig) -> Result<(), String> {
    let csv = config.input_type == Some(InputType::Csv);
    if !csv
        && (config.csv_header_location.is_some()
            || config.csv_headers.is_some()
            || config.csv_delimiter.is_some())
    {
        return Err("CSVHeaderLocation, CSVHeaders and CSVDelimiter are for InputType CSV".into());
    }
    match (config.csv_header_location, &config.csv_headers) {
        (Some(CsvHeaderLocation::Given), None) => {
            Err("CSVHeaderLocation GIVEN needs CSVHeaders".into())
        }
        (Some(CsvHeaderLocation::FirstRow) | None, Some(_)) => {
            Err("CSVHeaders needs CSVHeaderLocation GIVEN".into())
        }
        _ => Ok(()),
    }
}

fn check_batcher(batcher: &ItemBatcher) -> Result<(), String> {
    one_of(
        batcher.max_items_per_batch.as_ref(),
        batcher.max_items_per_batch_path.as_deref(),
        "MaxItemsPerBatch",
    )?;
    one_of(
        batcher.max_input_bytes_per_batch.as_ref(),
        batcher.max_input_bytes_per_batch_path.as_deref(),
        "MaxInputBytesPerBatch",
    )?;
    if batcher.max_items_per_batch.is_none()
        && batcher.max_items_per_batch_path.is_none()
        && batcher.max_input_bytes_per_batch.is_none()
        && batcher.max_input_bytes_per_batch_path.is_none()
    {
        return Err(
            "one of MaxItemsPerBatch(Path) and MaxInputBytesPerBatch(Path) is required".into(),
        );
    }
    if batcher.max_items_per_batch == Some(0) {
        return Err("MaxItemsPerBatch must be at least 1".into());
    }
    if let Some(bytes) = batcher.max_input_bytes_per_batch {
        if bytes == 0 || bytes > PAYLOAD_LIMIT_BYTES as u64 {
            return Err(format!(
                "MaxInputBytesPerBatch must be between 1 and {PAYLOAD_LIMIT_BYTES} (256 KiB)"
            ));
        }
    }
    template(batcher.batch_input.as_ref(), "BatchInput")
}

fn check_writer(writer: &ResultWriter) -> Result<(), String> {
    match (&writer.resource, &writer.parameters, &writer.writer_config) {
        (Some(resource), Some(parameters), _) => {
            if resource != PUT_OBJECT {
                return Err(format!(
                    "the Resource {resource:?} is not supported (only {PUT_OBJECT})"
                ));
            }
            template(Some(parameters), "Parameters")?;
            let bucket = parameters
                .as_object()
                .is_some_and(|p| p.contains_key("Bucket") || p.contains_key("Bucket.$"));
            if !bucket {
                return Err("Parameters must name the Bucket".into());
            }
            match parameter_names_outside(Some(parameters), &["Bucket", "Prefix"]) {
                Some(name) => Err(format!(
                    "the parameter {name:?} is not supported (only Bucket and Prefix)"
                )),
                None => Ok(()),
            }
        }
        (None, None, Some(_)) => Ok(()),
        _ => Err("give Resource and Parameters, WriterConfig, or all three".into()),
    }
}

fn check_tolerance(fields: &DistributedFields) -> Result<(), String> {
    one_of(
        fields.tolerated_failure_percentage.as_ref(),
        fields.tolerated_failure_percentage_path.as_deref(),
        "ToleratedFailurePercentage",
    )?;
    one_of(
        fields.tolerated_failure_count.as_ref(),
        fields.tolerated_failure_count_path.as_deref(),
        "ToleratedFailureCount",
    )?;
    match fields.tolerated_failure_percentage {
        Some(p) if !(0.0..=100.0).contains(&p) => {
            Err("ToleratedFailurePercentage must be between 0 and 100".into())
        }
        _ => Ok(()),
    }
}

/// "Label": at most 40 characters, none of them whitespace, brackets, wildcards, special
/// or control characters (the rules of an execution name).
fn check_label(label: &str) -> Result<(), String> {
    let bad =
        |c: char| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c);
    if label.is_empty() || label.chars().count() > LABEL_LIMIT_CHARS || label.chars().any(bad) {
        return Err(format!(
            "Label {label:?} must be 1 to {LABEL_LIMIT_CHARS} characters without whitespace, brackets, wildcards or special characters"
        ));
    }
    Ok(())
}
