//! The peak resident memory of one in-process invocation, to compare with the function's
//! `MemorySize` as Lambda would (it kills the sandbox with `Runtime.OutOfMemory`).
//!
//! Linux only: the peak is the process's `VmHWM` (`/proc/self/status`), reset before the call
//! by writing "5" to `/proc/self/clear_refs` (see proc(5)), less the resident memory at the
//! call's start: an `etl run` process keeps what earlier, bigger stages allocated (marketing's
//! unify leaves ~200 MB resident), which is not the next stage's, and counting it would fail a
//! 128 MB stage that fits on AWS. The growth is still the whole process's, so it is never
//! below the stage's own. It only means something while one invocation runs at a time;
//! when invocations overlap (Map iterations, Parallel branches) the check is skipped and a
//! note logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Invocations in flight, and how many have started while another was running: a call whose
/// count of overlapping starts changed did not run alone.
struct InFlight {
    running: usize,
    overlapping_starts: u64,
}

static IN_FLIGHT: Mutex<InFlight> = Mutex::new(InFlight {
    running: 0,
    overlapping_starts: 0,
});

/// Whether the skip note was logged already: once per process is enough.
static SKIP_NOTED: AtomicBool = AtomicBool::new(false);

fn in_flight() -> std::sync::MutexGuard<'static, InFlight> {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this system can measure a peak at all.
pub fn supported() -> bool {
    cfg!(target_os = "linux") && high_water_mark_bytes().is_some()
}

fn reset_high_water_mark() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM` of this process, in bytes.
fn high_water_mark_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One invocation's measurement, from [`Measurement::start`] to [`Measurement::finish`].
pub struct Measurement {
    alone_at_start: bool,
    overlapping_starts: u64,
    reset: bool,
    /// Resident memory when the call started.
    baseline: u64,
    finished: bool,
}

impl Measurement {
    pub fn start() -> Self {
        let mut state = in_flight();
        let alone_at_start = state.running == 0;
        if !alone_at_start {
            state.overlapping_starts += 1;
        }
        state.running += 1;
        // Reset while holding the lock, so no other call starts between the check and it.
        let reset = alone_at_start && reset_high_water_mark();
        let baseline = status_bytes("VmRSS:").unwrap_or(0);
        Self {
            baseline,
            alone_at_start,
            overlapping_starts: state.overlapping_starts,
            reset,
            finished: false,
        }
    }

    /// How far the call raised the process's RSS above its start, in bytes, or `None` when it cannot be told apart from others'
    /// (overlapping calls) or the system cannot measure it.
    pub fn finish(mut self, function: &str) -> Option<u64> {
        self.finished = true;
        let mut state = in_flight();
        state.running = state.running.saturating_sub(1);
        let alone = self.alone_at_start && state.overlapping_starts == self.overlapping_starts;
        drop(state);
        if !alone {
            if !SKIP_NOTED.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    function,
                    "MemorySize check skipped: invocations overlap (Map or Parallel), and the \
                     process-wide peak RSS cannot be split between them"
                );
            }
            return None;
        }
        if !self.reset {
            if !SKIP_NOTED.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    function,
                    "MemorySize check skipped: peak RSS is measured through /proc (Linux only)"
                );
            }
            return None;
        }
        high_water_mark_bytes().map(|peak| peak.saturating_sub(self.baseline))
    }
}

impl Drop for Measurement {
    /// A call abandoned before `finish` (a timeout dropping its future) still leaves.
    fn drop(&mut self) {
        if !self.finished {
            let mut state = in_flight();
            state.running = state.running.saturating_sub(1);
        }
    }
}
