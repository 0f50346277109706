//! Opt-in timing trace of the model.safetensors write path, for finding where a disk-bound
//! conversion waits (docs/performance.md uses it).
//!
//! Off unless the environment variable `ELECTRA_CONVERT_WRITE_TRACE` names a file; then every
//! blocking step of the converting and writing threads (waiting for a buffer, handing one
//! over, `write`, `sync_file_range`, the closing sync) is recorded as a span and the spans are
//! appended to that file, one per line: `thread step start_us duration_us bytes`, times in
//! microseconds since the first span of the process (its
//! wall-clock time is the first line, `epoch unix_us T 0 0`). When off, a span costs one relaxed
//! atomic load.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub(crate) const ENV: &str = "ELECTRA_CONVERT_WRITE_TRACE";

/// 0: not decided yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);
/// The first span's start, as a monotonic instant and as wall-clock time (so the trace can
/// be lined up with samples taken by another program, e.g. of /sys/block/*/stat).
static EPOCH: OnceLock<(Instant, SystemTime)> = OnceLock::new();
static SPANS: Mutex<Vec<Span>> = Mutex::new(Vec::new());

struct Span {
    thread: &'static str,
    step: &'static str,
    start: Instant,
    end: Instant,
    bytes: u64,
}

fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var_os(ENV).is_some_and(|v| !v.is_empty());
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// A running span: `None` when tracing is off.
pub struct Timer(Option<Instant>);

/// Start timing a step.
pub fn start() -> Timer {
    Timer(enabled().then(|| {
        let now = Instant::now();
        EPOCH.get_or_init(|| (now, SystemTime::now()));
        now
    }))
}

impl Timer {
    /// Record the step as finished now.
    pub fn stop(self, thread: &'static str, step: &'static str, bytes: u64) {
        if let Some(start) = self.0 {
            let span = Span {
                thread,
                step,
                start,
                end: Instant::now(),
                bytes,
            };
            SPANS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(span);
        }
    }
}

/// Append the recorded spans to the trace file and forget them. Failures to write the trace
/// are ignored: it is a measuring aid, never part of the conversion's result.
pub(crate) fn flush() {
    if !enabled() {
        return;
    }
    let Some(path) = std::env::var_os(ENV) else {
        return;
    };
    let spans = std::mem::take(
        &mut *SPANS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let Some(&(epoch, wall)) = EPOCH.get() else {
        return;
    };
    let wall = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut text = format!("epoch unix_us {} 0 0\n", wall.as_micros());
    for s in spans {
        let start = s.start.duration_since(epoch).as_micros();
        let dur = s.end.duration_since(s.start).as_micros();
        text.push_str(&format!(
            "{} {} {start} {dur} {}\n",
            s.thread, s.step, s.bytes
        ));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}
