//! What `etl run`, `etl backfill` and `etl bench` show while they work: on a terminal, a
//! live view (one spinner per running state, or per benchmark phase); elsewhere (CI, pipes,
//! tests) plain lines and no escape codes.
//!
//! For an execution:
//! - a Map shows its items done / total, and the rows the Tasks inside it wrote so far (the
//!   first of them to report rows, e.g. `Hire 3,000 rows (1,000 rows/s)`);
//! - a Task whose output names the rows it wrote ([`crate::summary::rows_written`]) ends with
//!   them and its rows per second;
//! - plain, a line when a state that takes time starts and one when it ends. Inside a Map
//!   that is running items, its Tasks get no lines of their own (a Map of 10,000 items
//!   would print 80,000): the Map prints a line each time another tenth of its items is
//!   done, then its end. Failures, retries and caught errors always get their line.
//!
//! For a benchmark ([`PhaseView`]): a spinner per timed phase (run k/N, workload, elapsed),
//! then a line with its figures.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use asl::{Event, Observed, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::summary::rows_written;

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

/// A Map state's items, over its entries (a Map inside another Map's iterations is entered
/// once per outer item).
#[derive(Debug, Default, Clone, PartialEq)]
struct MapProgress {
    /// Items of the entries started so far (`MapStateStarted`).
    items: u64,
    iterations_running: u64,
    /// Iterations ended, failed ones included.
    done: u64,
    failed: u64,
    /// Rows the Tasks inside it wrote so far, per Task state, in the order they first
    /// reported some.
    rows: Vec<(String, u64)>,
    /// Plain mode: how many tenths of the items were done at its last line.
    tenths_reported: u64,
    /// A distributed Map: its items run as child executions, not iterations.
    distributed: bool,
}

impl MapProgress {
    fn add_rows(&mut self, state: &str, rows: u64) {
        match self.rows.iter_mut().find(|(s, _)| s == state) {
            Some((_, total)) => *total += rows,
            None => self.rows.push((state.to_string(), rows)),
        }
    }

    /// `3/10 items done (1 failed)`.
    fn items_done(&self) -> String {
        let mut text = format!("{}/{} items done", self.done, self.items);
        if self.failed > 0 {
            text.push_str(&format!(" ({} failed)", self.failed));
        }
        text
    }

    /// `, Hire 3,000 rows (1,000 rows/s)` over `seconds`: its first Task's rows.
    fn rows_so_far(&self, seconds: f64) -> String {
        self.rows
            .first()
            .map(|(state, rows)| format!(", {state} {}", rows_and_rate(*rows, seconds)))
            .unwrap_or_default()
    }

    /// Plain mode: whether another tenth of the items is done since the last line (the
    /// last item's line is the Map's end).
    fn another_tenth(&mut self) -> bool {
        if self.items == 0 || self.done >= self.items {
            return false;
        }
        let tenths = self.done * 10 / self.items;
        let another = tenths > self.tenths_reported;
        self.tenths_reported = self.tenths_reported.max(tenths);
        another
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
    /// Rows its ended entries wrote (a Task's).
    rows: u64,
    /// Finished distributed Map child executions (their own states are not shown).
    children_done: u64,
    /// A Map's items, once it started some.
    map: Option<MapProgress>,
    bar: Option<ProgressBar>,
}

impl StateProgress {
    /// Seconds since the oldest running entry started.
    fn running_for(&self) -> f64 {
        self.running
            .first()
            .map_or(0.0, |started| started.elapsed().as_secs_f64())
    }

