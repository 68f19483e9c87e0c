//! [`Histogram`]: latency buckets in atomics, so that observing takes no
//! lock and any thread may observe. Each histogram is a `static` with its
//! own bucket bounds; `/metrics` (src/server/metrics.rs) encodes a
//! [`snapshot`](Histogram::snapshot) at scrape time.
//!
//! Observing always counts: whoever calls [`Histogram::observe`] decides
//! whether metrics are on (and then reads no clock at all when they are
//! off).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram of `N` atomic buckets: `bounds[i]` (seconds,
/// ascending) is bucket `i`'s upper bound, and the last bucket takes
/// everything above `bounds[N - 2]` whatever its own bound says (it is
/// reported as `+Inf`).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Observations in each bucket (not cumulative).
    buckets: [AtomicU64; N],
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram with these upper bounds (the last one is `+Inf`).
    pub const fn new(bounds: &'static [f64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Adds one observation; any thread, no lock.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let last = N.saturating_sub(1);
        let i = self
            .bounds
            .iter()
            .take(last)
            .position(|b| secs <= *b)
            .unwrap_or(last);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Sum (seconds), count and each bucket's upper bound and own count
    /// (not cumulative: the encoder accumulates them), the last bound
    /// being `+Inf`; any thread.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(N);
        for (i, (b, bound)) in self.buckets.iter().zip(self.bounds).enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            let bound = if i + 1 == N { f64::INFINITY } else { *bound };
            buckets.push((bound, n));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, total, buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [f64; 4] = [0.001, 0.01, 0.1, f64::INFINITY];

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&BOUNDS);
        h.observe(Duration::from_micros(1_000)); // on a bound: that bucket
        h.observe(Duration::from_micros(1_001));
        h.observe(Duration::from_millis(100));
        h.observe(Duration::from_secs(3_600));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        let counts: Vec<u64> = buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, [1, 1, 1, 1]);
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));
        assert!((sum - 3_600.102_001).abs() < 1e-6, "{sum}");
    }
}
