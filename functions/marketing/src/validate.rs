//! Reading and checking one raw partition with polars: the header must be ours, the file must
//! parse with the explicit schema, and every row must be in range and internally consistent.
//! A file that fails the first two is corrupt as a whole; a row that fails the third is
//! quarantined on its own, with the first rule it breaks as its reason.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use etl_core::LogicalDate;
use polars::prelude::*;
use polars_buffer::Buffer;

use crate::dataset::{header, ranges, schema, AUDIENCES, COLUMNS, PLATFORMS};

/// The column quarantined rows carry their reason in.
pub const REASON_COLUMN: &str = "reject_reason";
/// Working columns: which partition of a batch a row came from, and whether it breaks some
/// rule. Neither leaves this module.
const SOURCE_COLUMN: &str = "__partition_in_batch";
const BROKEN_COLUMN: &str = "__breaks_a_rule";

/// What one raw partition turned out to be.
#[derive(Debug)]
pub enum PartitionCheck {
    /// Not usable at all: wrong header, or a value that does not parse with the schema.
    Corrupt { reason: String },
    /// Parsed: `good` rows go to the master dataset, `rejected` rows (with a
    /// [`REASON_COLUMN`]) to quarantine. `good_csv` is the good rows as CSV lines, without a
    /// header, for the master CSV: the raw partition's own lines where they can be matched to
    /// the rows.
    Parsed {
        good: DataFrame,
        good_csv: Bytes,
        rejected: DataFrame,
    },
}

/// Checks one raw partition's bytes for the given logical date.
pub fn check_partition(bytes: Bytes, date: LogicalDate) -> PartitionCheck {
    let mut checks = check_partitions(vec![bytes], date);
    checks.pop().unwrap_or(PartitionCheck::Corrupt {
        reason: "not checked".into(),
    })
}

/// Checks several raw partitions. Those our own reader cannot vouch for are checked by polars,
/// in one query when they all parse: each query has a
/// fixed cost (≈ 2.5 ms for a 10,000-row partition, more than its parsing), so checking five
/// at a time halves the checking time (measured in BENCHMARKS.md). If the batch does not
/// parse, each partition is checked alone, so only the broken one is called corrupt.
/// Returns one check per input, in order.
pub fn check_partitions(batch: Vec<Bytes>, date: LogicalDate) -> Vec<PartitionCheck> {
    // Our own reader first: it takes a plain partition whose rows are all good, by far the
    // usual case, in a fraction of a polars query's time. The rest go through polars.
    let mut checks: Vec<Option<PartitionCheck>> = batch
        .iter()
        .map(|bytes| {
            check_header(bytes).ok()?;
            let rows = crate::plain_csv::read_all_good(bytes, date)?;
            Some(all_good(rows.good, rows.good_csv))
        })
        .collect();
    let left: Vec<Bytes> = batch
        .into_iter()
        .zip(&checks)
        .filter_map(|(bytes, check)| check.is_none().then_some(bytes))
        .collect();
    let mut checked_by_polars = check_with_polars(left, date).into_iter();
    checks
        .iter_mut()
        .map(|check| {
            check
                .take()
                .or_else(|| checked_by_polars.next())
                .unwrap_or(PartitionCheck::Corrupt {
                    reason: "not checked".into(),
                })
        })
        .collect()
}

/// A partition whose every row is good: no rejected rows, and the reason column there all
/// the same, as the quarantine expects.
fn all_good(good: DataFrame, good_csv: Bytes) -> PartitionCheck {
    let rejected = good
        .clear()
        .hstack(&[Column::new_empty(REASON_COLUMN.into(), &DataType::String)])
        .unwrap_or_else(|_| DataFrame::empty());
    PartitionCheck::Parsed {
        good,
        good_csv,
        rejected,
    }
}

