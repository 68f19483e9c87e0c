//! [`Histogram`]: latency buckets in atomics, so that observing takes no
//! lock; encoded at scrape time by the collector (`../metrics.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::off;

/// The upper bounds of [`Histogram`]'s buckets, in seconds: 100 µs to 10 s.
const BOUNDS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 10.0,
];

/// A latency histogram of atomic buckets (no lock), for a static.
#[derive(Debug)]
pub struct Histogram {
    /// Observations at most `BOUNDS[i]` (not cumulative); the last, above all.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Adds one observation; any thread. Nothing with `--metrics off`.
    pub fn observe(&self, d: std::time::Duration) {
        if off() {
            return;
        }
        let secs = d.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Sum (seconds), count and each bucket's own count (the encoder
    /// makes them cumulative), as the encoder wants.
    pub(super) fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BOUNDS.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            buckets.push((BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, total, buckets)
    }
}