    /// Whether this is a Map running items now: Tasks then run inside it.
    fn running_items(&self) -> bool {
        !self.running.is_empty() && self.map.as_ref().is_some_and(|m| m.iterations_running > 0)
    }
}

type States = HashMap<(String, String), StateProgress>;

/// Shows the progress of the executions it observes.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    states: Arc<Mutex<States>>,
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(mode: Mode) -> Self {
        Progress {
            mode,
            states: Arc::default(),
            multi: live_view(mode),
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
        let line = if observed.child {
            self.on_child_event(machine, observed, &mut states);
            None
        } else {
            self.on_own_event(machine, observed, &mut states)
        };
        drop(states);
        if let Some(line) = line {
            self.print(&line);
        }
    }

    /// A distributed Map's child execution: its ends and its Tasks' rows count on the Map.
    fn on_child_event(&self, machine: &str, observed: &Observed<'_>, states: &mut States) {
        // A child's machine is `<machine>/<Map state>`.
        let map = observed
            .state_machine
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let entry = states
            .entry((machine.to_string(), map.to_string()))
            .or_default();
        match observed.event {
            Event::ExecutionSucceeded | Event::ExecutionFailed { .. } => entry.children_done += 1,
            Event::StateExited { state } => {
                let Some(rows) = observed.result.and_then(rows_written) else {
                    return;
                };
                entry
                    .map
                    .get_or_insert_with(Default::default)
                    .add_rows(state, rows);
            }
            _ => return,
        }
        if let Some(bar) = &entry.bar {
            bar.set_message(running_message(entry));
        }
    }

    fn on_own_event(
        &self,
        machine: &str,
        observed: &Observed<'_>,
        states: &mut States,
    ) -> Option<String> {
        let key = |state: &str| (machine.to_string(), state.to_string());
        match observed.event {
            Event::StateEntered { state, state_type } if worth_a_line(state_type) => {
                let inside_map = inside_a_map(machine, states);
                let entry = states.entry(key(state)).or_default();
                entry.running.push(Instant::now());
                self.show_running(machine, state, entry);
                // Live, the spinner says it; a Map says it once it knows its items.
                (self.mode == Mode::Plain && state_type != "Map" && !inside_map)
                    .then(|| format!("{machine}: {state} started"))
            }
            Event::StateExited { state } => self.on_exit(machine, state, observed.result, states),
            Event::MapStateStarted { .. }
            | Event::MapIterationStarted { .. }
            | Event::MapIterationSucceeded { .. }
            | Event::MapIterationFailed { .. }
            | Event::MapRunStarted { .. } => self.on_map_event(machine, observed.event, states),
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
                self.clear(machine, states);
                Some(format!("{machine}: execution failed with {error}"))
            }
            Event::ExecutionSucceeded => {
                self.clear(machine, states);
                Some(format!("{machine}: execution succeeded"))
            }
            _ => None,
        }
    }

    /// An entry of `state` ended: its line, unless it ran inside a Map's items.
    fn on_exit(
        &self,
        machine: &str,
        state: &str,
        result: Option<&serde_json::Value>,
        states: &mut States,
    ) -> Option<String> {
        let rows = result.and_then(rows_written);
        if let Some(rows) = rows {
            // The Maps running items now run this Task: they count its rows.
            for ((of, map), entry) in states.iter_mut() {
                if of == machine && map != state && entry.running_items() {
                    if let Some(progress) = entry.map.as_mut() {
                        progress.add_rows(state, rows);
                    }
                    if let Some(bar) = &entry.bar {
                        bar.set_message(running_message(entry));
                    }
                }
            }
        }
        let inside_map = inside_a_map(machine, states);
        let entry = states.get_mut(&(machine.to_string(), state.to_string()))?;
        if entry.running.is_empty() {
            return None;
        }
        let took = entry.running.remove(0).elapsed();
        entry.done += 1;
        entry.total += took;
        entry.rows += rows.unwrap_or(0);
        self.show_running(machine, state, entry);
        if inside_map {
            return None;
        }
        let seconds = took.as_secs_f64();
        let mut line = format!("{machine}: {state} done in {}", self::seconds(seconds));
        if let Some(map) = &entry.map {
            if map.distributed {
                line.push_str(&format!(", {} child executions", entry.children_done));
            } else {
                line.push_str(&format!(", {}/{} items", map.done, map.items));
                if map.failed > 0 {
                    line.push_str(&format!(" ({} failed)", map.failed));
                }
            }
            line.push_str(&map.rows_so_far(seconds));
        } else if let Some(rows) = rows {
            line.push_str(&format!(", {}", rows_and_rate(rows, seconds)));
        }
        Some(line)
    }

