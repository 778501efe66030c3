//! The HTML every page shares: escaping, the layout around a page's body, status symbols.
//! Everything a page prints from data goes through [`escape`].

use std::fmt::Write as _;

/// Text made safe for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A path segment or query value made safe for a URL (RFC 3986 unreserved kept).
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What a status looks like: a symbol beside its word, so that colour is never the only cue.
pub fn symbol(status: &str) -> &'static str {
    match status {
        "succeeded" | "SUCCEEDED" => "✓",
        "failed" | "FAILED" | "TIMED_OUT" | "ABORTED" => "✕",
        "running" | "RUNNING" => "●",
        "retried" => "↻",
        "caught" => "⤳",
        "abandoned" => "⊘",
        "skipped" => "»",
        _ => "○",
    }
}

/// The CSS class of a status (lower case, one of a fixed set).
pub fn status_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "SUCCEEDED" => "s-succeeded",
        "failed" | "FAILED" | "TIMED_OUT" | "ABORTED" => "s-failed",
        "running" | "RUNNING" => "s-running",
        "retried" => "s-retried",
        "caught" => "s-caught",
        "abandoned" => "s-abandoned",
        "skipped" => "s-skipped",
        _ => "s-none",
    }
}

const STYLE: &str = r#"
:root { --ok:#1a7f37; --bad:#cf222e; --run:#0969da; --warn:#9a6700; --mute:#6e7781; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: #f6f8fa; }
header.top .brand { font-weight: 700; }
header.top nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
main { padding: 1rem; max-width: 100%; }
h1 { font-size: 1.35rem; margin: .2rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
a { color: #0550ae; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #fb8f44; outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: .25rem .45rem; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; }
table.grid th[scope=col] { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: 400; font-size: .75rem; padding: .3rem .1rem; }
table.grid td { padding: 0; text-align: center; }
table.grid .cell { display: block; width: 1.5rem; height: 1.5rem; line-height: 1.5rem; text-decoration: none; color: #fff; font-size: .8rem; }
.s-succeeded { background: var(--ok); } .s-failed { background: var(--bad); } .s-running { background: var(--run); }
.s-retried, .s-caught { background: var(--warn); } .s-abandoned, .s-skipped { background: var(--mute); } .s-none { background: #fff; color: var(--mute); }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; color: #fff; font-weight: 600; }
.badge.s-none { color: var(--mute); border: 1px solid var(--mute); }
.alert { border: 2px solid var(--bad); border-radius: .4rem; padding: .6rem .8rem; background: #fff5f5; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
svg.graph { display: block; max-width: none; height: auto; }
svg.graph .state rect { stroke: #57606a; stroke-width: 1.2; }
svg.graph .state text { font-size: 12px; fill: #fff; }
svg.graph .state.s-none > text { fill: #1f2328; }
svg.graph .container > rect { fill: #f6f8fa; stroke-dasharray: 4 3; }
svg.graph .container > text { fill: #1f2328; }
svg.graph .s-succeeded > rect { fill: var(--ok); } svg.graph .s-failed > rect { fill: var(--bad); }
svg.graph .s-running > rect { fill: var(--run); } svg.graph .s-retried > rect, svg.graph .s-caught > rect { fill: var(--warn); }
svg.graph .s-none > rect { fill: #fff; }
svg.graph .container.s-succeeded > rect, svg.graph .container.s-failed > rect, svg.graph .container.s-retried > rect,
svg.graph .container.s-caught > rect, svg.graph .container.s-running > rect { fill-opacity: .18; }
svg.graph .branch-gap { stroke: #8c959f; stroke-dasharray: 2 4; }
svg.graph .container > text { fill: #1f2328; }
svg.graph .edge { stroke: #57606a; fill: none; stroke-width: 1.2; }
svg.graph .edge.catch { stroke-dasharray: 5 3; stroke: var(--bad); }
.legend { display: flex; flex-wrap: wrap; gap: .4rem .8rem; list-style: none; padding: 0; font-size: .85rem; }
.legend .badge { min-width: 1.4rem; text-align: center; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; padding: .5rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr)); gap: 1rem; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: .4rem; padding: .6rem; min-width: 0; }
figure.chart figcaption { font-weight: 600; margin-bottom: .4rem; }
figure.chart svg { width: 100%; height: auto; }
figure.chart svg text { font-size: 11px; fill: #1f2328; }
.bar { fill: #0969da; }
details summary { cursor: pointer; }
"#;

/// A whole page: `title` (already plain text) in <title> and the heading, `body` (HTML) in
/// <main>.
pub fn page(title: &str, body: &str) -> String {
    page_with_script(title, body, "")
}

/// As [`page`], with a small script at the end of <body> (live dashboards).
pub fn page_with_script(title: &str, body: &str, script: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · etl ui</title><style>{STYLE}</style></head><body>\
         <header class=\"top\"><span class=\"brand\">etl ui</span>\
         <nav aria-label=\"Main\"><ul><li><a href=\"/\">Runs grid</a></li>\
         <li><a href=\"/dashboards/hr\">HR dashboard</a></li>\
         <li><a href=\"/dashboards/clickstream\">Clickstream dashboard</a></li></ul></nav></header>\
         <main id=\"main\"><h1>{title}</h1>{body}</main>{script}</body></html>"
    )
}

/// The legend of the status colours and symbols.
pub fn legend(statuses: &[&str]) -> String {
    let mut out = String::from("<ul class=\"legend\" aria-label=\"Legend\">");
    for status in statuses {
        let _ = write!(
            out,
            "<li><span class=\"badge {}\" aria-hidden=\"true\">{}</span> {}</li>",
            status_class(status),
            symbol(status),
            escape(status)
        );
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_data_is_shown_not_run() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let html = page("<script>bad()</script>", "");
        assert!(!html.contains("<script>bad()"), "{html}");
        assert!(html.contains("&lt;script&gt;bad()"));
    }

    #[test]
    fn url_parts_keep_only_unreserved_characters() {
        assert_eq!(url_part("hr-2026-11-25_a.b~"), "hr-2026-11-25_a.b~");
        assert_eq!(url_part("a b/\"<"), "a%20b%2F%22%3C");
    }

    #[test]
    fn every_status_has_a_symbol_beside_its_colour() {
        for status in ["succeeded", "failed", "running", "abandoned", "skipped"] {
            assert_ne!(symbol(status), symbol("none"), "{status}");
            assert_ne!(status_class(status), "s-none", "{status}");
        }
    }
}
