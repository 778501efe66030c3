//! A distributed Map's `ItemReader`: the items of a JSON, JSON Lines or CSV object, or of a
//! `ListObjectsV2` listing, read through the [`ItemStore`].
//!
//! Source: "ItemReader (Map)",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html>.
//! A CSV row becomes an object keyed by the headers, every value a string; a listing entry
//! becomes `{Etag, Key, LastModified, Size, StorageClass}` as the service gives it.

use serde_json::{json, Map, Value};

use crate::errors::ITEM_READER_FAILED;
use crate::item_store::{ItemStore, ObjectSummary};
use crate::model::distributed::{
    CsvDelimiter, CsvHeaderLocation, InputType, ItemReader, ReaderConfig, GET_OBJECT,
};
use crate::Failure;

fn failed(cause: impl Into<String>) -> Failure {
    Failure::new(ITEM_READER_FAILED, cause)
}

/// Reads the items, at most `limit` of them where the format allows stopping early (JSON
/// Lines, CSV). `parameters` is the reader's `Parameters`, already expanded.
pub async fn read(
    store: &dyn ItemStore,
    reader: &ItemReader,
    parameters: &Value,
    limit: Option<usize>,
) -> Result<Vec<Value>, Failure> {
    let text = |name: &str| parameters.get(name).and_then(Value::as_str);
    let bucket = text("Bucket")
        .ok_or_else(|| failed("the ItemReader's Parameters must give the Bucket as a string"))?
        .to_string();
    if reader.resource == GET_OBJECT {
        let key = text("Key")
            .ok_or_else(|| failed("the ItemReader's Parameters must give the Key as a string"))?
            .to_string();
        let body = store
            .get_object(bucket.clone(), key.clone())
            .await
            .map_err(|e| failed(format!("could not read s3://{bucket}/{key}: {e}")))?;
        parse_at_most(&body, &reader.reader_config, limit)
            .map_err(|e| failed(format!("could not parse s3://{bucket}/{key}: {e}")))
    } else {
        let prefix = text("Prefix").unwrap_or_default().to_string();
        let objects = store
            .list_objects_v2(bucket.clone(), prefix.clone())
            .await
            .map_err(|e| failed(format!("could not list s3://{bucket}/{prefix}: {e}")))?;
        Ok(objects.iter().map(listing_item).collect())
    }
}

/// One `ListObjectsV2` entry as the Map sees it.
pub fn listing_item(object: &ObjectSummary) -> Value {
    json!({
        "Etag": object.etag,
        "Key": object.key,
        "LastModified": object.last_modified,
        "Size": object.size,
        "StorageClass": object.storage_class,
    })
}

/// The first `limit` items of an object's body; a JSON array is read whole.
fn parse_at_most(
    body: &[u8],
    config: &ReaderConfig,
    limit: Option<usize>,
) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    match config.input_type {
        Some(InputType::Jsonl) => parse_jsonl(text, limit.unwrap_or(usize::MAX)),
        Some(InputType::Csv) => parse_csv(text, config, limit),
        _ => match serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))? {
            Value::Array(items) => Ok(items),
            _ => Err("the object does not hold a JSON array".into()),
        },
    }
}

/// One JSON value a line; blank lines are skipped.
fn parse_jsonl(text: &str, limit: usize) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .take(limit)
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {} is not JSON: {e}", n + 1))
        })
        .collect()
}

fn parse_csv(
    text: &str,
    config: &ReaderConfig,
    limit: Option<usize>,
) -> Result<Vec<Value>, String> {
    let delimiter = config.csv_delimiter.unwrap_or(CsvDelimiter::Comma).byte();
    let given = matches!(config.csv_header_location, Some(CsvHeaderLocation::Given));
    let header_rows = usize::from(!given);
    let row_limit = limit.map_or(usize::MAX, |n| n.saturating_add(header_rows));
    let mut rows = csv_rows(text, delimiter, row_limit)?.into_iter();
    let headers = if given {
        config.csv_headers.clone().unwrap_or_default()
    } else {
        rows.next().unwrap_or_default()
    };
    rows.enumerate()
        .map(|(n, row)| {
            // A row must have a field for every header; a short or long row is more likely
            // a broken file than data, so it fails the read rather than guessing.
            if row.len() != headers.len() {
                return Err(format!(
                    "data row {} has {} fields where the headers name {}",
                    n + 1,
                    row.len(),
                    headers.len()
                ));
            }
            let fields: Map<String, Value> = headers
                .iter()
                .cloned()
                .zip(row.into_iter().map(Value::String))
                .collect();
            Ok(Value::Object(fields))
        })
        .collect()
}

