//! PostgreSQL's binary COPY format for `hr.employees`, encoded by hand.
//!
//! The generator threads turn employees into COPY bytes themselves, so the task that talks to
//! PostgreSQL only forwards buffers: tokio-postgres' `BinaryCopyInWriter` encodes one row per
//! `await` on that task, which made it the bottleneck once generation ran on every core. The
//! format is documented in "COPY — Binary Format" of the PostgreSQL manual; every value here is
//! one the server's own `*_recv` functions accept, and `salary` is `numeric` in its wire form
//! (base-10000 digits), which the tests pin against `numeric_send`.

use chrono::{Datelike, NaiveDate};

use super::clean::Employee;
use super::load::IdBlocks;

/// The columns every COPY of employees sends, in this order (the staging table of the legacy
/// path has the same ones).
pub const COLUMNS: &str = "employee_id, logical_date, batch_seed, batch_index, full_name, \
                           job_title, department, email, salary, hire_date";

const FIELDS: i16 = 10;

/// Signature, flags (no OIDs), header extension length (none).
pub const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A field count of -1 ends the data.
pub const TRAILER: &[u8; 2] = &(-1_i16).to_be_bytes();

/// A date in the binary format: days since 2000-01-01.
fn pg_days(date: NaiveDate) -> i32 {
    /// `NaiveDate::from_ymd(2000, 1, 1).num_days_from_ce()`.
    const PG_EPOCH_DAYS_FROM_CE: i32 = 730_120;
    date.num_days_from_ce() - PG_EPOCH_DAYS_FROM_CE
}

/// What every row of one batch shares.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    logical_date: i32,
    batch_seed: i64,
    /// `employee_id` from `batch_index`.
    ids: IdBlocks,
}

/// Bytes a typical row takes, to size buffers (names and titles vary; this errs high).
pub const TYPICAL_ROW_BYTES: usize = 190;

impl RowEncoder {
    pub fn new(logical_date: NaiveDate, batch_seed: i64, ids: IdBlocks) -> Self {
        Self {
            logical_date: pg_days(logical_date),
            batch_seed,
            ids,
        }
    }

