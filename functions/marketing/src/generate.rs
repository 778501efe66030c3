//! Synthetic ad-campaign rows, as the seed makes them, written straight to CSV bytes.
//!
//! A partition is a pure function of (logical date, partition number, rows, seed): its RNG is
//! seeded from those coordinates, and every number is drawn as an integer (basis points,
//! cents, hundredths) and printed exactly, so a retry rewrites identical bytes and the derived
//! fields (`clicks`, `costo_total`, `revenue`) are exactly consistent with their inputs.

use chrono::{Datelike, Duration};
use etl_core::rng::mix;
use etl_core::LogicalDate;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::dataset::{header, ranges, AUDIENCES, PLATFORMS};

/// Roughly the bytes one CSV row takes; used to size buffers.
pub const ROW_BYTES_ESTIMATE: usize = 120;

/// What identifies one raw partition's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpec {
    pub date: LogicalDate,
    pub partition: u32,
    pub rows: u32,
    pub seed: u64,
}

impl PartitionSpec {
    fn rng(&self) -> StdRng {
        let day = self.date.date().num_days_from_ce() as u64;
        StdRng::seed_from_u64(mix(mix(mix(day) ^ self.seed) ^ u64::from(self.partition)))
    }
}

/// A partition's rows, produced a chunk at a time so the caller can stream them from a
/// bounded buffer.
pub struct PartitionRows {
    rng: StdRng,
    /// Every campaign date is one of these; formatting them once saves most of the date work.
    dates: Vec<String>,
    remaining: u32,
    header_written: bool,
}

