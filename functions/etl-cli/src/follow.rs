//! `etl simulate clickstream --follow`: a live stream of sessions for dashboards, at a
//! target rate, until stopped (Ctrl-C) or for a fixed duration.

use std::time::{Duration, Instant};

use chrono::Utc;
use etl_core::clickstream::simulate::{interval, Simulation};
use etl_core::search::index::CLICKSTREAM;
use etl_core::search::{ensure_index, BulkConfig, BulkSink};
use etl_core::{Context, StageError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FollowTotals {
    pub seconds: u64,
    pub events: u64,
    pub indexed: u64,
    pub failed: u64,
}

/// The line `etl simulate` ends with.
impl std::fmt::Display for FollowTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "streamed {} events in {} s ({} indexed, {} failed)",
            self.events, self.seconds, self.indexed, self.failed
        )
    }
}

/// Indexes about `rate` events per second, stamped with the current time, until `stop`
/// resolves or `duration` passes.
pub async fn follow(
    ctx: &Context,
    rate: u32,
    duration: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<FollowTotals, StageError> {
    if !(1..=100_000).contains(&rate) {
        return Err(StageError::invalid_input(format!(
            "--rate must be 1..=100000 events/s, got {rate}"
        )));
    }
    let es = ctx.elasticsearch()?;
    let index = ctx.index_name(CLICKSTREAM.name);
    ensure_index(es, &index, &CLICKSTREAM).await?;
    let started_at = Utc::now();
    let (start, end) = interval(started_at.date_naive(), None)
        .ok_or_else(|| StageError::Internal("no interval for today".into()))?;
    // A seed from the start time: each follow run makes sessions of its own.
    let simulation = Simulation {
        start,
        end,
        seed: started_at.timestamp_micros() as u64,
        users: 5_000,
    };
    let mut totals = FollowTotals::default();
    let mut session = 0u32;
    tokio::pin!(stop);
    loop {
        let tick = Instant::now();
        let now = Utc::now();
        let mut sink = BulkSink::new(es, &index, BulkConfig::default());
        let mut this_second = 0u64;
        while this_second < u64::from(rate) {
            let mut events = simulation.session(session);
            session = session.wrapping_add(1);
            // Live: the session starts now; its steps keep their order, seconds apart.
            let first = events[0].timestamp;
            for e in &mut events {
                let offset = (e.timestamp - first).num_milliseconds() / 60;
                e.timestamp = now + chrono::Duration::milliseconds(offset);
                e.event_id = format!("live-{}", e.event_id);
            }
            for e in &events {
                sink.push(e.event_id.clone(), e).await?;
            }
            this_second += events.len() as u64;
        }
        let report = sink.finish().await?;
        totals.events += this_second;
        totals.indexed += report.indexed;
        totals.failed += report.failed;
        totals.seconds += 1;
        tracing::info!(
            events = this_second,
            indexed_total = totals.indexed,
            failed_total = totals.failed,
            "live clickstream"
        );
        if duration.is_some_and(|d| totals.seconds >= d.as_secs().max(1)) {
            return Ok(totals);
        }
        let rest = Duration::from_secs(1).saturating_sub(tick.elapsed());
        tokio::select! {
            _ = &mut stop => return Ok(totals),
            _ = tokio::time::sleep(rest) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_read_as_one_line() {
        let totals = FollowTotals {
            seconds: 3,
            events: 301,
            indexed: 300,
            failed: 1,
        };
        assert_eq!(
            totals.to_string(),
            "streamed 301 events in 3 s (300 indexed, 1 failed)"
        );
    }
}
