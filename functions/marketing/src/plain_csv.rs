//! Our own reader for the common case: a raw partition that is plain CSV (no quotes, no
//! carriage returns, twelve non-empty fields on every line) whose rows all pass every rule.
//! It parses and checks the bytes in one pass and builds the columns directly, without a
//! polars query: polars' CSV scan has a fixed cost per query and counts lines before it
//! parses, which made it most of unify's checking time (BENCHMARKS.md).
//!
//! It only ever says "these rows are all good", never "corrupt" or "rejected": anything it
//! does not recognise, or any row that breaks a rule, sends the partition to the polars path
//! (`validate`), which decides with the schema and the rules as before. So the semantics are
//! polars', and this reader must accept a row only where polars would read the same values
//! and the rules would pass it; a differential test holds it to that.

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use etl_core::LogicalDate;
use polars::prelude::*;

use crate::dataset::{ranges, AUDIENCES, COLUMNS, PLATFORMS};

/// A partition's rows, all good, as the master dataset's columns.
#[derive(Debug)]
pub struct PlainRows {
    pub good: DataFrame,
    /// The body's lines, verbatim: every one is a good row.
    pub good_csv: Bytes,
}

/// Reads `raw` (its header already checked) if it is plain and every row passes the rules
/// for `date`; `None` sends it to the polars path.
pub fn read_all_good(raw: &Bytes, date: LogicalDate) -> Option<PlainRows> {
    let body_start = raw.iter().position(|&b| b == b'\n')? + 1;
    let body = raw.slice(body_start..);
    // polars reads an empty body as no rows; rare enough to leave to it, like anything odd.
    if body.is_empty() || body.last() != Some(&b'\n') {
        return None;
    }
    let text = std::str::from_utf8(&body).ok()?;
    if text.bytes().any(|b| b == b'"' || b == b'\r') {
        return None;
    }
    let rules = Rules::for_date(date);
    let mut columns = Columns::with_capacity(text.len() / 100);
    for line in text[..text.len() - 1].split('\n') {
        let row = parse_line(line)?;
        if rules.broken(&row) {
            return None;
        }
        columns.push(row);
    }
    Some(PlainRows {
        good: columns.into_frame().ok()?,
        good_csv: body,
    })
}

/// One parsed line, fields in [`COLUMNS`] order.
struct Row<'a> {
    campaign_id: &'a str,
    /// Days since 1970-01-01, as polars stores a date.
    date: i32,
    platform: &'a str,
    target_audience: &'a str,
    impressions: i64,
    ctr: f64,
    clicks: i64,
    cpc: f64,
    costo_total: f64,
    video_view_time: f64,
    conversions: i64,
    revenue: f64,
}

fn parse_line(line: &str) -> Option<Row<'_>> {
    let mut fields = line.split(',');
    let mut next = || fields.next().filter(|field| !field.is_empty());
    let row = Row {
        campaign_id: next()?,
        date: parse_date(next()?)?,
        platform: next()?,
        target_audience: next()?,
        impressions: parse_int(next()?)?,
        ctr: parse_decimal(next()?)?,
        clicks: parse_int(next()?)?,
        cpc: parse_decimal(next()?)?,
        costo_total: parse_decimal(next()?)?,
        video_view_time: parse_decimal(next()?)?,
        conversions: parse_int(next()?)?,
        revenue: parse_decimal(next()?)?,
    };
    // A thirteenth field: polars would not read this line as one row of ours.
    fields.next().is_none().then_some(row)
}

/// `[-]digits`, at most 18 of them (so it cannot overflow); anything else is polars' call.
fn parse_int(field: &str) -> Option<i64> {
    let digits = field.strip_prefix('-').unwrap_or(field);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

/// `[-]digits[.digits]`: the form both Rust's and polars' parsers round the same way
/// (correctly); exponents, `inf`, `NaN` and the like are polars' call.
fn parse_decimal(field: &str) -> Option<f64> {
    let unsigned = field.strip_prefix('-').unwrap_or(field);
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let plain = match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    };
    if !plain {
        return None;
    }
    field.parse().ok()
}