impl PartitionRows {
    pub fn new(spec: &PartitionSpec) -> Self {
        let dates = (0..=ranges::DAYS_BACK)
            .map(|back| {
                (spec.date.date() - Duration::days(back))
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .collect();
        Self {
            rng: spec.rng(),
            dates,
            remaining: spec.rows,
            header_written: false,
        }
    }

    /// Appends CSV (the header first) to `out` until it holds at least `target` bytes or the
    /// partition is complete.
    pub fn fill(&mut self, out: &mut String, target: usize) {
        if !self.header_written {
            out.push_str(&header());
            out.push('\n');
            self.header_written = true;
        }
        while self.remaining > 0 && out.len() < target {
            write_row(&mut self.rng, &self.dates, out);
            self.remaining -= 1;
        }
    }

    pub fn is_done(&self) -> bool {
        self.header_written && self.remaining == 0
    }
}

fn write_row(rng: &mut StdRng, dates: &[String], out: &mut String) {
    let id: u128 = rng.random();
    let date = &dates[rng.random_range(0..dates.len())];
    let platform = PLATFORMS[rng.random_range(0..PLATFORMS.len())];
    let audience = AUDIENCES[rng.random_range(0..AUDIENCES.len())];
    let impressions = draw(rng, ranges::IMPRESSIONS);
    let ctr_bp = draw(rng, ranges::CTR_BP);
    let clicks = impressions * ctr_bp / 10_000;
    let cpc_cents = draw(rng, ranges::CPC_CENTS);
    let cost_cents = clicks * cpc_cents;
    let view = draw(rng, ranges::VIEW_HUNDREDTHS);
    let cvr_bp = draw(rng, ranges::CVR_BP);
    let conversions = clicks * cvr_bp / 10_000;
    let order_cents = draw(rng, ranges::ORDER_CENTS);
    let revenue_cents = conversions * order_cents;
    // One row per call, half a million a day: the numbers are written digit by digit
    // rather than through `write!`, whose formatting machinery cost more than the RNG.
    write_uuid_v4(id, out);
    for text in [",", date, ",", platform, ",", audience, ","] {
        out.push_str(text);
    }
    push_integer(out, impressions);
    out.push_str(",0.");
    push_padded(out, ctr_bp, 4);
    out.push(',');
    push_integer(out, clicks);
    for amount in [cpc_cents, cost_cents, view] {
        out.push(',');
        push_hundredths(out, amount);
    }
    out.push(',');
    push_integer(out, conversions);
    out.push(',');
    push_hundredths(out, revenue_cents);
    out.push('\n');
}

fn draw(rng: &mut StdRng, (low, high): (i64, i64)) -> i64 {
    rng.random_range(low..=high)
}

fn push_integer(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// `value` with at least `width` digits, zero-padded on the left. `value` is non-negative.
fn push_padded(out: &mut String, value: i64, width: usize) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// A non-negative amount in hundredths, written as `units.hh`.
fn push_hundredths(out: &mut String, value: i64) {
    push_integer(out, value / 100);
    out.push('.');
    push_padded(out, value % 100, 2);
}

/// A random UUID (version 4, RFC 9562 variant) in its canonical lowercase form, written
/// nibble by nibble: this runs once per row, so it allocates nothing.
fn write_uuid_v4(bits: u128, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (bits & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut shift = 128;
    for position in 0..36 {
        if matches!(position, 8 | 13 | 18 | 23) {
            out.push('-');
        } else {
            shift -= 4;
            out.push(char::from(HEX[((bits >> shift) & 0xF) as usize]));
        }
    }
}

/// The whole partition as one CSV string (tests and small partitions).
pub fn partition_csv(spec: &PartitionSpec) -> String {
    let mut out = String::with_capacity(spec.rows as usize * ROW_BYTES_ESTIMATE + 256);
    PartitionRows::new(spec).fill(&mut out, usize::MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(partition: u32, seed: u64) -> PartitionSpec {
        PartitionSpec {
            date: "2026-11-24".parse().unwrap(),
            partition,
            rows: 500,
            seed,
        }
    }

    #[test]
    fn a_partition_is_a_pure_function_of_its_coordinates() {
        assert_eq!(partition_csv(&spec(3, 7)), partition_csv(&spec(3, 7)));
        assert_ne!(partition_csv(&spec(3, 7)), partition_csv(&spec(4, 7)));
        assert_ne!(partition_csv(&spec(3, 7)), partition_csv(&spec(3, 8)));
    }

    #[test]
    fn rows_are_coherent_and_in_range() {
        let csv = partition_csv(&spec(0, 1));
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(header().as_str()));
        let mut rows = 0;
        for line in lines {
            rows += 1;
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 12, "{line}");
            assert_eq!(f[0].len(), 36);
            assert_eq!(&f[0][14..15], "4", "version nibble in {}", f[0]);
            assert!(PLATFORMS.contains(&f[2]) && AUDIENCES.contains(&f[3]));
            let impressions: i64 = f[4].parse().unwrap();
            let ctr: f64 = f[5].parse().unwrap();
            let clicks: i64 = f[6].parse().unwrap();
            let cpc: f64 = f[7].parse().unwrap();
            let cost: f64 = f[8].parse().unwrap();
            let view: f64 = f[9].parse().unwrap();
            let conversions: i64 = f[10].parse().unwrap();
            let revenue: f64 = f[11].parse().unwrap();
            assert!((1_000..=1_000_000).contains(&impressions));
            assert!((0.01..=0.05).contains(&ctr));
            assert!((0.01..=0.5).contains(&cpc));
            assert!((0.1..=10.0).contains(&view));
            assert_eq!(clicks, (impressions as f64 * ctr + 1e-6) as i64, "{line}");
            assert!((cost - clicks as f64 * cpc).abs() < 0.005, "{line}");
            assert!(conversions <= clicks);
            assert_eq!(revenue == 0.0, conversions == 0, "{line}");
        }
        assert_eq!(rows, 500);
    }

    #[test]
    fn numbers_are_written_as_the_standard_formatter_writes_them() {
        for value in [
            0, 1, 9, 10, 99, 100, 101, 999, 1_000, 123_456, 1_000_000, 25_000_000,
        ] {
            let mut out = String::new();
            push_integer(&mut out, value);
            assert_eq!(out, format!("{value}"));
            out.clear();
            push_padded(&mut out, value, 4);
            assert_eq!(out, format!("{value:04}"));
            out.clear();
            push_hundredths(&mut out, value);
            assert_eq!(out, format!("{}.{:02}", value / 100, value % 100));
        }
    }

    #[test]
    fn uuids_are_canonical_version_4() {
        let mut out = String::new();
        write_uuid_v4(0, &mut out);
        assert_eq!(out, "00000000-0000-4000-8000-000000000000");
        out.clear();
        write_uuid_v4(u128::MAX, &mut out);
        assert_eq!(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        out.clear();
        write_uuid_v4(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef, &mut out);
        assert_eq!(out, "01234567-89ab-4def-8123-456789abcdef");
    }

    #[test]
    fn flushing_in_chunks_gives_the_same_bytes() {
        let whole = partition_csv(&spec(1, 1));
        let mut streamed = String::new();
        let mut rows = PartitionRows::new(&spec(1, 1));
        let mut buffer = String::new();
        let mut chunks = 0;
        while !rows.is_done() {
            rows.fill(&mut buffer, 1000);
            assert!(
                buffer.len() < 1000 + ROW_BYTES_ESTIMATE,
                "the buffer stays bounded"
            );
            streamed.push_str(&buffer);
            buffer.clear();
            chunks += 1;
        }
        assert!(chunks > 10);
        assert_eq!(streamed, whole);
    }
}
