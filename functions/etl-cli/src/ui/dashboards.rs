//! The Kibana dashboards without Kibana: the HR and clickstream views that
//! `infra/kibana/saved_objects.ndjson` defines, drawn from the same Elasticsearch
//! aggregations (one `_search` a dashboard, `size: 0`). Every chart has its numbers in a
//! table beside it, and the page refreshes its charts while events stream in.

use std::fmt::Write as _;

use elasticsearch::http::Method;
use etl_core::search::index::call;
use etl_core::Context;
use serde_json::{json, Value};

use super::html::escape;

/// Which dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dashboard {
    Hr,
    Clickstream,
}

impl Dashboard {
    pub fn from_slug(slug: &str) -> Option<Self> {
        match slug {
            "hr" => Some(Self::Hr),
            "clickstream" => Some(Self::Clickstream),
            _ => None,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Hr => "HR · empleados",
            Self::Clickstream => "E-commerce clickstream",
        }
    }

    /// The index pattern of the saved objects' data view, without this setup's prefix.
    pub fn index_pattern(self) -> &'static str {
        match self {
            Self::Hr => "empleados_search*",
            Self::Clickstream => "ecommerce_clickstream*",
        }
    }

    /// The aggregations, as the saved visualisations define them (`hr-by-department`,
    /// `hr-hires-over-time`, `hr-median-salary-by-department`; `clickstream-funnel`,
    /// `clickstream-events-over-time`, `clickstream-devices`, `clickstream-revenue-over-time`).
    pub fn query(self) -> Value {
        match self {
            Self::Hr => json!({
                "size": 0,
                "track_total_hits": true,
                "aggs": {
                    "by_department": {"terms": {"field": "department", "size": 12},
                        "aggs": {"median_salary": {"percentiles": {"field": "salary", "percents": [50]}}}},
                    "over_time": {"date_histogram": {"field": "hire_date", "calendar_interval": "day", "min_doc_count": 1}}
                }
            }),
            Self::Clickstream => json!({
                "size": 0,
                "track_total_hits": true,
                "aggs": {
                    "funnel": {"filters": {"filters": {
                        "page_view": {"term": {"event_type": "page_view"}},
                        "add_to_cart": {"term": {"event_type": "add_to_cart"}},
                        "purchase": {"term": {"event_type": "purchase"}}
                    }}, "aggs": {"sessions": {"cardinality": {"field": "session_id"}}}},
                    "over_time": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h", "min_doc_count": 1},
                        "aggs": {"by_type": {"terms": {"field": "event_type", "size": 5}}}},
                    "devices": {"terms": {"field": "device", "size": 5},
                        "aggs": {"sessions": {"cardinality": {"field": "session_id"}}}},
                    "revenue": {"filter": {"term": {"event_type": "purchase"}},
                        "aggs": {"total": {"sum": {"field": "order_total"}}}}
                }
            }),
        }
    }
}

/// The search response for a dashboard, or why there is none.
pub async fn search(ctx: &Context, dashboard: Dashboard) -> Result<Value, String> {
    let client = ctx.elasticsearch().map_err(|e| e.to_string())?;
    let index = ctx.index_name(dashboard.index_pattern());
    let path = format!("/{index}/_search?allow_no_indices=true&ignore_unavailable=true");
    let body = dashboard.query().to_string();
    let response = call(client, Method::Post, &path, Some(&body))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status_code().as_u16();
    let value: Value = response.json().await.map_err(|e| e.to_string())?;
    if status >= 300 {
        return Err(format!("Elasticsearch answered {status}: {value}"));
    }
    Ok(value)
}