/// [`check_partitions`] with polars alone: the schema decides what parses, the rules'
/// expressions what is rejected and why.
fn check_with_polars(batch: Vec<Bytes>, date: LogicalDate) -> Vec<PartitionCheck> {
    let headers: Vec<Result<(), String>> = batch.iter().map(|bytes| check_header(bytes)).collect();
    let readable: Vec<Bytes> = batch
        .into_iter()
        .zip(&headers)
        .filter_map(|(bytes, header)| header.is_ok().then_some(bytes))
        .collect();
    let parsed: Vec<PolarsResult<PartitionCheck>> = match parse_and_validate(&readable, date) {
        Ok(parsed) => parsed.into_iter().map(Ok).collect(),
        Err(_) if readable.len() > 1 => readable
            .iter()
            .map(|bytes| parse_and_validate_alone(bytes, date))
            .collect(),
        Err(err) => vec![Err(err)],
    };
    let mut parsed = parsed.into_iter();
    headers
        .into_iter()
        .map(|header| match header {
            Err(reason) => PartitionCheck::Corrupt { reason },
            // Only a readable partition has a parse result, in the same order.
            Ok(()) => match parsed.next() {
                Some(Ok(check)) => check,
                Some(Err(err)) => PartitionCheck::Corrupt {
                    reason: format!("does not parse with the schema: {err}"),
                },
                None => PartitionCheck::Corrupt {
                    reason: "not checked".into(),
                },
            },
        })
        .collect()
}

fn parse_and_validate_alone(bytes: &Bytes, date: LogicalDate) -> PolarsResult<PartitionCheck> {
    parse_and_validate(std::slice::from_ref(bytes), date)?
        .pop()
        .ok_or_else(|| PolarsError::NoData("the partition gave no result".into()))
}

fn check_header(bytes: &[u8]) -> Result<(), String> {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let found = String::from_utf8_lossy(&bytes[..line_end]);
    let found = found.trim_end_matches('\r');
    let expected = header();
    if found == expected {
        Ok(())
    } else {
        Err(format!(
            "header mismatch: expected {expected:?}, found {found:?}"
        ))
    }
}

/// Parses and checks partitions in one query; returns each one's check (always `Parsed`).
fn parse_and_validate(parts: &[Bytes], date: LogicalDate) -> PolarsResult<Vec<PartitionCheck>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let schema = Arc::new(schema());
    // Each scan is tagged with its place in the batch, so rows can be handed back to the
    // partition they came from.
    let scans = parts
        .iter()
        .zip(0i32..)
        .map(|(bytes, tag)| {
            let source = ScanSources::Buffers(Arc::from([Buffer::from_owner(bytes.clone())]));
            Ok(LazyCsvReader::new_with_sources(source)
                .with_has_header(true)
                .with_schema(Some(Arc::clone(&schema)))
                .finish()?
                .with_column(lit(tag).alias(SOURCE_COLUMN)))
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    // One boolean per row; the reasons (a string per row, rule by rule) are only worked out
    // for the rows that broke something, usually none.
    let checked = concat(scans, UnionArgs::default())?
        .with_column(breaks_a_rule(date).alias(BROKEN_COLUMN))
        .collect()?;
    let heights = partition_heights(checked.column(SOURCE_COLUMN)?.i32()?, parts.len())?;
    let broken = checked.column(BROKEN_COLUMN)?.bool()?.clone();
    let checked = checked.drop(SOURCE_COLUMN)?.drop(BROKEN_COLUMN)?;
    // Each partition's rows are one contiguous run of the batch: a slice, not a copy.
    let mut offset = 0usize;
    parts
        .iter()
        .zip(heights)
        .map(|(raw, height)| {
            let rows = checked.slice(offset as i64, height);
            let broken = broken.slice(offset as i64, height);
            offset += height;
            split_good_and_rejected(raw, rows, &broken, date)
        })
        .collect()
}

/// How many rows each partition of a batch has, from the batch's tag column. The union keeps
/// the scans' order; if it ever did not, the batch fails and each partition is checked alone.
fn partition_heights(source: &Int32Chunked, parts: usize) -> PolarsResult<Vec<usize>> {
    let mut heights = vec![0usize; parts];
    let mut previous = 0i32;
    for tag in source.iter() {
        let slot = tag
            .filter(|&tag| tag >= previous)
            .and_then(|tag| usize::try_from(tag).ok())
            .and_then(|index| heights.get_mut(index));
        let Some(slot) = slot else {
            return Err(PolarsError::ComputeError(
                "a batch's rows came back out of partition order".into(),
            ));
        };
        *slot += 1;
        previous = tag.unwrap_or(previous);
    }
    Ok(heights)
}

fn split_good_and_rejected(
    raw: &Bytes,
    rows: DataFrame,
    broken: &BooleanChunked,
    date: LogicalDate,
) -> PolarsResult<PartitionCheck> {
    let all_good = broken.num_trues() == 0;
    let (mut good, rejected) = if all_good {
        let none = rows
            .clear()
            .hstack(&[Column::new_empty(REASON_COLUMN.into(), &DataType::String)])?;
        (rows, none)
    } else {
        let rejected = rows
            .filter(broken)?
            .lazy()
            .with_column(reject_reason(date).alias(REASON_COLUMN))
            .collect()?;
        (rows.filter(&!broken)?, rejected)
    };
    let good_csv = match verbatim_good_lines(raw, broken, all_good) {
        Some(lines) => lines,
        None => polars_csv_lines(&mut good)?,
    };
    Ok(PartitionCheck::Parsed {
        good,
        good_csv,
        rejected,
    })
}

/// The good rows as header-less CSV lines in polars' own number format: for a partition whose
/// lines cannot be copied verbatim (see [`verbatim_good_lines`]).
fn polars_csv_lines(good: &mut DataFrame) -> PolarsResult<Bytes> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out)
        .include_header(false)
        .finish(good)?;
    Ok(Bytes::from(out))
}

