//! Indices with explicit mappings, created on first use.

use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;

use super::SearchClient;
use crate::error::StageError;

/// An index and the settings + mappings document it is created with.
#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub name: &'static str,
    pub body: &'static str,
}

/// `empleados_search`: one document per employee, `_id` = employee id.
pub const EMPLOYEES: IndexSpec = IndexSpec {
    name: "empleados_search",
    body: include_str!("../../../../infra/elasticsearch/empleados_search.json"),
};

/// One request to the cluster with an optional JSON body: the plumbing every index-level
/// call shares.
pub async fn call(
    client: &SearchClient,
    method: Method,
    path: &str,
    json_body: Option<&str>,
) -> Result<elasticsearch::http::response::Response, StageError> {
    let headers = if json_body.is_some() {
        json_headers()
    } else {
        HeaderMap::new()
    };
    client
        .send(method, path, headers, json_body.map(str::as_bytes))
        .await
}

/// `ecommerce_clickstream`: one document per event, `_id` = event id.
pub const CLICKSTREAM: IndexSpec = IndexSpec {
    name: "ecommerce_clickstream",
    body: include_str!("../../../../infra/elasticsearch/ecommerce_clickstream.json"),
};

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// Creates the index with its mapping unless it exists. Safe to race: a concurrent creator
/// winning is success.
pub async fn ensure_index(
    client: &SearchClient,
    name: &str,
    spec: &IndexSpec,
) -> Result<bool, StageError> {
    let path = format!("/{name}");
    let head = call(client, Method::Head, &path, None).await?;
    match head.status_code().as_u16() {
        200 => return Ok(false),
        404 => {}
        status => return Err(StageError::elasticsearch_status(status, "HEAD index")),
    }
    let created = call(client, Method::Put, &path, Some(spec.body)).await?;
    let status = created.status_code().as_u16();
    let body = created.text().await.map_err(StageError::elasticsearch)?;
    match status {
        200..=299 => {
            tracing::info!(index = name, "index created");
            Ok(true)
        }
        400 if body.contains("resource_already_exists_exception") => Ok(false),
        _ => Err(StageError::elasticsearch_status(status, &body)),
    }
}

/// Makes every indexed document visible to searches and counts.
pub async fn refresh(client: &SearchClient, index: &str) -> Result<(), StageError> {
    let response = call(client, Method::Post, &format!("/{index}/_refresh"), None).await?;
    let status = response.status_code().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        Err(StageError::elasticsearch_status(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_valid_json_with_strict_properties() {
        let doc: serde_json::Value = serde_json::from_str(EMPLOYEES.body).unwrap();
        assert_eq!(doc["mappings"]["dynamic"], "strict");
        assert_eq!(doc["mappings"]["properties"]["hire_date"]["type"], "date");
    }
}
