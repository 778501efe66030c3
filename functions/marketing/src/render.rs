//! The report's human-readable forms: Markdown tables, and a self-contained HTML page whose
//! charts are SVG drawn by plotters and inlined (no script, no external file).

use std::fmt::Write as _;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::kpi::{KpiReport, PlatformKpis, ViewTime};

/// `"-1234567.891"` → `"-1,234,567.891"`: the integer part's digits grouped by three, so a
/// reader sees `125,290,238,048` rather than counting the digits of `125290238048`.
pub fn group_thousands(formatted: &str) -> String {
    let (sign, unsigned) = match formatted.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", formatted),
    };
    let integer_digits = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let (integer, rest) = unsigned.split_at(integer_digits);
    let mut out = String::with_capacity(formatted.len() + integer.len() / 3);
    out.push_str(sign);
    for (i, digit) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out.push_str(rest);
    out
}

fn decimal(value: f64, decimals: usize) -> String {
    group_thousands(&format!("{value:.decimals$}"))
}

fn integer(value: impl std::fmt::Display) -> String {
    group_thousands(&value.to_string())
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| decimal(v, decimals))
}

fn money(value: f64) -> String {
    decimal(value, 2)
}

/// The platform table's rows: name, then formatted cells, shared by Markdown and HTML.
fn platform_cells(p: &PlatformKpis) -> [String; 9] {
    [
        p.platform.clone(),
        integer(p.totals.impressions),
        integer(p.totals.clicks),
        integer(p.totals.conversions),
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
    cells.push(integer(v.rows));
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
        integer(report.rows)
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
        integer(report.rows)
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
        // The decimals are the tables': each bar is labelled with its table value.
        let metrics: [(&str, Metric, usize); 3] = [
            ("CPC (cost / click)", |p| p.cpc, 4),
            ("CTR (%)", |p| p.ctr_percent, 3),
            ("ROI ((revenue − cost) / cost)", |p| p.roi, 3),
        ];
        let names: Vec<&str> = platforms.iter().map(|p| p.platform.as_str()).collect();
        for ((panel, (caption, metric, decimals)), color) in panels.iter().zip(metrics).zip(PALETTE)
        {
            let values: Vec<f64> = platforms.iter().map(|p| metric(p).unwrap_or(0.0)).collect();
            let bars = Bars {
                caption,
                names: &names,
                values: &values,
                decimals,
                color,
            };
            bar_chart(panel, &bars).map_err(&err)?;
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
        let bars = Bars {
            caption: "Mean video view time per audience (s)",
            names: &names,
            values: &values,
            decimals: 3,
            color: PALETTE[0],
        };
        bar_chart(&root, &bars).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

type Area<'a, 'b> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// What drawing on an SVG string can fail with.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// One bar chart: a bar per name, each labelled with its value to `decimals` places.
struct Bars<'a> {
    caption: &'a str,
    names: &'a [&'a str],
    values: &'a [f64],
    decimals: usize,
    color: RGBColor,
}

/// The grid: a few light lines at the y labels, nothing between them, so the bars stand out.
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Decimals for y-axis labels spanning `span`: enough to tell the labels apart.
fn axis_decimals(span: f64) -> usize {
    if span >= 10.0 || span <= 0.0 {
        0
    } else {
        // A fifth of the span is about one label step.
        (-(span / 5.0).log10()).ceil().max(0.0) as usize
    }
}

/// Bars from zero (the axis is never truncated, so bar heights stay proportional), each
/// labelled with its exact value: two values 0.1 % apart get bars that look the same, and
/// their labels are what tells them apart.
fn bar_chart(area: &Area<'_, '_>, bars: &Bars<'_>) -> Result<(), DrawError> {
    let Bars {
        caption,
        names,
        values,
        decimals,
        color,
    } = *bars;
    let low = values.iter().copied().fold(0.0_f64, f64::min);
    let high = values.iter().copied().fold(0.0_f64, f64::max);
    // Room above (and below) the bars for their labels; a flat or empty chart still needs a
    // non-empty range.
    let (low, high) = if high - low > 0.0 {
        (low * 1.15, high * 1.15)
    } else {
        (0.0, 1.0)
    };
    // An i32 range is inclusive and segmenting adds a slot after its last value, so
    // `0..count - 1` gives exactly one slot per bar.
    let last = names.len().max(1) as i32 - 1;
    let y_decimals = axis_decimals(high - low);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..last).into_segmented(), low..high)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .y_labels(6)
        .y_label_formatter(&|y| decimal(*y, y_decimals))
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
    let end_of = |i: i32| {
        if i >= last {
            SegmentValue::Last
        } else {
            SegmentValue::Exact(i + 1)
        }
    };
    // Bars drawn one by one, in order: plotters' Histogram sums through a HashMap, so its
    // SVG element order (and the report's bytes) would change from run to run.
    chart.draw_series(values.iter().zip(0..).map(|(v, i)| {
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (end_of(i), *v)],
            color.filled(),
        );
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    let label_style = |v: f64| {
        // Above a bar that goes up, below one that goes down.
        let vertical = if v < 0.0 { VPos::Top } else { VPos::Bottom };
        ("sans-serif", 12)
            .into_text_style(area)
            .pos(Pos::new(HPos::Center, vertical))
    };
    chart.draw_series(values.iter().zip(0..).map(|(v, i)| {
        Text::new(
            decimal(*v, decimals),
            (SegmentValue::CenterOf(i), *v),
            label_style(*v),
        )
    }))?;
    Ok(())
}

