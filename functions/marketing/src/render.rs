//! The report's human-readable forms: Markdown tables, and a self-contained HTML page whose
//! charts are SVG drawn by plotters and inlined (no script, no external file).

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::kpi::{KpiReport, PlatformKpis, ViewTime};

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

fn money(value: f64) -> String {
    format!("{value:.2}")
}

/// The platform table's rows: name, then formatted cells, shared by Markdown and HTML.
fn platform_cells(p: &PlatformKpis) -> [String; 9] {
    [
        p.platform.clone(),
        p.totals.impressions.to_string(),
        p.totals.clicks.to_string(),
        p.totals.conversions.to_string(),
        money(p.cost),
        money(p.revenue),
        number(p.cpc, 4),
        number(p.ctr_percent, 3),
        number(p.roi, 3),
    ]
}

const PLATFORM_HEADER: [&str; 9] = [
    "Platform",
    "Impressions",
    "Clicks",
    "Conversions",
    "Cost",
    "Revenue",
    "CPC",
    "CTR %",
    "ROI",
];

fn view_cells(v: &ViewTime) -> Vec<String> {
    let mut cells = Vec::new();
    if let Some(platform) = &v.platform {
        cells.push(platform.clone());
    }
    cells.push(v.audience.clone());
    cells.push(v.rows.to_string());
    cells.push(number(v.mean_view_time, 3));
    cells
}

/// Every table of the report as (title, header, rows).
pub fn tables(report: &KpiReport) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
    let mut platform_rows: Vec<Vec<String>> = report
        .platforms
        .iter()
        .map(|p| platform_cells(p).to_vec())
        .collect();
    platform_rows.push(platform_cells(&report.overall).to_vec());
    vec![
        (
            "KPIs per platform".to_string(),
            PLATFORM_HEADER
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            platform_rows,
        ),
        (
            "Mean video view time per audience (s)".to_string(),
            ["Audience", "Rows", "Mean view time"]
                .map(String::from)
                .to_vec(),
            report
                .view_time_by_audience
                .iter()
                .map(view_cells)
                .collect(),
        ),
        (
            "Mean video view time per platform and audience (s)".to_string(),
            ["Platform", "Audience", "Rows", "Mean view time"]
                .map(String::from)
                .to_vec(),
            report
                .view_time_by_platform_audience
                .iter()
                .map(view_cells)
                .collect(),
        ),
    ]
}

pub fn markdown(report: &KpiReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Marketing KPI report, {}\n", report.logical_date);
    let _ = writeln!(
        out,
        "{} rows in the master dataset. CPC = cost / clicks; CTR = clicks / impressions × 100; \
         ROI = (revenue − cost) / cost; n/a where the denominator is zero.\n",
        report.rows
    );
    for (title, header, rows) in tables(report) {
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn html(report: &KpiReport) -> Result<String, ChartError> {
    let mut out = String::new();
    let title = format!("Marketing KPI report, {}", report.logical_date);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
         figure{{margin:1em 0}}</style></head><body>\n<h1>{}</h1>\n<p>{} rows in the master dataset.</p>\n",
        escape(&title),
        escape(&title),
        report.rows
    );
    let _ = writeln!(
        out,
        "<h2>Charts</h2>\n<figure>{}</figure>",
        platform_chart(&report.platforms)?
    );
    let _ = writeln!(
        out,
        "<figure>{}</figure>",
        view_time_chart(&report.view_time_by_audience)?
    );
    for (title, header, rows) in tables(report) {
        let _ = writeln!(out, "<h2>{}</h2>\n<table><tr>", escape(&title));
        for cell in header {
            let _ = write!(out, "<th>{}</th>", escape(&cell));
        }
        out.push_str("</tr>\n");
        for row in rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape(&cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {message}")]
pub struct ChartError {
    chart: &'static str,
    message: String,
}

fn chart_error<E: std::fmt::Display>(chart: &'static str) -> impl Fn(E) -> ChartError {
    move |e| ChartError {
        chart,
        message: e.to_string(),
    }
}

const PALETTE: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// One number of a platform's KPIs.
type Metric = fn(&PlatformKpis) -> Option<f64>;

/// CPC, CTR and ROI per platform, one panel each (their scales differ).
fn platform_chart(platforms: &[PlatformKpis]) -> Result<String, ChartError> {
    let err = chart_error("platform KPI");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let panels = root.split_evenly((1, 3));
        let metrics: [(&str, Metric); 3] = [
            ("CPC (cost / click)", |p| p.cpc),
            ("CTR (%)", |p| p.ctr_percent),
            ("ROI ((revenue − cost) / cost)", |p| p.roi),
        ];
        let names: Vec<&str> = platforms.iter().map(|p| p.platform.as_str()).collect();
        for ((panel, (caption, metric)), color) in panels.iter().zip(metrics).zip(PALETTE) {
            let values: Vec<f64> = platforms.iter().map(|p| metric(p).unwrap_or(0.0)).collect();
            bar_chart(panel, caption, &names, &values, color).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// Mean view time per audience, longest first.
fn view_time_chart(rows: &[ViewTime]) -> Result<String, ChartError> {
    let err = chart_error("view time");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let names: Vec<&str> = rows.iter().map(|r| r.audience.as_str()).collect();
        let values: Vec<f64> = rows
            .iter()
            .map(|r| r.mean_view_time.unwrap_or(0.0))
            .collect();
        bar_chart(
            &root,
            "Mean video view time per audience (s)",
            &names,
            &values,
            PALETTE[0],
        )
        .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

type Area<'a, 'b> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// What drawing on an SVG string can fail with.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

fn bar_chart(
    area: &Area<'_, '_>,
    caption: &str,
    names: &[&str],
    values: &[f64],
    color: RGBColor,
) -> Result<(), DrawError> {
    let low = values.iter().copied().fold(0.0_f64, f64::min);
    let high = values.iter().copied().fold(0.0_f64, f64::max);
    // A flat or empty chart still needs a non-empty range.
    let (low, high) = if high - low > 0.0 {
        (low * 1.1, high * 1.1)
    } else {
        (0.0, 1.0)
    };
    let count = names.len().max(1) as i32;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..count).into_segmented(), low..high)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len().max(1))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => names
                .get(*i as usize)
                .map(std::string::ToString::to_string)
                .unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    if names.is_empty() {
        let (width, height) = area.dim_in_pixel();
        let style = ("sans-serif", 16).into_text_style(area);
        area.draw_text(
            "no data",
            &style,
            (width as i32 / 2 - 30, height as i32 / 2),
        )?;
        return Ok(());
    }
    // Bars drawn one by one, in order: plotters' Histogram sums through a HashMap, so its
    // SVG element order (and the report's bytes) would change from run to run.
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let i = i as i32;
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *v),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    Ok(())
}

/// The tables as aligned plain text, for the terminal (`etl report marketing`).
pub fn text(report: &KpiReport) -> String {
    let mut out = format!(
        "Marketing KPI report, {} ({} rows)\n",
        report.logical_date, report.rows
    );
    for (title, header, rows) in tables(report) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut line = String::new();
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                let pad = width.saturating_sub(cell.chars().count());
                // Names left, numbers right.
                let numeric = i > 0
                    && cell
                        .chars()
                        .all(|c| c.is_ascii_digit() || ".-/na".contains(c));
                if numeric {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
            line.trim_end().to_string()
        };
        let _ = writeln!(out, "\n{title}");
        let _ = writeln!(out, "{}", line(&header));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
    }
    out
}
