//! The logical date (Airflow's data interval start) that keys every stage run.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar day, `YYYY-MM-DD`, within a sane range. Every stage is idempotent per date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalDate(NaiveDate);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogicalDateError {
    #[error("logical date {0:?} is not a calendar date in YYYY-MM-DD form")]
    Format(String),
    #[error("logical date {0} is outside the supported years 1970-2200")]
    OutOfRange(NaiveDate),
}

impl LogicalDate {
    pub fn new(date: NaiveDate) -> Result<Self, LogicalDateError> {
        if (1970..=2200).contains(&date.year()) {
            Ok(Self(date))
        } else {
            Err(LogicalDateError::OutOfRange(date))
        }
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The next day: the exclusive end of this date's data interval.
    pub fn next(self) -> Option<Self> {
        self.0.succ_opt().and_then(|d| Self::new(d).ok())
    }

    /// `dt=YYYY-MM-DD`, the Hive-style partition segment of S3 keys.
    pub fn partition(self) -> String {
        format!("dt={self}")
    }
}

impl FromStr for LogicalDate {
    type Err = LogicalDateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exactly ten characters: chrono alone would accept "2026-1-5".
        if s.len() != 10 {
            return Err(LogicalDateError::Format(s.to_string()));
        }
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| LogicalDateError::Format(s.to_string()))?;
        Self::new(date)
    }
}

impl fmt::Display for LogicalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for LogicalDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LogicalDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strict_dates_only() {
        let d: LogicalDate = "2026-11-25".parse().unwrap();
        assert_eq!(d.to_string(), "2026-11-25");
        assert_eq!(d.partition(), "dt=2026-11-25");
        assert_eq!(d.next().unwrap().to_string(), "2026-11-26");
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-11-25",
            "2026-1-5 ",
            "yesterday",
            "",
        ] {
            assert!(
                bad.parse::<LogicalDate>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            "0999-01-01".parse::<LogicalDate>(),
            Err(LogicalDateError::OutOfRange(_))
        ));
    }

    #[test]
    fn round_trips_through_json() {
        let d: LogicalDate = serde_json::from_str("\"2024-02-29\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2024-02-29\"");
        let err = serde_json::from_str::<LogicalDate>("\"2023-02-29\"").unwrap_err();
        assert!(err.to_string().contains("2023-02-29"), "{err}");
    }
}