/// (label, value) bars from a terms or histogram aggregation's buckets.
fn buckets<'a>(aggs: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    aggs.get(name)
        .and_then(|a| a.get("buckets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn label(bucket: &Value) -> String {
    match bucket.get("key_as_string").or_else(|| bucket.get("key")) {
        // A day's bucket (`2026-10-05T00:00:00.000Z`) is labelled by its date alone.
        Some(Value::String(s)) if is_timestamp(s) => s[..10].to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > 10 && bytes[10] == b'T' && bytes[..4].iter().all(u8::is_ascii_digit)
}

fn count(value: Option<&Value>) -> f64 {
    value.and_then(Value::as_f64).unwrap_or(0.0)
}

/// A horizontal bar chart and its numbers. `metric` names the figures for the tests
/// (`data-metric="<metric>.<label>"`).
fn bar_chart(id: &str, title: &str, metric: &str, bars: &[(String, f64)]) -> String {
    let mut out = format!(
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{}</figcaption>",
        escape(title)
    );
    if bars.is_empty() {
        out.push_str("<p>No documents.</p></figure>");
        return out;
    }
    let max = bars.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1.0);
    let (row, label_w, chart_w) = (22.0, 130.0, 330.0);
    let height = row * bars.len() as f64 + 4.0;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {:.0} {height:.0}\" role=\"img\" aria-label=\"{} (figures in the table below)\">",
        label_w + chart_w + 70.0,
        escape(title)
    );
    for (i, (name, value)) in bars.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let width = (value / max) * chart_w;
        let _ = write!(
            out,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{label_w:.0}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 6.0,
            y + row * 0.65,
            escape(&truncate(name, 18)),
            row - 6.0,
            label_w + width + 4.0,
            y + row * 0.65,
            format_number(*value)
        );
    }
    out.push_str("</svg>");
    out.push_str(&figures_table(metric, bars));
    out.push_str("</figure>");
    out
}

fn figures_table(metric: &str, bars: &[(String, f64)]) -> String {
    let mut out = String::from("<details><summary>Figures</summary><table><tbody>");
    for (name, value) in bars {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"num\" data-metric=\"{}.{}\">{}</td></tr>",
            escape(name),
            escape(metric),
            escape(name),
            format_number(*value)
        );
    }
    out.push_str("</tbody></table></details>");
    out
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut short: String = text.chars().take(chars - 1).collect();
    short.push('…');
    short
}

/// Whole numbers without decimals, others with two.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The dashboard's charts from its search response.
pub fn render_charts(dashboard: Dashboard, response: &Value) -> String {
    let aggs = response.get("aggregations").cloned().unwrap_or(Value::Null);
    let total = count(response.pointer("/hits/total/value"));
    let mut out = format!(
        "<p>Documents: <strong data-metric=\"total\">{}</strong></p><div class=\"charts\">",
        format_number(total)
    );
    match dashboard {
        Dashboard::Hr => {
            let by_department: Vec<(String, f64)> = buckets(&aggs, "by_department")
                .map(|b| (label(b), count(b.get("doc_count"))))
                .collect();
            let median: Vec<(String, f64)> = buckets(&aggs, "by_department")
                .map(|b| (label(b), count(b.pointer("/median_salary/values/50.0"))))
                .collect();
            let over_time: Vec<(String, f64)> = buckets(&aggs, "over_time")
                .map(|b| (label(b), count(b.get("doc_count"))))
                .collect();
            out.push_str(&bar_chart(
                "hires-by-department",
                "Hires by department",
                "department",
                &by_department,
            ));
            out.push_str(&bar_chart(
                "hires-over-time",
                "Hires by date",
                "hire_date",
                &over_time,
            ));
            out.push_str(&bar_chart(
                "median-salary",
                "Median salary by department",
                "median_salary",
                &median,
            ));
        }
        Dashboard::Clickstream => {
            let funnel: Vec<(String, f64)> = ["page_view", "add_to_cart", "purchase"]
                .iter()
                .map(|step| {
                    let sessions = aggs.pointer(&format!("/funnel/buckets/{step}/sessions/value"));
                    (step.to_string(), count(sessions))
                })
                .collect();
            let devices: Vec<(String, f64)> = buckets(&aggs, "devices")
                .map(|b| (label(b), count(b.pointer("/sessions/value"))))
                .collect();
            let over_time: Vec<(String, f64)> = buckets(&aggs, "over_time")
                .map(|b| {
                    let at = b
                        .get("key_as_string")
                        .and_then(Value::as_str)
                        .map_or_else(|| label(b), |s| s.get(..16).unwrap_or(s).replace('T', " "));
                    (at, count(b.get("doc_count")))
                })
                .collect();
            let revenue = count(aggs.pointer("/revenue/total/value"));
            out.push_str(&bar_chart(
                "funnel",
                "Funnel: sessions per step (page_view → add_to_cart → purchase)",
                "funnel",
                &funnel,
            ));
            out.push_str(&bar_chart(
                "events-over-time",
                "Events over time (per hour)",
                "events",
                &over_time,
            ));
            out.push_str(&bar_chart(
                "devices",
                "Sessions by device",
                "devices",
                &devices,
            ));
            out.push_str(&bar_chart(
                "revenue",
                "Revenue (purchases)",
                "revenue",
                &[("order_total".to_string(), revenue)],
            ));
        }
    }
    out.push_str("</div>");
    out
}