/// The raw lines of the rows `broken` marks `false`, or `None` if the body's lines and the
/// parsed rows do not correspond exactly. Copying the raw lines (no copy at all when every
/// row is good) instead of formatting 500,000 rows again saved about a third of unify's
/// encoding time (BENCHMARKS.md), and the master CSV keeps the raw files' exact values. A
/// partition with quoted fields, CRLF line ends, blank or ragged lines is formatted by polars
/// instead: the same values, in polars' own number format.
fn verbatim_good_lines(raw: &Bytes, broken: &BooleanChunked, all_good: bool) -> Option<Bytes> {
    let body_start = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |p| p + 1);
    let body = raw.slice(body_start..);
    if body.is_empty() {
        return broken.is_empty().then(Bytes::new);
    }
    if body.last() != Some(&b'\n') || body.contains(&b'"') || body.contains(&b'\r') {
        return None;
    }
    let commas = COLUMNS.len() - 1;
    let rows = broken.len();
    if all_good {
        // Every row parsed into all its columns with no null, so no line has fewer fields
        // than the schema; as many lines as rows, and no spare comma anywhere, leave each
        // line exactly one row. Two counts over the bytes, not a walk line by line.
        let count = |byte: u8| body.iter().filter(|&&b| b == byte).count();
        return (count(b'\n') == rows && count(b',') == rows * commas).then_some(body);
    }
    let mut kept = Vec::with_capacity(body.len());
    let mut marks = broken.iter();
    for line in body[..body.len() - 1].split(|&b| b == b'\n') {
        let mark = marks.next()?;
        if line.iter().filter(|&&b| b == b',').count() != commas {
            return None;
        }
        // As `filter` does: a row is good only where the mark is a definite false.
        if mark == Some(false) {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
    }
    marks.next().is_none().then(|| Bytes::from(kept))
}

