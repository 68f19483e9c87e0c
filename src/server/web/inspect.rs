//! `GET /inspect`: muduo's Inspector in spirit, a plain-text page of the
//! process's insides: each I/O loop's statistics (busy time, iterations,
//! wake-ups, queued closures, channels, timers) for both listeners, and the
//! service's queues. Everything is read from atomics (`LoopStats`, the
//! `/metrics` counters), so a request never blocks its I/O thread.

use std::fmt::Write;
use std::sync::OnceLock;

use net::EventLoopHandle;

use crate::server::metrics;

/// The loops to show, set once both listeners run.
#[derive(Default)]
pub struct Inspector {
    loops: OnceLock<Vec<(String, EventLoopHandle)>>,
}

impl Inspector {
    /// Records the I/O loops, by name; the first call only counts.
    pub fn set_loops(&self, loops: Vec<(String, EventLoopHandle)>) {
        let _ = self.loops.set(loops);
    }

    /// The page; any thread.
    pub fn page(&self) -> String {
        let mut out = String::from("chat-server inspector\n\n");
        out.push_str("loop          busy_s  iterations     wakeups  queued  channels  timers\n");
        for (name, lp) in self.loops.get().map_or(&[][..], Vec::as_slice) {
            let s = lp.stats();
            let _ = writeln!(
                out,
                "{name:<12} {:>7.2} {:>11} {:>11} {:>7} {:>9} {:>7}",
                s.busy_time.as_secs_f64(),
                s.iterations,
                s.wakeups,
                s.pending_functors,
                s.channels,
                s.timers
            );
        }
        out.push('\n');
        out.push_str(&metrics::summary());
        out
    }
}
