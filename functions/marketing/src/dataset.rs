//! The marketing dataset: its columns (the seed's, plus what ROI needs), their value ranges,
//! and where each zone keeps a date's objects in the lake.

use etl_core::LogicalDate;
use polars::prelude::{DataType, Field, Schema};

/// Columns in file order. The seed's names are kept (`costo_total` included) so the seed's
/// users can read the master CSV as before; `conversions` and `revenue` are new, for ROI.
pub const COLUMNS: [&str; 12] = [
    "campaign_id",
    "date",
    "platform",
    "target_audience",
    "impressions",
    "ctr",
    "clicks",
    "cpc",
    "costo_total",
    "video_view_time",
    "conversions",
    "revenue",
];

pub const PLATFORMS: [&str; 2] = ["Facebook ADS", "Google ADS"];

pub const AUDIENCES: [&str; 8] = [
    "Mujer 18-25",
    "Mujer 26-35",
    "Mujer 36-45",
    "Mujer +46",
    "Hombre 18-25",
    "Hombre 26-35",
    "Hombre 36-45",
    "Hombre +46",
];

/// Value ranges, inclusive. Rates and money are generated as integers (basis points, cents,
/// hundredths) so derived fields are exact and every partition is byte-for-byte reproducible.
pub mod ranges {
    pub const IMPRESSIONS: (i64, i64) = (1_000, 1_000_000);
    /// CTR in basis points: 0.0100 ..= 0.0500.
    pub const CTR_BP: (i64, i64) = (100, 500);
    /// CPC in cents: 0.01 ..= 0.50.
    pub const CPC_CENTS: (i64, i64) = (1, 50);
    /// Video view time in hundredths of a second: 0.10 ..= 10.00.
    pub const VIEW_HUNDREDTHS: (i64, i64) = (10, 1_000);
    /// Conversions per click in basis points: 0.5 % ..= 8 %.
    pub const CVR_BP: (i64, i64) = (50, 800);
    /// Revenue per conversion in cents: 2.00 ..= 20.00.
    pub const ORDER_CENTS: (i64, i64) = (200, 2_000);
    /// The seed spreads campaign dates over one year; here, the year up to the logical date.
    pub const DAYS_BACK: i64 = 364;
}

/// The explicit schema every raw partition is read with; a file that does not parse with it
/// is corrupt.
pub fn schema() -> Schema {
    Schema::from_iter([
        Field::new("campaign_id".into(), DataType::String),
        Field::new("date".into(), DataType::Date),
        Field::new("platform".into(), DataType::String),
        Field::new("target_audience".into(), DataType::String),
        Field::new("impressions".into(), DataType::Int64),
        Field::new("ctr".into(), DataType::Float64),
        Field::new("clicks".into(), DataType::Int64),
        Field::new("cpc".into(), DataType::Float64),
        Field::new("costo_total".into(), DataType::Float64),
        Field::new("video_view_time".into(), DataType::Float64),
        Field::new("conversions".into(), DataType::Int64),
        Field::new("revenue".into(), DataType::Float64),
    ])
}

/// The CSV header line, without the line break.
pub fn header() -> String {
    COLUMNS.join(",")
}

pub const RAW_PREFIX: &str = "raw/marketing";
pub const CURATED_PREFIX: &str = "curated/marketing";
pub const QUARANTINE_PREFIX: &str = "quarantine/marketing";
pub const REPORTS_PREFIX: &str = "reports/marketing";

/// The master dataset's file name, as the seed called it.
pub const MASTER_NAME: &str = "marketing_master_dataset";

/// Partition numbers are five digits in keys (`part-00042.csv`).
pub const MAX_PARTITIONS: u32 = 100_000;

pub fn raw_prefix(date: LogicalDate) -> String {
    format!("{RAW_PREFIX}/{}/", date.partition())
}

pub fn raw_key(date: LogicalDate, partition: u32) -> String {
    format!("{}part-{partition:05}.csv", raw_prefix(date))
}

/// The partition number of a raw key, if the key is one of ours.
pub fn partition_of(key: &str) -> Option<u32> {
    let name = key.rsplit('/').next()?;
    let digits = name.strip_prefix("part-")?.strip_suffix(".csv")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn curated_prefix(date: LogicalDate) -> String {
    format!("{CURATED_PREFIX}/{}/", date.partition())
}

pub fn quarantine_prefix(date: LogicalDate) -> String {
    format!("{QUARANTINE_PREFIX}/{}/", date.partition())
}

pub fn reports_prefix(date: LogicalDate) -> String {
    format!("{REPORTS_PREFIX}/{}/", date.partition())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_round_trip_their_partition_number() {
        let date: LogicalDate = "2026-11-24".parse().unwrap();
        let key = raw_key(date, 42);
        assert_eq!(key, "raw/marketing/dt=2026-11-24/part-00042.csv");
        assert_eq!(partition_of(&key), Some(42));
        assert_eq!(
            partition_of("raw/marketing/dt=2026-11-24/part-42.csv"),
            None
        );
        assert_eq!(partition_of("raw/marketing/dt=2026-11-24/notes.txt"), None);
    }

    #[test]
    fn schema_and_header_list_the_same_columns() {
        let schema = schema();
        let names: Vec<&str> = schema
            .iter_names()
            .map(polars::prelude::PlSmallStr::as_str)
            .collect();
        assert_eq!(names, COLUMNS);
        assert_eq!(header().split(',').count(), COLUMNS.len());
    }
}