    /// A Map's start, an iteration's start or end: the Map's count, and in plain mode its
    /// start line and a line per tenth of its items.
    fn on_map_event(&self, machine: &str, event: &Event, states: &mut States) -> Option<String> {
        let (state, change): (&str, fn(&mut MapProgress)) = match event {
            Event::MapStateStarted { state, .. } => (state.as_str(), |_| {}),
            Event::MapRunStarted { state, .. } => (state.as_str(), |m| m.distributed = true),
            Event::MapIterationStarted { state, .. } => {
                (state.as_str(), |m| m.iterations_running += 1)
            }
            Event::MapIterationSucceeded { state, .. } => (state.as_str(), |m| {
                m.iterations_running = m.iterations_running.saturating_sub(1);
                m.done += 1;
            }),
            Event::MapIterationFailed { state, .. } => (state.as_str(), |m| {
                m.iterations_running = m.iterations_running.saturating_sub(1);
                m.done += 1;
                m.failed += 1;
            }),
            _ => return None,
        };
        // A Map inside another Map's items: that Map's lines say it.
        let nested = states
            .iter()
            .any(|((of, map), entry)| of == machine && map != state && entry.running_items());
        let entry = states
            .entry((machine.to_string(), state.to_string()))
            .or_default();
        let map = entry.map.get_or_insert_with(Default::default);
        change(map);
        let line = match event {
            Event::MapStateStarted { length, .. } => {
                map.items += *length as u64;
                let items = if *length == 1 { "item" } else { "items" };
                Some(format!("{machine}: {state} started, {length} {items}"))
            }
            Event::MapIterationSucceeded { .. } | Event::MapIterationFailed { .. }
                if map.another_tenth() =>
            {
                let seconds = entry.running_for();
                let map = entry.map.as_ref()?;
                Some(format!(
                    "{machine}: {state} {}{}",
                    map.items_done(),
                    map.rows_so_far(seconds)
                ))
            }
            _ => None,
        };
        if let Some(bar) = &entry.bar {
            bar.set_message(running_message(entry));
        }
        line.filter(|_| self.mode == Mode::Plain && !nested)
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
        let bar = entry
            .bar
            .get_or_insert_with(|| spinner(multi, &format!("{machine}: {state}"), 120));
        bar.set_message(message);
    }

    /// An execution ended: its spinners go, and its Maps' counts (a backfill's next
    /// execution starts them afresh).
    fn clear(&self, machine: &str, states: &mut States) {
        for ((of, _), entry) in states.iter_mut() {
            if of == machine {
                entry.running.clear();
                entry.map = None;
                entry.children_done = 0;
                if let (Some(bar), Some(multi)) = (entry.bar.take(), &self.multi) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
        }
    }

    /// Plain: the line on stderr. Live: above the spinners.
    fn print(&self, line: &str) {
        print_line(self.multi.as_ref(), line);
    }
}

/// Whether a Map of `machine` is running items now: a Task that starts or ends then is one
/// of them (a Parallel branch beside the Map would count too: no such machine exists).
fn inside_a_map(machine: &str, states: &States) -> bool {
    states
        .iter()
        .any(|((of, _), entry)| of == machine && entry.running_items())
}

/// The shared live view, when `mode` draws one.
fn live_view(mode: Mode) -> Option<MultiProgress> {
    (mode == Mode::Live).then(|| {
        LIVE.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            .clone()
    })
}

/// A spinner in `multi` named `prefix`, redrawn every `tick_ms`.
fn spinner(multi: &MultiProgress, prefix: &str, tick_ms: u64) -> ProgressBar {
    let bar = multi.add(ProgressBar::new_spinner());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} [{elapsed}]")
    {
        bar.set_style(style);
    }
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(tick_ms));
    bar
}

/// Plain (no live view): the line on stderr. Live: above the spinners.
fn print_line(multi: Option<&MultiProgress>, line: &str) {
    match multi {
        Some(multi) => {
            let _ = multi.println(format!("  {line}"));
        }
        None => eprintln!("{line}"),
    }
}