/// Re-fetches the page every 5 s and swaps the charts in, while the box is ticked.
pub const LIVE_SCRIPT: &str = r#"<script>
(function () {
  var box = document.getElementById('live');
  var stamp = document.getElementById('updated');
  setInterval(function () {
    if (!box || !box.checked) return;
    fetch(location.href, {cache: 'no-store'}).then(function (r) { return r.text(); }).then(function (html) {
      var next = new DOMParser().parseFromString(html, 'text/html').getElementById('charts');
      var here = document.getElementById('charts');
      if (next && here) { here.innerHTML = next.innerHTML; stamp.textContent = new Date().toLocaleTimeString(); }
    }).catch(function () {});
  }, 5000);
})();
</script>"#;

/// The page body: the live toggle, then the charts or the reason there are none.
pub fn render(dashboard: Dashboard, response: Result<&Value, &str>) -> String {
    let mut out = format!(
        "<p>The views of the Kibana dashboard <q>{}</q> (infra/kibana/saved_objects.ndjson), from the same aggregations.</p>\
         <p><label><input type=\"checkbox\" id=\"live\" checked> Refresh every 5 s</label> \
         <span>Last update: <span id=\"updated\">page load</span></span></p><div id=\"charts\">",
        escape(dashboard.title())
    );
    match response {
        Ok(value) => out.push_str(&render_charts(dashboard, value)),
        Err(reason) => {
            let _ = write!(
                out,
                "<p class=\"alert\" role=\"alert\">Elasticsearch cannot be read: {}</p>",
                escape(reason)
            );
        }
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_funnel_shows_sessions_per_step_in_order() {
        let response = json!({
            "hits": {"total": {"value": 10}},
            "aggregations": {"funnel": {"buckets": {
                "purchase": {"doc_count": 2, "sessions": {"value": 2}},
                "page_view": {"doc_count": 9, "sessions": {"value": 5}},
                "add_to_cart": {"doc_count": 4, "sessions": {"value": 3}}
            }}}
        });
        let html = render_charts(Dashboard::Clickstream, &response);
        let (a, b, c) = (
            html.find("data-metric=\"funnel.page_view\">5<").unwrap(),
            html.find("data-metric=\"funnel.add_to_cart\">3<").unwrap(),
            html.find("data-metric=\"funnel.purchase\">2<").unwrap(),
        );
        assert!(a < b && b < c, "{html}");
        assert!(html.contains("data-metric=\"total\">10<"));
    }

    #[test]
    fn a_bucket_is_labelled_by_its_key_and_a_day_by_its_date() {
        assert_eq!(label(&json!({"key": "Tecnología"})), "Tecnología");
        assert_eq!(
            label(&json!({"key": 1, "key_as_string": "2026-10-05T00:00:00.000Z"})),
            "2026-10-05"
        );
    }

    #[test]
    fn department_names_are_escaped() {
        let response = json!({"aggregations": {"by_department": {"buckets": [
            {"key": "<R&D>", "doc_count": 3, "median_salary": {"values": {"50.0": 41000.5}}}
        ]}}});
        let html = render_charts(Dashboard::Hr, &response);
        assert!(
            html.contains("&lt;R&amp;D&gt;") && !html.contains("<R&D>"),
            "{html}"
        );
        assert!(html.contains(">41000.50<"));
    }

    #[test]
    fn an_unreachable_cluster_is_said_not_hidden() {
        let html = render(Dashboard::Hr, Err("connection refused"));
        assert!(html.contains("role=\"alert\"") && html.contains("connection refused"));
    }
}