/// Whether a row breaks any rule. A rule whose result is null counts as kept, as it does in
/// [`reject_reason`]'s `when` chain, so the two always agree on which rows are rejected.
fn breaks_a_rule(date: LogicalDate) -> Expr {
    rules(date)
        .into_iter()
        .map(|(broken, _)| broken.fill_null(lit(false)))
        .reduce(polars::prelude::Expr::or)
        .unwrap_or(lit(false))
}

/// The first rule a row breaks, or null. Rules are checked in order, so a row with a missing
/// value is reported as such rather than as out of range.
fn reject_reason(date: LogicalDate) -> Expr {
    let rules = rules(date);
    rules.into_iter().rev().fold(
        lit(NULL).cast(DataType::String),
        |otherwise, (broken, reason)| when(broken).then(lit(reason)).otherwise(otherwise),
    )
}

fn rules(date: LogicalDate) -> Vec<(Expr, &'static str)> {
    let any_null = COLUMNS
        .iter()
        .map(|c| col(*c).is_null())
        .reduce(polars::prelude::Expr::or)
        .unwrap_or(lit(false));
    let one_of = |column: &str, allowed: &[&str]| {
        allowed
            .iter()
            .map(|value| col(column).eq(lit(*value)))
            .reduce(polars::prelude::Expr::or)
            .unwrap_or(lit(false))
            .not()
    };
    let outside = |column: &str, low: f64, high: f64| {
        col(column)
            .cast(DataType::Float64)
            .lt(lit(low))
            .or(col(column).cast(DataType::Float64).gt(lit(high)))
    };
    let day = |d: NaiveDate| (d - epoch()).num_days() as i32;
    let last = date.date();
    let first = last - Duration::days(ranges::DAYS_BACK);
    // Half a cent of rounding, plus float noise.
    let cost_tolerance = 0.005 + 1e-9;
    let cost_gap = col("costo_total") - col("clicks").cast(DataType::Float64) * col("cpc");
    // ctr has four decimals, so impressions × ctr is a multiple of 1e-4: adding 1e-6 absorbs
    // float noise without ever crossing an integer.
    let expected_clicks =
        (col("impressions").cast(DataType::Float64) * col("ctr") + lit(1e-6)).cast(DataType::Int64);
    let bp = |v: i64| v as f64 / 10_000.0;
    let cents = |v: i64| v as f64 / 100.0;
    vec![
        (any_null, "missing value"),
        (one_of("platform", &PLATFORMS), "unknown platform"),
        (
            one_of("target_audience", &AUDIENCES),
            "unknown target_audience",
        ),
        (
            col("date")
                .cast(DataType::Int32)
                .lt(lit(day(first)))
                .or(col("date").cast(DataType::Int32).gt(lit(day(last)))),
            "date outside the year up to the logical date",
        ),
        (
            outside(
                "impressions",
                ranges::IMPRESSIONS.0 as f64,
                ranges::IMPRESSIONS.1 as f64,
            ),
            "impressions out of range",
        ),
        (
            outside("ctr", bp(ranges::CTR_BP.0), bp(ranges::CTR_BP.1)),
            "ctr out of range",
        ),
        (
            outside(
                "cpc",
                cents(ranges::CPC_CENTS.0),
                cents(ranges::CPC_CENTS.1),
            ),
            "cpc out of range",
        ),
        (
            outside(
                "video_view_time",
                cents(ranges::VIEW_HUNDREDTHS.0),
                cents(ranges::VIEW_HUNDREDTHS.1),
            ),
            "video_view_time out of range",
        ),
        (
            expected_clicks.neq(col("clicks")),
            "clicks is not floor(impressions × ctr)",
        ),
        (
            cost_gap
                .clone()
                .gt(lit(cost_tolerance))
                .or(cost_gap.lt(lit(-cost_tolerance))),
            "costo_total is not clicks × cpc",
        ),
        (
            col("conversions")
                .lt(lit(0i64))
                .or(col("conversions").gt(col("clicks"))),
            "conversions outside 0..=clicks",
        ),
        (col("revenue").lt(lit(0.0)), "negative revenue"),
        (
            col("conversions")
                .eq(lit(0i64))
                .and(col("revenue").gt(lit(0.0))),
            "revenue without conversions",
        ),
    ]
}