/// The tables as aligned plain text, for the terminal (`etl report marketing`).
pub fn text(report: &KpiReport) -> String {
    let mut out = format!(
        "Marketing KPI report, {} ({} rows)\n",
        report.logical_date,
        integer(report.rows)
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
                        .all(|c| c.is_ascii_digit() || ".,-/na".contains(c));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::Totals;

    fn platform(name: &str, impressions: i64, cost_cents: i64) -> PlatformKpis {
        let totals = Totals {
            rows: 250_000,
            impressions,
            clicks: impressions / 40,
            conversions: impressions / 1_000,
            cost_cents,
            revenue_cents: cost_cents * 3,
            view_time_hundredths: 125_000_000,
        };
        PlatformKpis::new(name.to_string(), totals)
    }

    fn view(audience: &str, mean: f64) -> ViewTime {
        ViewTime {
            platform: None,
            audience: audience.to_string(),
            rows: 62_500,
            mean_view_time: Some(mean),
        }
    }

    /// Two platforms whose KPIs differ by about 0.1 %, and audiences likewise.
    fn report() -> KpiReport {
        let platforms = vec![
            platform("Facebook ADS", 125_290_238_048, 7_830_639_878),
            platform("Google ADS", 125_415_528_286, 7_838_470_518),
        ];
        let both = platform("All platforms", 250_705_766_334, 15_669_110_396);
        KpiReport {
            logical_date: "2026-11-24".to_string(),
            rows: 500_000,
            overall: both,
            platforms,
            view_time_by_audience: vec![
                view("Mujer 18-25", 5.011),
                view("Hombre +46", 5.006),
                view("Mujer +46", 5.001),
            ],
            view_time_by_platform_audience: Vec::new(),
        }
    }

    /// Every element of one kind in an SVG, as its attribute text.
    fn elements<'a>(svg: &'a str, tag: &str) -> Vec<&'a str> {
        svg.split(&format!("<{tag} "))
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap_or_default())
            .collect()
    }

    fn attribute(element: &str, name: &str) -> f64 {
        let start = element
            .find(&format!(" {name}=\""))
            .map(|i| i + name.len() + 3);
        let start = start.or_else(|| {
            element
                .starts_with(&format!("{name}=\""))
                .then_some(name.len() + 2)
        });
        let value = &element[start.unwrap_or_else(|| panic!("no {name} in {element}"))..];
        value[..value.find('"').unwrap()].parse().unwrap()
    }

    /// The text of every `<text>` element.
    fn labels(svg: &str) -> Vec<String> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .map(|(_, rest)| {
                rest.split('<')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    fn charts(html: &str) -> Vec<&str> {
        html.split("<svg").skip(1).collect()
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands("125290238048"), "125,290,238,048");
        assert_eq!(group_thousands("-1234567.891"), "-1,234,567.891");
        assert_eq!(group_thousands("999.5"), "999.5");
        assert_eq!(group_thousands("1000"), "1,000");
        assert_eq!(group_thousands("0.0625"), "0.0625");
        assert_eq!(group_thousands("n/a"), "n/a");
    }

    #[test]
    fn every_number_shown_has_thousands_separators() {
        let report = report();
        let html = html(&report).unwrap();
        for shown in [html.as_str(), &markdown(&report), &text(&report)] {
            assert!(shown.contains("125,290,238,048"), "impressions grouped");
            assert!(shown.contains("500,000"), "rows grouped");
            assert!(shown.contains("78,306,398.78"), "money grouped");
            assert!(shown.contains("62,500"), "audience rows grouped");
            assert!(!shown.contains("125290238048") && !shown.contains("78306398.78"));
        }
        assert!(
            text(&report).contains("  125,290,238,048  "),
            "grouped numbers are still right-aligned in the terminal"
        );
    }

    /// The x coordinates a grid line (a `line` or a `polyline`) passes through.
    fn xs(element: &str) -> Vec<f64> {
        if element.contains("points=\"") {
            let points = element.split("points=\"").nth(1).unwrap_or_default();
            let points = points.split('"').next().unwrap_or_default();
            points
                .split_whitespace()
                .filter_map(|point| point.split(',').next()?.parse().ok())
                .collect()
        } else {
            vec![attribute(element, "x1"), attribute(element, "x2")]
        }
    }

    #[test]
    fn each_bar_chart_has_one_slot_per_bar_and_a_light_grid() {
        let html = html(&report()).unwrap();
        let charts = charts(&html);
        assert_eq!(charts.len(), 2);
        let fill = |c: RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let grid = format!("stroke=\"#{:02X}{:02X}{:02X}\"", GRID.0, GRID.1, GRID.2);
        // (chart, panels side by side, bars in each, the figure's width)
        for (svg, panels, bars_per_panel, width) in
            [(charts[0], 3_u32, 2, 900.0), (charts[1], 1, 3, 900.0)]
        {
            let lines: Vec<&str> = elements(svg, "line")
                .into_iter()
                .chain(elements(svg, "polyline"))
                .collect();
            let grid_lines: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains(&grid))
                .collect();
            assert!(!grid_lines.is_empty(), "a light grid");
            assert!(
                grid_lines.len() <= 8 * panels as usize,
                "a few grid lines, at the y labels: {} in {panels} panels",
                grid_lines.len()
            );
            assert!(
                lines.iter().all(|l| l.contains("opacity=\"1\"")),
                "no faint minor grid between them"
            );
            let panel_width = width / f64::from(panels);
            for (panel, color) in PALETTE.iter().take(panels as usize).enumerate() {
                let (from, to) = (panel as f64 * panel_width, (panel + 1) as f64 * panel_width);
                let grid_xs: Vec<f64> = grid_lines
                    .iter()
                    .flat_map(|l| xs(l))
                    .filter(|x| (from..to).contains(x))
                    .collect();
                let plot_left = grid_xs.iter().copied().fold(f64::MAX, f64::min);
                let plot_right = grid_xs.iter().copied().fold(f64::MIN, f64::max);
                let bars: Vec<(f64, f64)> = elements(svg, "rect")
                    .into_iter()
                    .filter(|rect| rect.contains(&fill(*color)))
                    .map(|r| (attribute(r, "x"), attribute(r, "x") + attribute(r, "width")))
                    .collect();
                assert_eq!(bars.len(), bars_per_panel, "panel {panel}");
                // Each bar is its slot less 8 px a side, and the slots fill the plot: an
                // empty slot at the end left a slot's width after the last bar.
                let slot = (plot_right - plot_left) / bars_per_panel as f64;
                for (i, (left, right)) in bars.iter().enumerate() {
                    let slot_left = plot_left + i as f64 * slot;
                    assert!(
                        (left - slot_left - 8.0).abs() <= 2.0
                            && (slot_left + slot - 8.0 - right).abs() <= 2.0,
                        "panel {panel} bar {i}: {left}..{right} in a slot {slot_left}..{}",
                        slot_left + slot
                    );
                }
            }
        }
    }

    #[test]
    fn each_bar_is_labelled_with_its_exact_value() {
        let report = report();
        let html = html(&report).unwrap();
        let charts = charts(&html);
        let platform_labels = labels(charts[0]);
        for p in &report.platforms {
            for (value, decimals) in [(p.cpc, 4), (p.ctr_percent, 3), (p.roi, 3)] {
                let label = number(value, decimals);
                assert!(
                    platform_labels.contains(&label),
                    "{label} in {platform_labels:?}"
                );
            }
        }
        let view_labels = labels(charts[1]);
        for label in ["5.011", "5.006", "5.001"] {
            assert!(
                view_labels.iter().any(|l| l == label),
                "values 0.1 % apart are told apart by their labels: {view_labels:?}"
            );
        }
        assert!(
            view_labels.iter().any(|l| l == "0"),
            "the axis starts at zero, not truncated: {view_labels:?}"
        );
    }

    #[test]
    fn axis_labels_are_grouped_too() {
        let svg = view_time_chart(&[view("Mujer 18-25", 125_000.0), view("Hombre +46", 90_000.0)])
            .unwrap();
        let labels = labels(&svg);
        assert!(
            labels.iter().any(|l| l == "125,000.000"),
            "bar label: {labels:?}"
        );
        assert!(
            labels.iter().any(|l| l == "100,000"),
            "axis label: {labels:?}"
        );
    }
}