/// RFC 4180 rows, at most `limit` of them: quoted fields may hold delimiters, line breaks and
/// doubled quotes. Blank lines are skipped.
fn csv_rows(text: &str, delimiter: u8, limit: usize) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let delimiter = char::from(delimiter);
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            c if quoted => field.push(c),
            c if c == delimiter => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                end_row(&mut rows, &mut row, &mut field);
                if rows.len() >= limit {
                    return Ok(rows);
                }
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    end_row(&mut rows, &mut row, &mut field);
    Ok(rows)
}

fn end_row(rows: &mut Vec<Vec<String>>, row: &mut Vec<String>, field: &mut String) {
    if row.is_empty() && field.is_empty() {
        return;
    }
    row.push(std::mem::take(field));
    rows.push(std::mem::take(row));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_store::InMemoryItemStore;
    use crate::model::distributed::LIST_OBJECTS_V2;

    fn config(value: Value) -> ReaderConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn json_arrays_and_json_lines() {
        let json = config(json!({"InputType": "JSON"}));
        assert_eq!(
            parse(b"[1, {\"a\": 2}]", &json),
            Ok(vec![json!(1), json!({"a": 2})])
        );
        assert!(parse(b"{\"a\": 1}", &json).unwrap_err().contains("array"));
        let jsonl = config(json!({"InputType": "JSONL"}));
        assert_eq!(
            parse(b"{\"a\":1}\n\n[2]\r\n\"three\"\n", &jsonl),
            Ok(vec![json!({"a": 1}), json!([2]), json!("three")])
        );
        assert!(parse(b"{\"a\":1}\nnope\n", &jsonl)
            .unwrap_err()
            .contains("line 2"));
    }

    fn parse(body: &[u8], config: &ReaderConfig) -> Result<Vec<Value>, String> {
        parse_at_most(body, config, None)
    }

    #[test]
    fn reading_stops_at_the_limit_where_the_format_allows() {
        let jsonl = config(json!({"InputType": "JSONL"}));
        // Past the limit the text is never parsed: the broken line 3 does not fail the read.
        assert_eq!(
            parse_at_most(b"1\n2\nnot json", &jsonl, Some(2)).unwrap(),
            vec![json!(1), json!(2)]
        );
        let csv = config(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}));
        assert_eq!(
            parse_at_most(b"a\n1\n\"unclosed", &csv, Some(1)).unwrap(),
            vec![json!({"a": "1"})]
        );
        assert!(parse_at_most(b"a\n1\n\"unclosed", &csv, None).is_err());
    }

    #[test]
    fn csv_with_the_first_row_as_headers() {
        let csv = config(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}));
        let body = "id,name,note\r\n1,Ada,\"says \"\"hi\"\", twice\"\n2,Bob,\"two\nlines\"\n\n";
        assert_eq!(
            parse(body.as_bytes(), &csv),
            Ok(vec![
                json!({"id": "1", "name": "Ada", "note": "says \"hi\", twice"}),
                json!({"id": "2", "name": "Bob", "note": "two\nlines"}),
            ])
        );
        assert!(parse(b"a,b\n1\n", &csv).unwrap_err().contains("row 1"));
        assert!(parse(b"a\n\"open\n", &csv)
            .unwrap_err()
            .contains("not closed"));
    }

    #[test]
    fn csv_with_given_headers_and_another_delimiter() {
        let csv = config(json!({
            "InputType": "CSV", "CSVHeaderLocation": "GIVEN",
            "CSVHeaders": ["x", "y"], "CSVDelimiter": "SEMICOLON"
        }));
        assert_eq!(
            parse(b"1;2\n3;4", &csv),
            Ok(vec![
                json!({"x": "1", "y": "2"}),
                json!({"x": "3", "y": "4"})
            ])
        );
    }

    #[tokio::test]
    async fn listings_and_missing_objects() {
        let store = InMemoryItemStore::new();
        store.insert("b", "in/1.csv", "abc");
        store.insert("b", "out/2.csv", "");
        let reader: ItemReader =
            serde_json::from_value(json!({"Resource": LIST_OBJECTS_V2})).unwrap();
        let items = read(
            &store,
            &reader,
            &json!({"Bucket": "b", "Prefix": "in/"}),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            items,
            vec![json!({
                "Etag": "\"900150983cd24fb0d6963f7d28e17f72\"",
                "Key": "in/1.csv", "LastModified": 1_767_225_600, "Size": 3,
                "StorageClass": "STANDARD"
            })]
        );
        let reader: ItemReader = serde_json::from_value(
            json!({"Resource": GET_OBJECT, "ReaderConfig": {"InputType": "JSON"}}),
        )
        .unwrap();
        let failure = read(
            &store,
            &reader,
            &json!({"Bucket": "b", "Key": "nope"}),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(failure.error, ITEM_READER_FAILED);
        assert!(failure.cause.contains("s3://b/nope"), "{}", failure.cause);
    }
}
