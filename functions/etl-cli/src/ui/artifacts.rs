//! What a run produced, readable in the page: the objects under the run's date in the
//! bucket (the HR export CSV; the marketing master dataset, quarantine files with their
//! reasons and the HTML report), a CSV's first rows, a Parquet file's schema and first rows.

use std::fmt::Write as _;

use chrono::NaiveDate;
use etl_core::{Context, LogicalDate, StageError};
use polars::prelude::{ParquetReader, SerReader};

use super::html::{escape, url_part};
use super::run::Artifact;

/// Bytes read to show a text object's beginning.
const PREVIEW_BYTES: i64 = 64 * 1024;
/// Rows shown of a CSV or Parquet object.
pub const PREVIEW_ROWS: usize = 20;
/// A Parquet object larger than this is not read for its preview.
const PARQUET_PREVIEW_LIMIT: usize = 64 * 1024 * 1024;

/// The prefixes where a machine's runs write, for a logical date.
pub fn prefixes(machine: &str, date: LogicalDate) -> Vec<(&'static str, String)> {
    use marketing::dataset::{curated_prefix, quarantine_prefix, reports_prefix};
    match machine {
        "hr" => {
            let export = etl_core::stages::hr_export::export_key(date);
            let prefix = export
                .rsplit_once('/')
                .map_or(export.clone(), |(p, _)| format!("{p}/"));
            vec![("export CSV", prefix)]
        }
        "marketing" => vec![
            ("master dataset", curated_prefix(date)),
            ("quarantine", quarantine_prefix(date)),
            ("report", reports_prefix(date)),
        ],
        _ => Vec::new(),
    }
}

/// The objects a run of `machine` for `date` produced.
pub async fn list(
    ctx: &Context,
    machine: &str,
    date: NaiveDate,
) -> Result<Vec<Artifact>, StageError> {
    let Ok(date) = LogicalDate::new(date) else {
        return Ok(Vec::new());
    };
    let mut artifacts = Vec::new();
    for (kind, prefix) in prefixes(machine, date) {
        for entry in etl_core::s3::list(ctx, &ctx.config.bucket, &prefix).await? {
            let kind = if entry.key.ends_with(".reason.json") {
                "quarantine reason"
            } else {
                kind
            };
            artifacts.push(Artifact {
                kind,
                key: entry.key,
                size: entry.size,
            });
        }
    }
    Ok(artifacts)
}

/// The content type an object is served with, by its name.
pub fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") | Some("rows") => "text/csv; charset=utf-8",
        Some("md") | Some("txt") => "text/plain; charset=utf-8",
        Some("parquet") => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// The whole object (the raw link), or its first `PREVIEW_BYTES` bytes.
pub async fn fetch(ctx: &Context, key: &str, whole: bool) -> Result<Vec<u8>, String> {
    let mut request = ctx.s3().get_object().bucket(&ctx.config.bucket).key(key);
    if !whole {
        request = request.range(format!("bytes=0-{}", PREVIEW_BYTES - 1));
    }
    let object = request.send().await.map_err(|e| {
        format!(
            "s3://{}/{key}: {}",
            ctx.config.bucket,
            aws_sdk_s3::error::DisplayErrorContext(e)
        )
    })?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("reading s3://{}/{key}: {e}", ctx.config.bucket))?;
    Ok(bytes.into_bytes().to_vec())
}

