//! Latency percentiles in constant memory.
//!
//! A run can time tens of millions of messages, so samples are not kept:
//! each one increments a bucket of a log-linear histogram (the idea behind
//! HdrHistogram, hand-rolled here in a few lines). Values below 128 get a
//! bucket each, so they are exact; above that every power of two is cut into
//! 64 equal buckets, so a reported value is at most 1/64 (1.6 %) above the
//! true one. The whole `u64` range fits in 3,776 buckets (30 KiB).
//!
//! Percentiles follow the nearest-rank definition: `p`-th percentile is the
//! smallest recorded value such that at least `p` % of all samples are less
//! than or equal to it. A bucket reports its upper bound (never below the
//! truth), capped by the exact maximum.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are stored exactly, one bucket each.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const SUB_BUCKETS: u64 = 64;
/// Enough buckets for any `u64`.
const BUCKETS: usize = ((64 - 6) * SUB_BUCKETS) as usize + SUB_BUCKETS as usize;

/// A histogram of `u64` samples (the bench records microseconds).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

/// The figures a report prints for a histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample, exact.
    pub max: u64,
    /// Arithmetic mean, exact.
    pub mean: f64,
}

impl Summary {
    /// The summary as a JSON object (`count`, `p50`, `p90`, `p99`, `p999`, `max`, `mean`).
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p999": self.p999,
            "max": self.max,
            "mean": (self.mean * 10.0).round() / 10.0,
        })
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one sample.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds every sample of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The `q`-quantile (`q` in `0.0..=1.0`) by nearest rank, or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound(bucket).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// p50 / p90 / p99 / p99.9 / max / mean, or `None` when empty.
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary {
            count: self.total,
            p50: self.quantile(0.50)?,
            p90: self.quantile(0.90)?,
            p99: self.quantile(0.99)?,
            p999: self.quantile(0.999)?,
            max: self.max,
            mean: self.sum as f64 / self.total as f64,
        })
    }
}

/// A histogram that many threads record into at once, emptied by one
/// reader per interval: the per-second latencies of `--timeline`. Each
/// sample is one relaxed atomic add on its bucket, so nothing is locked;
/// [`take`](Self::take) swaps every bucket back to zero (a sample recorded
/// during the swap lands in this interval or the next, never nowhere).
/// Only the counts are kept: a taken histogram's max is its highest
/// bucket's bound and its mean that of the bounds.
pub struct SharedHistogram {
    counts: Box<[AtomicU64]>,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for SharedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedHistogram")
    }
}

impl SharedHistogram {
    /// Records one sample; any thread.
    pub fn record(&self, value: u64) {
        self.counts[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
    }

    /// The samples since the last `take`, leaving it empty.
    pub fn take(&self) -> Histogram {
        let mut h = Histogram::new();
        for (bucket, count) in self.counts.iter().enumerate() {
            let n = count.swap(0, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let bound = upper_bound(bucket);
            h.counts[bucket] = n;
            h.total += n;
            h.sum += u128::from(bound) * u128::from(n);
            h.min = h.min.min(bound);
            h.max = h.max.max(bound);
        }
        h
    }
}

/// Index of the bucket holding `value`.
fn bucket_of(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let exponent = 63 - u64::from(value.leading_zeros()); // >= 7
    let shift = exponent - 6;
    // `value >> shift` is in 64..128: the top seven bits.
    ((shift * SUB_BUCKETS) + (value >> shift)) as usize
}

/// Largest value that lands in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < EXACT {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let top = bucket % SUB_BUCKETS + SUB_BUCKETS;
    let low = top << shift;
    low.saturating_add((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_histogram_hands_each_sample_to_one_interval() {
        let shared = std::sync::Arc::new(SharedHistogram::default());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let shared = std::sync::Arc::clone(&shared);
                std::thread::spawn(move || {
                    for v in 0..1000u64 {
                        shared.record(v + t);
                    }
                })
            })
            .collect();
        let mut total = 0;
        for w in writers {
            total += shared.take().count();
            w.join().unwrap();
        }
        total += shared.take().count();
        assert_eq!(total, 4000);
        assert_eq!(shared.take().count(), 0, "empty after a take");
        for v in [10, 20, 30, 1000] {
            shared.record(v);
        }
        let h = shared.take();
        assert_eq!(h.quantile(0.5), Some(20));
        assert!(h.quantile(0.99).unwrap() >= 1000);
    }

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Histogram::new().summary(), None);
    }

    #[test]
    fn small_values_are_exact_and_use_nearest_rank() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(0.999), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(100));
        let s = h.summary().expect("samples");
        assert_eq!((s.count, s.max), (100, 100));
        assert!((s.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn one_outlier_shows_only_in_the_tail() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(10);
        }
        h.record(1_000_000);
        let s = h.summary().expect("samples");
        assert_eq!((s.p50, s.p99, s.p999), (10, 10, 10));
        assert_eq!(s.max, 1_000_000);
        h.record(1_000_000);
        assert_eq!(h.quantile(0.999), Some(1_000_000));
    }

    #[test]
    fn buckets_are_contiguous_and_bounded() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            1 << 20,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            assert!(b >= last);
            last = b;
            let hi = upper_bound(b);
            assert!(hi >= v, "{v} above its bucket's bound {hi}");
            assert!(
                (hi - v) as f64 <= v as f64 / 64.0,
                "{v}: bound {hi} too far"
            );
        }
        assert_eq!(bucket_of(127) + 1, bucket_of(128));
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_under_two_percent() {
        for v in (128..2_000_000u64).step_by(997) {
            let mut h = Histogram::new();
            h.record(1);
            h.record(v);
            h.record(u64::MAX / 2);
            let got = h.quantile(0.5).expect("samples");
            assert!(got >= v && got - v <= v / 64, "{v} reported as {got}");
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        (1..=50).for_each(|v| a.record(v));
        (51..=100).for_each(|v| b.record(v));
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert_eq!(a.quantile(0.5), Some(50));
        assert_eq!(a.summary().map(|s| s.max), Some(100));
    }
}
