//! Redriving a failed execution, as `RedriveExecution` does: the same definition and input,
//! resumed from where it failed. "Step Functions preserves the results and execution history
//! of the successful steps, and doesn't rerun these steps"; an inline Map or Parallel redrives
//! "only the iterations and branches that failed or aborted", and a distributed Map only its
//! unsuccessful child executions
//! (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html>).
//!
//! The engine keeps a [`Journal`] of every state entry that completed: its transition (next
//! state, output, variables assigned), keyed by where it happened — the state's name, how many
//! times it had been entered before, and the Map iteration, Parallel branch or child execution
//! it ran in. A state whose error a Catch handled completed too (its transition is the catch's).
//! Redriving replays the journal: a completed entry is not run again, its recorded transition
//! is taken as is; the first entry with no record is where the execution failed, and runs.
//! Since every replayed step is the recorded one, the run reaches the failed states along the
//! same path, with the same inputs and variables.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::HISTORY_LIMIT_EVENTS;

/// How one completed state entry left the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `None` when the state ended its branch, iteration or execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub output: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub assigned: Map<String, Value>,
}

/// The completed state entries of an execution, by where they happened (e.g.
/// `EachDate[3]/ExportAndSync(1)/Sync`: the Sync state of branch 1 of the Parallel state
/// ExportAndSync in iteration 3 of the Map state EachDate; `Poll#2` is the third entry into
/// Poll). Serialised as a JSON object, which is how `etl run` keeps it beside the run ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Journal(BTreeMap<String, Step>);

impl Journal {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Step> {
        self.0.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// An earlier attempt of the execution to resume (see [`crate::RunOptions::redrive`]).
#[derive(Debug, Clone, Default)]
pub struct Redrive {
    /// What the earlier attempts completed.
    pub journal: Journal,
    /// How many times the execution was redriven before: `$$.Execution.RedriveCount` is one
    /// more in this attempt.
    pub count: u32,
    /// The history events the earlier attempts wrote. A redriven execution keeps its history,
    /// so they count towards the 25,000-event quota.
    pub prior_events: u64,
}

/// Why an execution cannot be redriven: the service's `ExecutionNotRedrivable` conditions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRedrivable {
    #[error(
        "execution {0} succeeded: only failed, timed-out or aborted executions can be redriven"
    )]
    Succeeded(String),
    #[error("execution {0} is still running")]
    Running(String),
    #[error(
        "execution {name} ended {ended}, more than 14 days ago: redrive is limited to 14 days"
    )]
    TooOld { name: String, ended: DateTime<Utc> },
    #[error("execution {name} was redriven {count} times: the service's limit is 1,000")]
    TooManyRedrives { name: String, count: u32 },
    #[error("execution {name} wrote {events} history events: a redrive needs fewer than 24,999")]
    HistoryFull { name: String, events: u64 },
}

/// The status an execution ended with, as far as redrive cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Succeeded,
    /// FAILED, TIMED_OUT or ABORTED.
    Unsuccessful,
    Running,
}

/// Checks the conditions under which `RedriveExecution` accepts an execution: it did not
/// succeed, ended within the last 14 days, was redriven fewer than 1,000 times, and its history
/// has fewer than 24,999 events.
pub fn check_redrivable(
    name: &str,
    ended: Ended,
    stop_date: DateTime<Utc>,
    now: DateTime<Utc>,
    redrive_count: u32,
    history_events: u64,
) -> Result<(), NotRedrivable> {
    match ended {
        Ended::Succeeded => return Err(NotRedrivable::Succeeded(name.to_string())),
        Ended::Running => return Err(NotRedrivable::Running(name.to_string())),
        Ended::Unsuccessful => {}
    }
    if now - stop_date > Duration::days(14) {
        return Err(NotRedrivable::TooOld {
            name: name.to_string(),
            ended: stop_date,
        });
    }
    if redrive_count >= 1000 {
        return Err(NotRedrivable::TooManyRedrives {
            name: name.to_string(),
            count: redrive_count,
        });
    }
    if history_events >= HISTORY_LIMIT_EVENTS - 1 {
        return Err(NotRedrivable::HistoryFull {
            name: name.to_string(),
            events: history_events,
        });
    }
    Ok(())
}