/// A CSV's fields, quotes honoured; good enough for a preview of well-formed files.
pub fn csv_rows(text: &str, limit: usize) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                if rows.len() >= limit {
                    return rows;
                }
            }
            ('\r', false) => {}
            (other, _) => field.push(other),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn table(rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table class=\"preview\">");
    for (i, row) in rows.iter().enumerate() {
        out.push_str("<tr>");
        for field in row {
            if i == 0 {
                let _ = write!(out, "<th scope=\"col\">{}</th>", escape(field));
            } else {
                let _ = write!(out, "<td>{}</td>", escape(field));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
    out
}

/// A Parquet file's schema and first rows.
fn parquet_preview(bytes: Vec<u8>) -> String {
    let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
    let schema = match reader.schema() {
        Ok(schema) => schema,
        Err(e) => {
            return format!(
                "<p>Not a readable Parquet file: {}</p>",
                escape(&e.to_string())
            )
        }
    };
    let mut out = String::from("<h2>Schema</h2><div class=\"scroll\"><table id=\"parquet-schema\"><thead><tr><th scope=\"col\">Column</th><th scope=\"col\">Type</th></tr></thead><tbody>");
    for field in schema.iter_values() {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(field.name.as_str()),
            escape(&format!("{:?}", field.dtype))
        );
    }
    out.push_str("</tbody></table></div>");
    match reader.with_slice(Some((0, PREVIEW_ROWS))).finish() {
        Ok(frame) => {
            let _ = write!(
                out,
                "<h2>First rows</h2><pre>{}</pre>",
                escape(&frame.head(Some(PREVIEW_ROWS)).to_string())
            );
        }
        Err(e) => {
            let _ = write!(
                out,
                "<p>The rows cannot be read: {}</p>",
                escape(&e.to_string())
            );
        }
    }
    out
}

/// The page body for one object.
pub async fn render(ctx: &Context, key: &str) -> String {
    let raw = format!("/artifacts/raw?key={}", url_part(key));
    let mut out = format!(
        "<p><a href=\"{raw}\">Open the object itself</a> ({})</p>",
        escape(content_type(key))
    );
    if key.ends_with(".parquet") {
        match fetch(ctx, key, true).await {
            Ok(bytes) if bytes.len() <= PARQUET_PREVIEW_LIMIT => {
                out.push_str(&parquet_preview(bytes));
            }
            Ok(bytes) => {
                let _ = write!(
                    out,
                    "<p>{} bytes: too large to preview here.</p>",
                    bytes.len()
                );
            }
            Err(reason) => {
                let _ = write!(
                    out,
                    "<p class=\"alert\" role=\"alert\">{}</p>",
                    escape(&reason)
                );
            }
        }
        return out;
    }
    match fetch(ctx, key, false).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            if key.ends_with(".csv") || key.ends_with(".rows") {
                let _ = write!(
                    out,
                    "<h2>First rows</h2>{}",
                    table(&csv_rows(&text, PREVIEW_ROWS + 1))
                );
            } else if key.ends_with(".html") {
                let _ = write!(
                    out,
                    "<p>The report, as it renders: <a href=\"{raw}\">full page</a>.</p>\
                     <iframe title=\"Report\" src=\"{raw}\" style=\"width:100%;height:70vh;border:1px solid #d0d7de\"></iframe>"
                );
            } else {
                let _ = write!(out, "<pre>{}</pre>", escape(&text));
            }
        }
        Err(reason) => {
            let _ = write!(
                out,
                "<p class=\"alert\" role=\"alert\">{}</p>",
                escape(&reason)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_quoted_commas_and_quotes() {
        let rows = csv_rows("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n3,4\n", 2);
        assert_eq!(rows, vec![vec!["a", "b"], vec!["x, y", "say \"hi\""]]);
    }

    #[test]
    fn each_machine_writes_under_its_date() {
        let date: LogicalDate = "2026-11-25".parse().unwrap();
        let hr = prefixes("hr", date);
        assert_eq!(hr.len(), 1);
        assert!(
            hr[0].1.contains("dt=2026-11-25") && hr[0].1.ends_with('/'),
            "{hr:?}"
        );
        assert_eq!(prefixes("marketing", date).len(), 3);
        assert!(prefixes("clickstream", date).is_empty());
    }

    #[test]
    fn reports_are_served_as_html_and_data_as_data() {
        assert_eq!(
            content_type("reports/x/report.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type("a.parquet"), "application/vnd.apache.parquet");
        assert_eq!(content_type("a"), "application/octet-stream");
    }
}
