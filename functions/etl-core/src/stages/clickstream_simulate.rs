//! Stage `clickstream-simulate`: simulates shopping sessions for a day (or one hour of it) and
//! bulk-indexes their events straight into `ecommerce_clickstream`, skipping the database,
//! as the seed's real-time simulator did. Event ids are deterministic, so a re-run of an
//! interval keeps the document count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clickstream::simulate::{interval, Simulation};
use crate::clients::Context;
use crate::error::StageError;
use crate::ledger::{self, Counted, RowCounts};
use crate::logical_date::LogicalDate;
use crate::search::index::CLICKSTREAM;
use crate::search::{ensure_index, refresh, BulkConfig, BulkSink, ItemFailure};

/// The most one invocation may simulate inside the function's 900 s timeout (template.yaml),
/// at the search cluster's indexing rate: 300k sessions are about 1.18M events (3.92 per
/// session), #18's 1M events an hour with room to spare, and take 370-590 s at the
/// 2,000-3,200 events/s measured against osmem, the slowest cluster measured; the client
/// spends about 2 µs of CPU per event (docs/pipelines.md § Maximums).
pub const MAX_SESSIONS: u32 = 300_000;

fn default_sessions() -> u32 {
    1_000
}

#[derive(Debug, Clone, Deserialize)]
pub struct SimulateEvent {
    pub logical_date: LogicalDate,
    #[serde(default)]
    pub params: SimulateParams,
    #[serde(default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateParams {
    /// 0–23 for one hour of the day; absent for the whole day.
    #[serde(default)]
    pub hour: Option<u32>,
    #[serde(default = "default_sessions")]
    pub sessions: u32,
    #[serde(default)]
    pub seed: u64,
}

impl Default for SimulateParams {
    fn default() -> Self {
        Self {
            hour: None,
            sessions: default_sessions(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SimulateOutput {
    pub logical_date: LogicalDate,
    pub hour: Option<u32>,
    pub index: String,
    pub sessions: u32,
    pub events: u64,
    pub by_type: BTreeMap<&'static str, u64>,
    pub indexed: u64,
    pub failed: u64,
    pub failures: Vec<ItemFailure>,
}

impl Counted for SimulateOutput {
    fn counts(&self) -> RowCounts {
        RowCounts {
            rows_in: Some(self.events as i64),
            rows_out: Some(self.indexed as i64),
            rows_rejected: Some(self.failed as i64),
        }
    }
}

pub async fn run(ctx: &Context, event: SimulateEvent) -> Result<SimulateOutput, StageError> {
    let (params, date, execution) = (event.params, event.logical_date, event.execution);
    if !(1..=MAX_SESSIONS).contains(&params.sessions) {
        return Err(StageError::invalid_input(format!(
            "sessions must be between 1 and {MAX_SESSIONS}, got {}",
            params.sessions
        )));
    }
    let (start, end) = interval(date.date(), params.hour).ok_or_else(|| {
        StageError::invalid_input(format!("hour must be 0-23, got {:?}", params.hour))
    })?;
    let simulation = Simulation {
        start,
        end,
        seed: params.seed,
        users: (params.sessions / 3).max(1),
    };
    ledger::tracked(
        ctx,
        "clickstream",
        "simulate",
        date,
        execution.as_deref(),
        async {
            let es = ctx.elasticsearch()?;
            let index = ctx.index_name(CLICKSTREAM.name);
            ensure_index(es, &index, &CLICKSTREAM).await?;
            let mut sink = BulkSink::new(es, &index, BulkConfig::default());
            let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut events = 0u64;
            for session in 0..params.sessions {
                for e in simulation.session(session) {
                    *by_type.entry(e.event_type).or_default() += 1;
                    events += 1;
                    sink.push(e.event_id.clone(), &e).await?;
                }
            }
            let report = sink.finish().await?;
            refresh(es, &index).await?;
            tracing::info!(
                sessions = params.sessions,
                events,
                indexed = report.indexed,
                failed = report.failed,
                "clickstream simulated"
            );
            Ok(SimulateOutput {
                logical_date: date,
                hour: params.hour,
                index,
                sessions: params.sessions,
                events,
                by_type,
                indexed: report.indexed,
                failed: report.failed,
                failures: report.failures,
            })
        },
    )
    .await
}
