//! Durations and counts read at run time: a Wait state's delay, a Task's
//! `TimeoutSecondsPath` and a Map's `MaxConcurrencyPath`.
//!
//! Timestamps follow the ASL's profile of RFC 3339: an uppercase `T` between date and time,
//! an uppercase `Z` for UTC (<https://states-language.net/spec.html#timestamps>).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::runtime;
use crate::model::{MapState, TaskState, WaitState};
use crate::template::{read, Roots};
use crate::Failure;

/// The longest wait the service runs: a standard execution lasts at most a year.
pub const MAX_WAIT_SECONDS: f64 = 365.0 * 86_400.0;

/// The seconds a Wait state waits (0 for a timestamp already past).
pub fn seconds(wait: &WaitState, effective: &Value, roots: Roots<'_>) -> Result<f64, Failure> {
    let seconds = if let Some(s) = wait.seconds {
        s
    } else if let Some(p) = &wait.seconds_path {
        let value = runtime(read(p, effective, roots))?;
        // `whole_number` takes no negatives, so tell a negative integer apart here rather
        // than calling it "not an integer".
        if value.as_i64().is_some_and(|n| n < 0) {
            return Err(Failure::runtime(format!(
                "The SecondsPath parameter references a negative value: {value}"
            )));
        }
        whole_number(&value).ok_or_else(|| {
            Failure::runtime(format!(
                "The SecondsPath parameter does not reference a valid integer value: {value}"
            ))
        })? as f64
    } else if let Some(ts) = &wait.timestamp {
        seconds_until(ts, "Timestamp")?
    } else if let Some(p) = &wait.timestamp_path {
        let value = runtime(read(p, effective, roots))?;
        let text = value.as_str().ok_or_else(|| {
            Failure::runtime(format!(
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {value}"
            ))
        })?;
        seconds_until(text, "TimestampPath")?
    } else {
        return Err(Failure::runtime("a Wait state needs Seconds or Timestamp"));
    };
    // Only a literal `Seconds` can still be negative here: paths were checked above and a
    // past timestamp waits 0.
    if seconds < 0.0 {
        return Err(Failure::runtime(format!(
            "The Seconds field holds a negative value: {seconds}"
        )));
    }
    if seconds > MAX_WAIT_SECONDS {
        return Err(Failure::runtime(format!(
            "The wait of {seconds} seconds exceeds the maximum duration of an execution ({MAX_WAIT_SECONDS} seconds)"
        )));
    }
    Ok(seconds)
}

/// An integral JSON number (`5` or `5.0`), as the service takes for seconds and counts.
pub fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// A timestamp in the ASL's profile of RFC 3339, or `None`.
pub fn parse_timestamp(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    let separator_ok = text.as_bytes().get(10) == Some(&b'T');
    let zone_ok = !text.ends_with('z');
    if !(separator_ok && zone_ok) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

fn seconds_until(timestamp: &str, field: &str) -> Result<f64, Failure> {
    let target = parse_timestamp(timestamp).ok_or_else(|| {
        Failure::runtime(format!(
            "The {field} parameter does not reference a valid ISO-8601 extended offset date-time format string: {timestamp}"
        ))
    })?;
    let millis = (target.with_timezone(&Utc) - Utc::now()).num_milliseconds();
    Ok((millis.max(0) as f64) / 1000.0)
}

/// A Task's timeout: `TimeoutSeconds`, or what `TimeoutSecondsPath` reads (a positive
/// integer).
pub fn task_timeout(
    task: &TaskState,
    effective: &Value,
    roots: Roots<'_>,
) -> Result<Option<u64>, Failure> {
    let Some(path) = &task.timeout_seconds_path else {
        return Ok(task.timeout_seconds);
    };
    let value = runtime(read(path, effective, roots))?;
    match whole_number(&value) {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(Failure::runtime(format!(
            "The TimeoutSecondsPath parameter does not reference a valid positive integer value: {value}"
        ))),
    }
}

/// A Map's `MaxConcurrency`, or what `MaxConcurrencyPath` reads (a non-negative integer).
pub fn max_concurrency(
    map: &MapState,
    effective: &Value,
    roots: Roots<'_>,
) -> Result<Option<u64>, Failure> {
    let Some(path) = &map.max_concurrency_path else {
        return Ok(map.max_concurrency);
    };
    let value = runtime(read(path, effective, roots))?;
    whole_number(&value).map(Some).ok_or_else(|| {
        Failure::runtime(format!(
            "The MaxConcurrencyPath parameter does not reference a valid non-negative integer value: {value}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_need_an_uppercase_t_and_z() {
        assert!(parse_timestamp("2026-01-02T03:04:05Z").is_some());
        assert!(parse_timestamp("2026-01-02T03:04:05.123+02:00").is_some());
        assert!(parse_timestamp("2026-01-02 03:04:05Z").is_none());
        assert!(parse_timestamp("2026-01-02t03:04:05Z").is_none());
        assert!(parse_timestamp("2026-01-02T03:04:05z").is_none());
    }

    #[test]
    fn negative_seconds_paths_are_named_as_negative() {
        let wait: WaitState = serde_json::from_value(serde_json::json!({
            "Type": "Wait", "SecondsPath": "$.s", "End": true
        }))
        .unwrap();
        let context = serde_json::json!({});
        let vars = crate::variables::Variables::default();
        let roots = Roots {
            context: &context,
            vars: &vars,
        };
        let failure = seconds(&wait, &serde_json::json!({"s": -3}), roots).unwrap_err();
        assert!(
            failure.cause.contains("negative value: -3"),
            "{}",
            failure.cause
        );
        let failure = seconds(&wait, &serde_json::json!({"s": 1.5}), roots).unwrap_err();
        assert!(failure.cause.contains("valid integer"), "{}", failure.cause);
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(whole_number(&serde_json::json!(5)), Some(5));
        assert_eq!(whole_number(&serde_json::json!(5.0)), Some(5));
        assert_eq!(whole_number(&serde_json::json!(1.5)), None);
        assert_eq!(whole_number(&serde_json::json!(-1)), None);
        assert_eq!(whole_number(&serde_json::json!("5")), None);
    }
}