/// What a running state's spinner says: a Map its items, any other state its entries.
fn running_message(entry: &StateProgress) -> String {
    if let Some(map) = entry.map.as_ref().filter(|m| !m.distributed) {
        let mut message = map.items_done();
        if map.iterations_running > 0 {
            message.push_str(&format!(", {} running", map.iterations_running));
        }
        message.push_str(&map.rows_so_far(entry.running_for()));
        return message;
    }
    let mut message = format!("{} running", entry.running.len());
    if entry.done > 0 {
        message.push_str(&format!(", {} done", entry.done));
    }
    if entry.rows > 0 {
        message.push_str(&format!(", {} rows", thousands(entry.rows)));
    }
    if let Some(map) = &entry.map {
        message.push_str(&format!(
            ", {} child executions done ({} items)",
            entry.children_done, map.items
        ));
        message.push_str(&map.rows_so_far(entry.running_for()));
    } else if entry.children_done > 0 {
        message.push_str(&format!(", {} child executions done", entry.children_done));
    }
    message
}

/// `100,000 rows (19,230 rows/s)` over `seconds`; the rate only over a measurable time.
pub fn rows_and_rate(rows: u64, seconds: f64) -> String {
    if seconds < 1e-3 {
        return format!("{} rows", thousands(rows));
    }
    format!(
        "{} rows ({} rows/s)",
        thousands(rows),
        thousands((rows as f64 / seconds).round() as u64)
    )
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
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

/// `etl bench`'s view of its timed phases: a spinner per phase while it runs (live), a line
/// when it starts (plain), and a line with its figures when it ends. Told only between
/// phases, never inside the timed span; live, its spinner redraws once a second on
/// indicatif's ticker thread, a few microseconds of CPU per second.
pub struct PhaseView {
    /// `bench run 1/3`.
    label: String,
    multi: Option<MultiProgress>,
    current: Mutex<Option<ProgressBar>>,
}

impl PhaseView {
    /// `run`: which run this process is, of how many (`--runs N`).
    pub fn new(mode: Mode, (run, runs): (usize, usize)) -> Self {
        PhaseView {
            label: format!("bench run {run}/{runs}"),
            multi: live_view(mode),
            current: Mutex::new(None),
        }
    }

    /// `phase` of `workload` starts now.
    pub fn started(&self, workload: &str, phase: &str) {
        let name = format!("{} {workload}: {phase}", self.label);
        match &self.multi {
            Some(multi) => {
                self.finish_spinner();
                let bar = spinner(multi, &name, 1000);
                bar.set_message("running");
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar);
            }
            None => eprintln!("{name} started"),
        }
    }

    /// The phase ended with these figures.
    pub fn ended(&self, workload: &str, phase: &str, rows: u64, seconds: f64) {
        self.finish_spinner();
        print_line(
            self.multi.as_ref(),
            &phase_line(&self.label, workload, phase, rows, seconds),
        );
    }

    /// The phase failed (its error follows on stderr).
    pub fn failed(&self, workload: &str, phase: &str) {
        self.finish_spinner();
        print_line(
            self.multi.as_ref(),
            &format!("{} {workload}: {phase} failed", self.label),
        );
    }

    fn finish_spinner(&self) {
        let bar = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(bar), Some(multi)) = (bar, &self.multi) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
    }
}

