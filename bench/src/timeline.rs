//! `--timeline FILE`: the run second by second, as CSV.
//!
//! ```text
//! second,phase,sent,delivered,p50_us,p99_us,errors,ok
//! 1,login,0,0,812,2047,0,1000
//! 2,chat,48211,48190,350,1215,0,0
//! ```
//!
//! One row per second of every phase (and a last, shorter one when a phase
//! ends), written by the main thread when it wakes for the progress line.
//! `second` counts from the start of the first phase, so rows of
//! consecutive phases follow on; each row covers the second that ends
//! there. `sent` and `delivered` are the chat messages of that second,
//! `ok` the operations completed (connects, replies), `errors` the failed
//! operations, error replies and connections the server closed; `p50_us`
//! and `p99_us` are the delivery latency (request latency in `register`
//! and `login`) of the samples that second, empty when there were none.
//! The percentiles come from a histogram the workers share
//! ([`SharedHistogram`](crate::histogram::SharedHistogram)), recorded only
//! when a timeline is asked for, so a run without one pays nothing.
//!
//! Thread rule: the main thread only (the pool's, in `src/pool.rs`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::worker::Counters;

/// The header line.
pub const HEADER: &str = "second,phase,sent,delivered,p50_us,p99_us,errors,ok";

/// The counters as the last row left them.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    sent: u64,
    delivered: u64,
    errors: u64,
    ok: u64,
}

/// An open timeline file.
#[derive(Debug)]
pub(crate) struct Timeline {
    out: BufWriter<File>,
    /// When the first phase began.
    started: Option<Instant>,
    seen: Seen,
}

impl Timeline {
    /// Creates (or truncates) `path` and writes the header.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn create(path: &Path) -> io::Result<Timeline> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(out, "{HEADER}")?;
        out.flush()?;
        Ok(Timeline {
            out,
            started: None,
            seen: Seen::default(),
        })
    }

    /// A phase begins; its counters were just reset to zero.
    pub fn phase_started(&mut self, at: Instant, counters: &Counters) {
        self.started.get_or_insert(at);
        self.seen = Seen::default();
        // What was recorded between phases belongs to neither.
        counters.latency.take();
    }

    /// Writes the row of the second (or the shorter end of a phase) that
    /// ends `now`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn row(&mut self, now: Instant, phase: &str, counters: &Counters) -> io::Result<()> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let now_seen = Seen {
            sent: get(&counters.sent),
            delivered: get(&counters.delivered),
            errors: get(&counters.failed) + get(&counters.errors),
            ok: get(&counters.ok),
        };
        let latency = counters.latency.take();
        let pct = |q: f64| latency.quantile(q).map_or(String::new(), |v| v.to_string());
        let second = self
            .started
            .map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64())
            .ceil() as u64;
        let last = std::mem::replace(&mut self.seen, now_seen);
        writeln!(
            self.out,
            "{second},{phase},{},{},{},{},{},{}",
            now_seen.sent.saturating_sub(last.sent),
            now_seen.delivered.saturating_sub(last.delivered),
            pct(0.5),
            pct(0.99),
            now_seen.errors.saturating_sub(last.errors),
            now_seen.ok.saturating_sub(last.ok),
        )?;
        self.out.flush()
    }
}