    /// Appends one tuple: the columns of [`COLUMNS`], in order.
    pub fn put(&self, buf: &mut Vec<u8>, e: &Employee) {
        buf.extend_from_slice(&FIELDS.to_be_bytes());
        // Indexes are never negative: the generator numbers rows from 0 as u32.
        put_i64(buf, self.ids.id(e.index as u32));
        put_i32(buf, self.logical_date);
        put_i64(buf, self.batch_seed);
        put_i32(buf, e.index);
        put_text(buf, &e.full_name);
        put_text(buf, &e.job_title);
        put_text(buf, &e.department);
        put_text(buf, &e.email);
        put_numeric_cents(buf, e.salary_cents);
        put_i32(buf, pg_days(e.hire_date));
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    // Every value here is far below 1 GB, the format's (and PostgreSQL's) field limit.
    buf.extend_from_slice(&(len as i32).to_be_bytes());
}

fn put_i32(buf: &mut Vec<u8>, value: i32) {
    put_len(buf, 4);
    buf.extend_from_slice(&value.to_be_bytes());
}

fn put_i64(buf: &mut Vec<u8>, value: i64) {
    put_len(buf, 8);
    buf.extend_from_slice(&value.to_be_bytes());
}

/// `text` and `varchar` travel as their UTF-8 bytes.
fn put_text(buf: &mut Vec<u8>, value: &str) {
    put_len(buf, value.len());
    buf.extend_from_slice(value.as_bytes());
}

/// `numeric` with scale 2 from whole cents: ndigits, weight, sign, dscale, then base-10000
/// digits, most significant first, without leading or trailing zero digits (the form
/// `numeric_send` produces; the server would strip them anyway).
fn put_numeric_cents(buf: &mut Vec<u8>, cents: i64) {
    const NBASE: u64 = 10_000;
    const POSITIVE: u16 = 0x0000;
    const NEGATIVE: u16 = 0x4000;
    const DSCALE: u16 = 2;

    let abs = cents.unsigned_abs();
    let (mut whole, fraction) = (abs / 100, (abs % 100) * 100);
    // u64::MAX / 100 has 18 decimal digits: five base-10000 digits, plus one for the cents.
    let mut digits = [0u16; 6];
    let mut whole_digits = 0usize;
    while whole > 0 {
        digits[whole_digits] = (whole % NBASE) as u16;
        whole /= NBASE;
        whole_digits += 1;
    }
    digits[..whole_digits].reverse();
    digits[whole_digits] = fraction as u16;
    let mut weight = whole_digits as i16 - 1;
    let (mut start, mut end) = (0, whole_digits + 1);
    // Only a value under 1 can start with a zero digit (its whole part has none).
    while start < end && digits[start] == 0 {
        start += 1;
        weight -= 1;
    }
    while end > start && digits[end - 1] == 0 {
        end -= 1;
    }
    let (sign, weight) = match (start == end, cents < 0) {
        (true, _) => (POSITIVE, 0), // zero
        (false, true) => (NEGATIVE, weight),
        (false, false) => (POSITIVE, weight),
    };
    let ndigits = end - start;
    put_len(buf, 8 + 2 * ndigits);
    buf.extend_from_slice(&(ndigits as i16).to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&DSCALE.to_be_bytes());
    for digit in &digits[start..end] {
        buf.extend_from_slice(&digit.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn numeric(cents: i64) -> Vec<u8> {
        let mut buf = Vec::new();
        put_numeric_cents(&mut buf, cents);
        assert_eq!(
            i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize,
            buf.len() - 4
        );
        buf.split_off(4)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn numeric_matches_what_postgres_sends() {
        // `SELECT numeric_send(x::numeric(12, 2))` on PostgreSQL 15.
        for (cents, sent) in [
            (1_234_567, "0003000100000002000109291a2c"), // 12345.67
            (1_000_000, "00010001000000020001"),         // 10000.00
            (100_000_000, "00010001000000020064"),       // 1000000.00
            (5, "0001ffff0000000201f4"),                 // 0.05
            (0, "0000000000000002"),                     // 0
            (100_010, "000200000000000203e803e8"),       // 1000.10
            (-2_550, "000200004000000200191388"),        // -25.50
        ] {
            assert_eq!(numeric(cents), hex(sent), "{cents} cents");
        }
    }

    #[test]
    fn numeric_handles_the_extremes() {
        // i64::MIN cents: 92233720368547758.08, six digits, no overflow.
        let min = numeric(i64::MIN);
        assert_eq!(&min[..2], &6_i16.to_be_bytes());
        assert_eq!(&min[4..6], &0x4000_u16.to_be_bytes());
    }

    #[test]
    fn a_row_has_ten_fields_and_the_dates_count_from_2000() {
        let day = NaiveDate::from_ymd_opt(2000, 1, 2).unwrap();
        assert_eq!(pg_days(day), 1);
        let employee = Employee {
            index: 3,
            full_name: "Ana Núñez".into(),
            job_title: "Contable".into(),
            department: "Finanzas".into(),
            email: "ana.nunez3@empresa.es".into(),
            salary_cents: 3_500_000,
            hire_date: day,
        };
        let mut buf = Vec::new();
        let ids = IdBlocks::new(vec![1000], NonZeroU32::new(10).unwrap(), 10).unwrap();
        RowEncoder::new(day, 7, ids).put(&mut buf, &employee);
        assert_eq!(&buf[..2], &10_i16.to_be_bytes());
        // employee_id = the block's base + index
        assert_eq!(&buf[2..6], &8_i32.to_be_bytes());
        assert_eq!(&buf[6..14], &1003_i64.to_be_bytes());
        let name = "Ana Núñez".as_bytes();
        assert!(buf.windows(name.len()).any(|w| w == name));
        assert!(buf.len() < TYPICAL_ROW_BYTES);
        assert_eq!(HEADER.len(), 19);
        assert_eq!(TRAILER, &[0xff, 0xff]);
    }
}