/// `bench run 1/3 hr-hire: hire (…) done: 2,000 rows in 0.21 s (9,524 rows/s)`.
fn phase_line(label: &str, workload: &str, phase: &str, rows: u64, took: f64) -> String {
    let rate = if took > 0.0 {
        format!(
            " ({} rows/s)",
            thousands((rows as f64 / took).round() as u64)
        )
    } else {
        String::new()
    };
    format!(
        "{label} {workload}: {phase} done: {} rows in {}{rate}",
        thousands(rows),
        seconds(took)
    )
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
    fn counts_have_thousands_separators_and_rates_need_a_measurable_time() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rows_and_rate(100_000, 5.2), "100,000 rows (19,231 rows/s)");
        assert_eq!(rows_and_rate(12, 0.0), "12 rows");
    }

    #[test]
    fn the_running_message_counts_running_done_rows_and_children() {
        let entry = StateProgress {
            running: vec![Instant::now(), Instant::now()],
            done: 3,
            rows: 4500,
            children_done: 4,
            ..StateProgress::default()
        };
        assert_eq!(
            running_message(&entry),
            "2 running, 3 done, 4,500 rows, 4 child executions done"
        );
    }

    #[test]
    fn a_maps_message_has_its_items_done_of_total_and_its_first_tasks_rows() {
        let mut map = MapProgress {
            items: 10,
            iterations_running: 2,
            done: 3,
            ..MapProgress::default()
        };
        map.add_rows("Hire", 1000);
        map.add_rows("Export", 5000);
        map.add_rows("Hire", 2000);
        let entry = StateProgress {
            map: Some(map.clone()),
            ..StateProgress::default()
        };
        // Not running: no time to divide by.
        assert_eq!(
            running_message(&entry),
            "3/10 items done, 2 running, Hire 3,000 rows"
        );
        assert_eq!(map.rows_so_far(2.0), ", Hire 3,000 rows (1,500 rows/s)");
        map.failed = 1;
        assert_eq!(map.items_done(), "3/10 items done (1 failed)");
    }

    #[test]
    fn plain_lines_come_at_most_once_per_tenth_of_the_items() {
        let mut map = MapProgress {
            items: 25,
            ..MapProgress::default()
        };
        let mut lines = Vec::new();
        for done in 1..=25 {
            map.done = done;
            if map.another_tenth() {
                lines.push(done);
            }
        }
        // Tenths at 3 (1.2), 5 (2.0), 8, 10, 13, 15, 18, 20, 23; 25 is the Map's end line.
        assert_eq!(lines, [3, 5, 8, 10, 13, 15, 18, 20, 23]);
        let mut one = MapProgress {
            items: 1,
            done: 1,
            ..MapProgress::default()
        };
        assert!(!one.another_tenth(), "the end line says it");
    }

    #[test]
    fn a_phase_ends_with_its_rows_time_and_rate() {
        assert_eq!(
            phase_line("bench run 2/3", "hr-hire", "hire (…)", 2000, 0.25),
            "bench run 2/3 hr-hire: hire (…) done: 2,000 rows in 0.25 s (8,000 rows/s)"
        );
    }

    /// The observer end to end, plain: the Map's lines and a Task's rows, from events.
    #[test]
    fn an_observed_map_prints_its_items_and_rows_and_not_its_tasks() {
        let progress = Progress::new(Mode::Plain);
        let mut lines = Vec::new();
        let mut tell = |event: Event, result: Option<serde_json::Value>| {
            let mut states = progress.states.lock().unwrap();
            let observed = Observed {
                state_machine: "hr",
                execution: "e",
                child: false,
                event: &event,
                result: result.as_ref(),
            };
            lines.extend(progress.on_own_event("hr", &observed, &mut states));
        };
        let entered = |state: &str, state_type: &str| Event::StateEntered {
            state: state.into(),
            state_type: state_type.into(),
        };
        let exited = |state: &str| Event::StateExited {
            state: state.into(),
        };
        let map = || "EachDate".to_string();
        tell(entered("EachDate", "Map"), None);
        tell(
            Event::MapStateStarted {
                state: map(),
                length: 2,
            },
            None,
        );
        for index in 0..2 {
            tell(
                Event::MapIterationStarted {
                    state: map(),
                    index,
                },
                None,
            );
            tell(entered("Hire", "Task"), None);
            let hired = serde_json::json!({"Payload": {"generated": 60, "loaded": 50}});
            tell(exited("Hire"), Some(hired));
            tell(
                Event::MapIterationSucceeded {
                    state: map(),
                    index,
                },
                None,
            );
        }
        tell(exited("EachDate"), None);
        tell(entered("Report", "Task"), None);
        tell(exited("Report"), Some(serde_json::json!({"rows": 1200})));
        assert_eq!(lines[0], "hr: EachDate started, 2 items");
        // With a rate when the time since the Map's start was measurable.
        assert!(
            lines[1].starts_with("hr: EachDate 1/2 items done, Hire 50 rows"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("hr: EachDate done in ")
                && lines[2].contains(", 2/2 items, Hire 100 rows"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "hr: Report started");
        assert!(
            lines[4].starts_with("hr: Report done in ") && lines[4].contains(", 1,200 rows"),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 5, "no line of Hire's own: {lines:?}");
    }
}
