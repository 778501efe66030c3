//! The logical date (Airflow's data interval start) that keys every stage run, and how a
//! scheduled run derives it from the time its schedule fired.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
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

/// How often a schedule starts a pipeline: the length of the data interval one run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Daily,
    Hourly,
}

impl FromStr for Cadence {
    type Err = ScheduledTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(Cadence::Daily),
            "hourly" => Ok(Cadence::Hourly),
            other => Err(ScheduledTimeError::UnknownCadence(other.to_string())),
        }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cadence::Daily => "daily",
            Cadence::Hourly => "hourly",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduledTimeError {
    #[error(
        "scheduled time {0:?} is not an RFC 3339 timestamp such as 2026-11-26T00:30:00Z \
         (was the schedule's <aws.scheduler.scheduled-time> placeholder left unreplaced?)"
    )]
    Timestamp(String),
    #[error("cadence {0:?} is unknown; use \"daily\" or \"hourly\"")]
    UnknownCadence(String),
    #[error("the interval before scheduled time {scheduled_time}: {source}")]
    OutOfRange {
        scheduled_time: String,
        #[source]
        source: LogicalDateError,
    },
}

/// The data interval a scheduled run processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScheduledInterval {
    pub logical_date: LogicalDate,
    /// The interval's hour (0-23) for an hourly cadence; `None` for a whole day.
    pub hour: Option<u32>,
}

impl ScheduledInterval {
    /// The interval that ended when the schedule fired, as Airflow's data intervals work: a
    /// daily run at 2026-11-26T00:30Z processes 2026-11-25, an hourly run at
    /// 2026-11-26T00:05Z processes 2026-11-25 hour 23. The timestamp may carry any offset;
    /// the interval is always reckoned in UTC, the time zone of every logical date.
    pub fn before(scheduled_time: &str, cadence: Cadence) -> Result<Self, ScheduledTimeError> {
        let fired: DateTime<Utc> = DateTime::parse_from_rfc3339(scheduled_time.trim())
            .map_err(|_| ScheduledTimeError::Timestamp(scheduled_time.to_string()))?
            .with_timezone(&Utc);
        let length = match cadence {
            Cadence::Daily => Duration::days(1),
            Cadence::Hourly => Duration::hours(1),
        };
        // Parsed timestamps lie in years 0-9999, so this cannot underflow; checked anyway.
        let start = fired
            .checked_sub_signed(length)
            .ok_or_else(|| ScheduledTimeError::Timestamp(scheduled_time.to_string()))?;
        let hour = match cadence {
            Cadence::Daily => None,
            Cadence::Hourly => Some(start.hour()),
        };
        let logical_date = LogicalDate::new(start.date_naive()).map_err(|source| {
            ScheduledTimeError::OutOfRange {
                scheduled_time: scheduled_time.to_string(),
                source,
            }
        })?;
        Ok(Self { logical_date, hour })
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

    fn interval(scheduled_time: &str, cadence: Cadence) -> (String, Option<u32>) {
        let got = ScheduledInterval::before(scheduled_time, cadence)
            .unwrap_or_else(|e| panic!("{scheduled_time} ({cadence}): {e}"));
        (got.logical_date.to_string(), got.hour)
    }

    #[test]
    fn a_daily_run_processes_the_day_before_it_fired() {
        let daily = |t| interval(t, Cadence::Daily);
        assert_eq!(daily("2026-11-26T00:30:00Z"), ("2026-11-25".into(), None));
        // Midnight exactly still belongs to the new day, so the run covers the one before.
        assert_eq!(daily("2026-11-26T00:00:00Z"), ("2026-11-25".into(), None));
        assert_eq!(daily("2026-11-26T23:59:59Z"), ("2026-11-25".into(), None));
        // Month, leap-day and year boundaries.
        assert_eq!(daily("2026-12-01T00:30:00Z"), ("2026-11-30".into(), None));
        assert_eq!(daily("2024-03-01T00:30:00Z"), ("2024-02-29".into(), None));
        assert_eq!(daily("2026-03-01T00:30:00Z"), ("2026-02-28".into(), None));
        assert_eq!(daily("2027-01-01T00:30:00Z"), ("2026-12-31".into(), None));
        // Fractional seconds, as some clients send them.
        assert_eq!(
            daily("2026-11-26T00:30:00.123Z"),
            ("2026-11-25".into(), None)
        );
    }

    #[test]
    fn an_hourly_run_processes_the_hour_before_it_fired() {
        let hourly = |t| interval(t, Cadence::Hourly);
        assert_eq!(
            hourly("2026-11-26T00:05:00Z"),
            ("2026-11-25".into(), Some(23))
        );
        assert_eq!(
            hourly("2026-11-26T14:05:00Z"),
            ("2026-11-26".into(), Some(13))
        );
        assert_eq!(
            hourly("2026-11-26T01:00:00Z"),
            ("2026-11-26".into(), Some(0))
        );
        assert_eq!(
            hourly("2027-01-01T00:05:00Z"),
            ("2026-12-31".into(), Some(23))
        );
        assert_eq!(
            hourly("2024-03-01T00:59:59Z"),
            ("2024-02-29".into(), Some(23))
        );
    }

    #[test]
    fn offsets_are_converted_to_utc_first() {
        // 01:30 at +02:00 is 23:30 UTC the day before: the daily run covers two days back.
        assert_eq!(
            interval("2026-11-26T01:30:00+02:00", Cadence::Daily),
            ("2026-11-24".into(), None)
        );
        // 20:05 at -05:00 is 01:05 UTC the next day.
        assert_eq!(
            interval("2026-11-25T20:05:00-05:00", Cadence::Hourly),
            ("2026-11-26".into(), Some(0))
        );
        assert_eq!(
            interval("2026-11-26T00:30:00+00:00", Cadence::Daily),
            interval("2026-11-26T00:30:00Z", Cadence::Daily)
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in [
            "",
            "<aws.scheduler.scheduled-time>",
            "2026-11-26",
            "2026-11-26 00:30:00",
            "2026-11-26T00:30:00", // no offset: ambiguous, so refused
            "2026-13-01T00:30:00Z",
            "2026-02-30T00:30:00Z",
            "yesterday",
        ] {
            assert!(
                matches!(
                    ScheduledInterval::before(bad, Cadence::Daily),
                    Err(ScheduledTimeError::Timestamp(ref t)) if t == bad
                ),
                "{bad:?} should be rejected as a timestamp"
            );
        }
        assert!(matches!(
            ScheduledInterval::before("1970-01-01T00:30:00Z", Cadence::Daily),
            Err(ScheduledTimeError::OutOfRange { .. })
        ));
        for bad in ["weekly", "Daily", ""] {
            assert_eq!(
                bad.parse::<Cadence>(),
                Err(ScheduledTimeError::UnknownCadence(bad.to_string()))
            );
        }
        assert_eq!("hourly".parse::<Cadence>(), Ok(Cadence::Hourly));
    }
}