/// The journal an execution replays from and the one it writes, shared by the runners of its
/// Map Runs' child executions.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    replay: Journal,
    recorded: Mutex<Journal>,
}

impl Recorder {
    pub(crate) fn replaying(replay: Journal) -> Self {
        Self {
            replay,
            recorded: Mutex::default(),
        }
    }

    /// The step recorded at `key` by an earlier attempt, if that entry completed.
    pub(crate) fn replayed(&self, key: &str) -> Option<Step> {
        self.replay.get(key).cloned()
    }

    pub(crate) fn record(&self, key: String, step: Step) {
        self.lock().0.insert(key, step);
    }

    /// Everything completed so far, in this attempt or replayed from an earlier one.
    pub(crate) fn journal(&self) -> Journal {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the entries of the states run by a Map iteration, a Parallel branch or a child
/// execution are keyed, under the key of the state that runs them.
pub(crate) fn iteration_scope(state_key: &str, index: usize) -> String {
    format!("{state_key}[{index}]/")
}

pub(crate) fn branch_scope(state_key: &str, branch: usize) -> String {
    format!("{state_key}({branch})/")
}

/// The key of the `nth` entry (0-based) into `state` within `scope`.
pub(crate) fn entry_key(scope: &str, state: &str, nth: u32) -> String {
    if nth == 0 {
        format!("{scope}{state}")
    } else {
        format!("{scope}{state}#{nth}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn only_recent_unsuccessful_executions_with_room_left_are_redrivable() {
        let now = at("2026-12-06T12:00:00Z");
        let ended = at("2026-12-01T00:00:00Z");
        let check =
            |status, stop, count, events| check_redrivable("x", status, stop, now, count, events);
        assert_eq!(check(Ended::Unsuccessful, ended, 0, 100), Ok(()));
        assert!(matches!(
            check(Ended::Succeeded, ended, 0, 100),
            Err(NotRedrivable::Succeeded(_))
        ));
        assert!(matches!(
            check(Ended::Running, ended, 0, 100),
            Err(NotRedrivable::Running(_))
        ));
        assert!(matches!(
            check(Ended::Unsuccessful, at("2026-11-21T11:59:00Z"), 0, 100),
            Err(NotRedrivable::TooOld { .. })
        ));
        assert_eq!(
            check(Ended::Unsuccessful, at("2026-11-22T12:00:00Z"), 0, 100),
            Ok(())
        );
        assert!(matches!(
            check(Ended::Unsuccessful, ended, 1000, 100),
            Err(NotRedrivable::TooManyRedrives { .. })
        ));
        assert_eq!(check(Ended::Unsuccessful, ended, 999, 24_998), Ok(()));
        assert!(matches!(
            check(Ended::Unsuccessful, ended, 0, 24_999),
            Err(NotRedrivable::HistoryFull { .. })
        ));
    }

    #[test]
    fn keys_name_the_path_to_a_state() {
        let map = entry_key("", "EachDate", 0);
        let branch = branch_scope(&entry_key(&iteration_scope(&map, 3), "ExportAndSync", 0), 1);
        assert_eq!(
            entry_key(&branch, "Sync", 0),
            "EachDate[3]/ExportAndSync(1)/Sync"
        );
        assert_eq!(entry_key("", "Poll", 2), "Poll#2");
    }

    #[test]
    fn a_journal_is_a_json_object_of_steps() {
        let recorder = Recorder::default();
        recorder.record(
            "A".into(),
            Step {
                next: Some("B".into()),
                output: serde_json::json!({"x": 1}),
                assigned: Map::new(),
            },
        );
        let text = serde_json::to_string(&recorder.journal()).unwrap();
        assert_eq!(text, r#"{"A":{"next":"B","output":{"x":1}}}"#);
        let back: Journal = serde_json::from_str(&text).unwrap();
        assert_eq!(
            Recorder::replaying(back).replayed("A"),
            recorder.journal().get("A").cloned()
        );
    }
}