/// `YYYY-MM-DD` exactly, as days since 1970-01-01.
fn parse_date(field: &str) -> Option<i32> {
    let bytes = field.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &bytes[range];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    Some(date.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
}

/// 1970-01-01 counted from 0001-01-01 (chrono's `num_days_from_ce`).
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The rules of `validate::rules`, in plain arithmetic. Each comparison is the polars
/// expression's, in the same floating-point operations and order, so a row passes here
/// exactly when it passes there.
struct Rules {
    first_day: i32,
    last_day: i32,
}

impl Rules {
    fn for_date(date: LogicalDate) -> Self {
        let last = date.date();
        let first = last - chrono::Duration::days(ranges::DAYS_BACK);
        let day = |d: NaiveDate| d.num_days_from_ce() - EPOCH_DAYS_FROM_CE;
        Self {
            first_day: day(first),
            last_day: day(last),
        }
    }

    fn broken(&self, row: &Row<'_>) -> bool {
        let outside = |value: f64, low: f64, high: f64| value < low || value > high;
        let bp = |v: i64| v as f64 / 10_000.0;
        let cents = |v: i64| v as f64 / 100.0;
        let cost_tolerance = 0.005 + 1e-9;
        let cost_gap = row.costo_total - row.clicks as f64 * row.cpc;
        let expected_clicks = (row.impressions as f64 * row.ctr + 1e-6) as i64;
        !PLATFORMS.contains(&row.platform)
            || !AUDIENCES.contains(&row.target_audience)
            || row.date < self.first_day
            || row.date > self.last_day
            || outside(
                row.impressions as f64,
                ranges::IMPRESSIONS.0 as f64,
                ranges::IMPRESSIONS.1 as f64,
            )
            || outside(row.ctr, bp(ranges::CTR_BP.0), bp(ranges::CTR_BP.1))
            || outside(
                row.cpc,
                cents(ranges::CPC_CENTS.0),
                cents(ranges::CPC_CENTS.1),
            )
            || outside(
                row.video_view_time,
                cents(ranges::VIEW_HUNDREDTHS.0),
                cents(ranges::VIEW_HUNDREDTHS.1),
            )
            || expected_clicks != row.clicks
            || cost_gap > cost_tolerance
            || cost_gap < -cost_tolerance
            || row.conversions < 0
            || row.conversions > row.clicks
            || row.revenue < 0.0
            || (row.conversions == 0 && row.revenue > 0.0)
    }
}

/// The columns being built, in [`COLUMNS`] order.
struct Columns<'a> {
    campaign_id: Vec<&'a str>,
    date: Vec<i32>,
    platform: Vec<&'a str>,
    target_audience: Vec<&'a str>,
    impressions: Vec<i64>,
    ctr: Vec<f64>,
    clicks: Vec<i64>,
    cpc: Vec<f64>,
    costo_total: Vec<f64>,
    video_view_time: Vec<f64>,
    conversions: Vec<i64>,
    revenue: Vec<f64>,
}

impl<'a> Columns<'a> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            campaign_id: Vec::with_capacity(rows),
            date: Vec::with_capacity(rows),
            platform: Vec::with_capacity(rows),
            target_audience: Vec::with_capacity(rows),
            impressions: Vec::with_capacity(rows),
            ctr: Vec::with_capacity(rows),
            clicks: Vec::with_capacity(rows),
            cpc: Vec::with_capacity(rows),
            costo_total: Vec::with_capacity(rows),
            video_view_time: Vec::with_capacity(rows),
            conversions: Vec::with_capacity(rows),
            revenue: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, row: Row<'a>) {
        self.campaign_id.push(row.campaign_id);
        self.date.push(row.date);
        self.platform.push(row.platform);
        self.target_audience.push(row.target_audience);
        self.impressions.push(row.impressions);
        self.ctr.push(row.ctr);
        self.clicks.push(row.clicks);
        self.cpc.push(row.cpc);
        self.costo_total.push(row.costo_total);
        self.video_view_time.push(row.video_view_time);
        self.conversions.push(row.conversions);
        self.revenue.push(row.revenue);
    }

    /// The frame, with the schema's names and types (`dataset::schema`).
    fn into_frame(self) -> PolarsResult<DataFrame> {
        let height = self.date.len();
        let text = |name: &str, values: Vec<&str>| {
            StringChunked::from_iter_values(name.into(), values.into_iter()).into_column()
        };
        let int = |name: &str, values: Vec<i64>| {
            Int64Chunked::from_vec(name.into(), values).into_column()
        };
        let float = |name: &str, values: Vec<f64>| {
            Float64Chunked::from_vec(name.into(), values).into_column()
        };
        let [campaign_id, date, platform, target_audience, impressions, ctr, clicks, cpc, costo_total, video_view_time, conversions, revenue] =
            COLUMNS;
        DataFrame::new(
            height,
            vec![
                text(campaign_id, self.campaign_id),
                Int32Chunked::from_vec(date.into(), self.date)
                    .into_date()
                    .into_column(),
                text(platform, self.platform),
                text(target_audience, self.target_audience),
                int(impressions, self.impressions),
                float(ctr, self.ctr),
                int(clicks, self.clicks),
                float(cpc, self.cpc),
                float(costo_total, self.costo_total),
                float(video_view_time, self.video_view_time),
                int(conversions, self.conversions),
                float(revenue, self.revenue),
            ],
        )
    }
}
