//! What `etl run` and `etl backfill` show while executions run: on a terminal, a live view
//! (one spinner per running state, with how many of its entries are running and done, e.g. a
//! Map's iterations); elsewhere (CI, pipes, tests) plain lines, one when a long-running state
//! starts and one when it ends, with its duration, and no escape codes.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use asl::{Event, Observed, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The live view, once one is drawn: log lines written to stderr go around it.
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// Only these states take time worth a line: the others are instantaneous.
fn worth_a_line(state_type: &str) -> bool {
    matches!(state_type, "Task" | "Map" | "Parallel" | "Wait")
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain lines on stderr.
    Plain,
    /// indicatif spinners on stderr.
    Live,
}

impl Mode {
    /// Live when stderr is a terminal.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// The entries of one state of one machine that are running now.
#[derive(Default)]
struct StateProgress {
    /// When each running entry started, oldest first.
    running: Vec<Instant>,
    done: u64,
    /// Summed durations of the entries that ended.
    total: Duration,
    /// Finished distributed Map child executions (their own states are not shown).
    children_done: u64,
    bar: Option<ProgressBar>,
}

/// Shows the progress of the executions it observes.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    states: Arc<Mutex<HashMap<(String, String), StateProgress>>>,
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(mode: Mode) -> Self {
        let multi = (mode == Mode::Live).then(|| {
            let multi =
                LIVE.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
            multi.clone()
        });
        Progress {
            mode,
            states: Arc::default(),
            multi,
        }
    }

    /// The observer to hand an execution of `machine`.
    pub fn observer(&self, machine: &str) -> Observer {
        let progress = self.clone();
        let machine = machine.to_string();
        Observer::new(move |observed| progress.on_event(&machine, observed))
    }

    fn on_event(&self, machine: &str, observed: &Observed<'_>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if observed.child {
            // A child's machine is `<machine>/<Map state>`: count its ends on the Map.
            if matches!(
                observed.event,
                Event::ExecutionSucceeded | Event::ExecutionFailed { .. }
            ) {
                let map = observed
                    .state_machine
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                let entry = states
                    .entry((machine.to_string(), map.to_string()))
                    .or_default();
                entry.children_done += 1;
                if let Some(bar) = &entry.bar {
                    bar.set_message(running_message(entry));
                }
            }
            return;
        }
        let line = match observed.event {
            Event::StateEntered { state, state_type } if worth_a_line(state_type) => {
                let entry = states
                    .entry((machine.to_string(), state.clone()))
                    .or_default();
                entry.running.push(Instant::now());
                self.show_running(machine, state, entry);
                // Live, the spinner says it.
                (self.mode == Mode::Plain).then(|| format!("{machine}: {state} started"))
            }
            Event::StateExited { state } => {
                let Some(entry) = states.get_mut(&(machine.to_string(), state.clone())) else {
                    return;
                };
                if entry.running.is_empty() {
                    return;
                }
                let started = entry.running.remove(0);
                let took = started.elapsed();
                entry.done += 1;
                entry.total += took;
                self.show_running(machine, state, entry);
                Some(format!(
                    "{machine}: {state} done in {}",
                    seconds(took.as_secs_f64())
                ))
            }
            Event::TaskFailed {
                state,
                error,
                retry_count,
            } => Some(format!(
                "{machine}: {state} failed with {error} (attempt {})",
                retry_count + 1
            )),
            Event::RetryScheduled {
                state,
                retry_count,
                delay_seconds,
                ..
            } => Some(format!(
                "{machine}: {state} retry {} after {delay_seconds} s (model time)",
                retry_count + 1
            )),
            Event::Caught { state, error, next } => Some(format!(
                "{machine}: {state} caught {error}, going to {next}"
            )),
            Event::ExecutionFailed { error, .. } => {
                self.clear(machine, &mut states);
                Some(format!("{machine}: execution failed with {error}"))
            }
            Event::ExecutionSucceeded => {
                self.clear(machine, &mut states);
                Some(format!("{machine}: execution succeeded"))
            }
            _ => None,
        };
        drop(states);
        if let Some(line) = line {
            self.print(&line);
        }
    }

    /// The state's spinner, while entries of it run (live mode only).
    fn show_running(&self, machine: &str, state: &str, entry: &mut StateProgress) {
        let Some(multi) = &self.multi else {
            return;
        };
        if entry.running.is_empty() {
            if let Some(bar) = entry.bar.take() {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            return;
        }
        let message = running_message(entry);
        let bar = entry.bar.get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.set_prefix(format!("{machine}: {state}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(message);
    }

    /// An execution ended: its spinners go.
    fn clear(&self, machine: &str, states: &mut HashMap<(String, String), StateProgress>) {
        for ((of, _), entry) in states.iter_mut() {
            if of == machine {
                entry.running.clear();
                if let (Some(bar), Some(multi)) = (entry.bar.take(), &self.multi) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
        }
    }

    /// Plain: the line on stderr. Live: above the spinners.
    fn print(&self, line: &str) {
        match (&self.multi, self.mode) {
            (Some(multi), Mode::Live) => {
                let _ = multi.println(format!("  {line}"));
            }
            _ => eprintln!("{line}"),
        }
    }
}

fn running_message(entry: &StateProgress) -> String {
    let mut message = format!("{} running", entry.running.len());
    if entry.done > 0 {
        message.push_str(&format!(", {} done", entry.done));
    }
    if entry.children_done > 0 {
        message.push_str(&format!(", {} child executions done", entry.children_done));
    }
    message
}

/// `0.42 s`, `12.3 s`, `2 min 05 s`.
pub fn seconds(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// Stderr for log lines: around the live view when one is drawn, so that a warning does not
/// tear the spinners.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrAroundProgress;

impl Write for StderrAroundProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LIVE.get() {
            Some(multi) => multi.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrAroundProgress {
    type Writer = StderrAroundProgress;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(seconds(0.4213), "0.42 s");
        assert_eq!(seconds(12.34), "12.3 s");
        assert_eq!(seconds(125.4), "2 min 05 s");
    }

    #[test]
    fn the_running_message_counts_running_done_and_children() {
        let entry = StateProgress {
            running: vec![Instant::now(), Instant::now()],
            done: 3,
            children_done: 4,
            ..StateProgress::default()
        };
        assert_eq!(
            running_message(&entry),
            "2 running, 3 done, 4 child executions done"
        );
    }
}
