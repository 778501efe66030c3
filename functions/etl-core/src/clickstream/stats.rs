//! Funnel statistics computed by Elasticsearch aggregations: proof that the indexed
//! clickstream is usable for analytics, not just stored.

use serde::Serialize;
use serde_json::{json, Value};

use crate::clients::Context;
use crate::error::StageError;
use crate::logical_date::LogicalDate;
use crate::search::index::{call, CLICKSTREAM};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryRevenue {
    pub category: String,
    pub purchases: u64,
    pub revenue: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunnelStats {
    pub logical_date: LogicalDate,
    pub events: u64,
    pub sessions: u64,
    pub sessions_with_cart: u64,
    pub sessions_with_purchase: u64,
    /// Share of sessions that added to cart, and of those that then bought.
    pub view_to_cart: f64,
    pub cart_to_purchase: f64,
    pub revenue: f64,
    pub top_categories: Vec<CategoryRevenue>,
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub async fn funnel(ctx: &Context, date: LogicalDate) -> Result<FunnelStats, StageError> {
    let next = date.next().ok_or_else(|| {
        StageError::invalid_input(format!("{date} has no following day in range"))
    })?;
    let query = json!({
        "size": 0,
        "track_total_hits": true,
        "query": {"range": {"timestamp": {"gte": format!("{date}T00:00:00Z"), "lt": format!("{next}T00:00:00Z")}}},
        "aggs": {
            "sessions": {"cardinality": {"field": "session_id"}},
            "carts": {"filter": {"term": {"event_type": "add_to_cart"}},
                      "aggs": {"sessions": {"cardinality": {"field": "session_id"}}}},
            "purchases": {"filter": {"term": {"event_type": "purchase"}},
                          "aggs": {
                              "sessions": {"cardinality": {"field": "session_id"}},
                              "revenue": {"sum": {"field": "order_total"}},
                              "categories": {"terms": {"field": "category", "size": 5, "order": {"revenue": "desc"}},
                                             "aggs": {"revenue": {"sum": {"field": "order_total"}}}}
                          }}
        }
    });
    let index = ctx.index_name(CLICKSTREAM.name);
    let response = call(
        ctx.elasticsearch()?,
        elasticsearch::http::Method::Post,
        &format!("/{index}/_search"),
        Some(&query.to_string()),
    )
    .await?;
    let status = response.status_code().as_u16();
    let text = response.text().await.map_err(StageError::elasticsearch)?;
    if !(200..300).contains(&status) {
        return Err(StageError::elasticsearch_status(status, &text));
    }
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        StageError::elasticsearch_status(status, &format!("search response is not JSON: {e}"))
    })?;
    let count = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_f64().map(|f| f as u64))
            .unwrap_or(0)
    };
    let aggs = &doc["aggregations"];
    let sessions = count(&aggs["sessions"]["value"]);
    let with_cart = count(&aggs["carts"]["sessions"]["value"]);
    let with_purchase = count(&aggs["purchases"]["sessions"]["value"]);
    let top_categories = aggs["purchases"]["categories"]["buckets"]
        .as_array()
        .map(|buckets| {
            buckets
                .iter()
                .map(|b| CategoryRevenue {
                    category: b["key"].as_str().unwrap_or_default().to_string(),
                    purchases: count(&b["doc_count"]),
                    revenue: (b["revenue"]["value"].as_f64().unwrap_or(0.0) * 100.0).round()
                        / 100.0,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(FunnelStats {
        logical_date: date,
        events: count(&doc["hits"]["total"]["value"]),
        sessions,
        sessions_with_cart: with_cart,
        sessions_with_purchase: with_purchase,
        view_to_cart: ratio(with_cart, sessions),
        cart_to_purchase: ratio(with_purchase, with_cart),
        revenue: (aggs["purchases"]["revenue"]["value"]
            .as_f64()
            .unwrap_or(0.0)
            * 100.0)
            .round()
            / 100.0,
        top_categories,
    })
}