fn epoch() -> NaiveDate {
    NaiveDate::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{partition_csv, PartitionSpec};

    fn date() -> LogicalDate {
        "2026-11-24".parse().unwrap()
    }

    fn generated(rows: u32) -> String {
        partition_csv(&PartitionSpec {
            date: date(),
            partition: 0,
            rows,
            seed: 9,
        })
    }

    /// A row whose only fault is its platform.
    const UNKNOWN_PLATFORM_ROW: &str =
        "id-1,2026-11-01,Tiktok ADS,Mujer 18-25,5000,0.0200,100,0.10,10.00,1.00,1,5.00";

    /// A CSV's lines after its header.
    fn body(csv: &str) -> Bytes {
        let (_, body) = csv.split_once('\n').unwrap();
        Bytes::from(body.to_string())
    }

    fn read_back(lines: &Bytes) -> DataFrame {
        let csv = format!("{}\n{}", header(), String::from_utf8_lossy(lines));
        CsvReadOptions::default()
            .with_has_header(true)
            .with_schema(Some(Arc::new(schema())))
            .into_reader_with_file_handle(std::io::Cursor::new(csv.into_bytes()))
            .finish()
            .unwrap()
    }

    #[test]
    fn lines_that_cannot_be_matched_to_rows_are_formatted_by_polars_with_the_same_values() {
        let plain = generated(4);
        let (head, rows) = plain.split_once('\n').unwrap();
        let (first_id, rest) = rows.split_once(',').unwrap();
        let quoted = format!("{head}\n\"{first_id}\",{rest}");
        let crlf = plain.replace('\n', "\r\n");
        let mut with_a_bad_row = crlf.clone();
        with_a_bad_row.push_str(&format!("{UNKNOWN_PLATFORM_ROW}\r\n"));
        for raw in [quoted, crlf, with_a_bad_row] {
            assert_formatted_by_polars(&raw, 4);
        }
    }

    #[test]
    fn blank_lines_are_skipped_by_polars_so_the_lines_are_formatted_again() {
        let plain = generated(4);
        let (head, rows) = plain.split_once('\n').unwrap();
        let (first, rest) = rows.split_once('\n').unwrap();
        let blank_line = format!("{head}\n{first}\n\n{rest}");
        assert_formatted_by_polars(&blank_line, 4);
        let mut and_a_bad_row = blank_line;
        and_a_bad_row.push_str(&format!("{UNKNOWN_PLATFORM_ROW}\n"));
        assert_formatted_by_polars(&and_a_bad_row, 4);
    }

    fn assert_formatted_by_polars(raw: &str, good_rows: usize) {
        match check_partition(Bytes::from(raw.to_string()), date()) {
            PartitionCheck::Parsed { good, good_csv, .. } => {
                assert_eq!(good.height(), good_rows, "{raw}");
                assert_ne!(good_csv, body(raw), "not verbatim: {raw}");
                assert!(
                    read_back(&good_csv).equals_missing(&good),
                    "same values: {}",
                    String::from_utf8_lossy(&good_csv)
                );
            }
            other => panic!("expected Parsed, got {other:?}"),
        }
    }

    fn reasons(rejected: &DataFrame) -> Vec<String> {
        rejected
            .column(REASON_COLUMN)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|r| r.unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn generated_partitions_pass_every_rule() {
        let raw = generated(2_000);
        match check_partition(Bytes::from(raw.clone()), date()) {
            PartitionCheck::Parsed {
                good,
                good_csv,
                rejected,
            } => {
                assert_eq!(good.height(), 2_000);
                assert_eq!(good_csv, body(&raw), "every line kept verbatim");
                assert_eq!(rejected.height(), 0, "{:?}", reasons(&rejected));
                assert_eq!(good.width(), COLUMNS.len());
                assert_eq!(
                    rejected.width(),
                    COLUMNS.len() + 1,
                    "the reason column is there"
                );
            }
            other => panic!("expected Parsed, got {other:?}"),
        }
    }

    #[test]
    fn broken_rows_are_rejected_with_their_reason() {
        let mut csv = generated(3);
        csv.push_str(&format!("{UNKNOWN_PLATFORM_ROW}\n"));
        csv.push_str(
            "id-2,2026-11-01,Google ADS,Mujer 18-25,5000,0.0200,99,0.10,9.90,1.00,1,5.00\n",
        );
        csv.push_str(
            "id-3,2026-11-01,Google ADS,Mujer 18-25,5000,0.0200,100,0.10,12.00,1.00,1,5.00\n",
        );
        csv.push_str(
            "id-4,2026-11-01,Google ADS,Mujer 18-25,5000,0.0200,100,0.10,10.00,1.00,0,5.00\n",
        );
        csv.push_str("id-5,2026-11-01,Google ADS,,5000,0.0200,100,0.10,10.00,1.00,1,5.00\n");
        csv.push_str(
            "id-6,2027-01-01,Google ADS,Mujer 18-25,5000,0.0200,100,0.10,10.00,1.00,1,5.00\n",
        );
        match check_partition(Bytes::from(csv), date()) {
            PartitionCheck::Parsed {
                good,
                good_csv,
                rejected,
            } => {
                assert_eq!(good.height(), 3);
                assert_eq!(
                    good_csv,
                    body(&generated(3)),
                    "only the good lines, verbatim"
                );
                assert_eq!(
                    reasons(&rejected),
                    [
                        "unknown platform",
                        "clicks is not floor(impressions × ctr)",
                        "costo_total is not clicks × cpc",
                        "revenue without conversions",
                        "missing value",
                        "date outside the year up to the logical date",
                    ]
                );
            }
            other => panic!("expected Parsed, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_hands_each_partition_its_own_rows_and_isolates_the_broken_ones() {
        let mut with_a_bad_row = generated(4);
        with_a_bad_row.push_str(&format!("{UNKNOWN_PLATFORM_ROW}\n"));
        let mut garbled = generated(2);
        garbled.push_str(
            "id-7,2026-11-01,Google ADS,Mujer 18-25,lots,0.0200,100,0.10,10.00,1.00,1,5.00\n",
        );
        let renamed = generated(2).replacen("costo_total", "cost", 1);
        let batch = [generated(3), with_a_bad_row.clone(), generated(5)];
        let checks = check_partitions(batch.iter().cloned().map(Bytes::from).collect(), date());
        let sizes: Vec<(usize, usize)> = checks
            .iter()
            .map(|check| match check {
                PartitionCheck::Parsed { good, rejected, .. } => (good.height(), rejected.height()),
                other => panic!("expected Parsed, got {other:?}"),
            })
            .collect();
        assert_eq!(sizes, [(3, 0), (4, 1), (5, 0)]);

        let batch = [generated(3), garbled, renamed, with_a_bad_row];
        let checks = check_partitions(batch.into_iter().map(Bytes::from).collect(), date());
        assert_eq!(checks.len(), 4);
        assert!(matches!(&checks[0], PartitionCheck::Parsed { good, .. } if good.height() == 3));
        assert!(
            matches!(&checks[1], PartitionCheck::Corrupt { reason } if reason.contains("parse"))
        );
        assert!(
            matches!(&checks[2], PartitionCheck::Corrupt { reason } if reason.contains("header"))
        );
        match &checks[3] {
            PartitionCheck::Parsed {
                good,
                good_csv,
                rejected,
            } => {
                assert_eq!((good.height(), rejected.height()), (4, 1));
                assert_eq!(good_csv, &body(&generated(4)));
                assert_eq!(reasons(rejected), ["unknown platform"]);
                assert_eq!(good.width(), COLUMNS.len(), "no working column leaks out");
            }
            other => panic!("expected Parsed, got {other:?}"),
        }
    }

    /// Field values that polars and our own reader might read differently, or that break a
    /// rule just at its bound.
    const AWKWARD_VALUES: [&str; 34] = [
        "",
        "0",
        "-1",
        "-0",
        "+5",
        "00012",
        " 5",
        "5 ",
        "abc",
        "1e3",
        "NaN",
        "inf",
        "1.",
        ".5",
        "9999999999999999999",
        "1000",
        "999",
        "1000000",
        "1000001",
        "0.01",
        "0.0099",
        "0.05",
        "0.0501",
        "0.10",
        "10.00",
        "10.01",
        "2026-11-24",
        "2026-11-25",
        "2025-11-25",
        "2025-11-24",
        "2026-13-01",
        "2026/11/01",
        "Google ADS",
        "Hombre +46",
    ];

    #[test]
    fn our_reader_accepts_only_what_polars_reads_the_same_and_passes() {
        let plain = generated(6);
        let fast = crate::plain_csv::read_all_good(&Bytes::from(plain.clone()), date());
        assert!(fast.is_some(), "generated partitions take the fast path");
        let lines: Vec<&str> = plain.lines().collect();
        let mut accepted = 0;
        for field in 0..COLUMNS.len() {
            for value in AWKWARD_VALUES {
                let mut cells: Vec<&str> = lines[3].split(',').collect();
                cells[field] = value;
                let row = cells.join(",");
                let mut changed = lines.clone();
                changed[3] = &row;
                let raw = Bytes::from(format!("{}\n", changed.join("\n")));
                let Some(fast) = crate::plain_csv::read_all_good(&raw, date()) else {
                    continue;
                };
                accepted += 1;
                let slow = check_with_polars(vec![raw], date()).pop();
                match slow {
                    Some(PartitionCheck::Parsed {
                        good,
                        good_csv,
                        rejected,
                    }) => {
                        assert_eq!(rejected.height(), 0, "{row}: {:?}", reasons(&rejected));
                        assert!(good.equals_missing(&fast.good), "{row}");
                        assert_eq!(good.schema(), fast.good.schema(), "{row}");
                        assert_eq!(good_csv, fast.good_csv, "{row}");
                    }
                    other => panic!("{row}: ours took it, polars says {other:?}"),
                }
            }
        }
        assert!(
            accepted > 0,
            "some changes keep the row valid (a new campaign_id)"
        );
    }

    #[test]
    fn partitions_our_reader_declines_are_still_checked_by_polars() {
        let mut crlf = generated(3).replace('\n', "\r\n");
        crlf.push_str(&format!("{UNKNOWN_PLATFORM_ROW}\r\n"));
        assert!(crate::plain_csv::read_all_good(&Bytes::from(crlf.clone()), date()).is_none());
        match check_partition(Bytes::from(crlf), date()) {
            PartitionCheck::Parsed { good, rejected, .. } => {
                assert_eq!((good.height(), reasons(&rejected).len()), (3, 1));
            }
            other => panic!("expected Parsed, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_header_or_an_unparsable_value_makes_the_partition_corrupt() {
        let renamed = generated(2).replacen("costo_total", "cost", 1);
        assert!(matches!(
            check_partition(Bytes::from(renamed), date()),
            PartitionCheck::Corrupt { reason } if reason.contains("header mismatch")
        ));
        let mut garbled = generated(2);
        garbled.push_str(
            "id-7,2026-11-01,Google ADS,Mujer 18-25,lots,0.0200,100,0.10,10.00,1.00,1,5.00\n",
        );
        assert!(matches!(
            check_partition(Bytes::from(garbled), date()),
            PartitionCheck::Corrupt { reason } if reason.contains("parse")
        ));
        assert!(matches!(
            check_partition(Bytes::from_static(b"\x00\x01binary"), date()),
            PartitionCheck::Corrupt { .. }
        ));
    }
}
