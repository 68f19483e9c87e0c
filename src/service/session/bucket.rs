//! `TokenBucket`: the per-connection rate limit on requests.
//!
//! A bucket holds up to `burst` tokens and fills at `rate` tokens per
//! second; each request takes one. A client that sends no faster than
//! `rate` never notices it; one that pauses may then send `burst` at once;
//! one that keeps sending faster is refused (errno 12) for as long as it
//! does, each refusal saying when the next token comes (`retry_after`).
//!
//! ```text
//!  tokens ▲ burst ─────────╮            ╭──────────
//!         │                 ╲  ╱╲  ╱╲  ╱  refills at `rate`/s
//!         │                  ╲╱  ╲╱  ╲╱   each request takes 1
//!       0 ┼──────────────────────────────────────► time
//! ```
//!
//! The bucket is O(1) per request (a clock read, a multiply, a compare)
//! and lives in its connection's [`Session`](super::Session): only the
//! connection's own I/O thread takes it, so the lock around it is never
//! contended and no state is shared between loops. The limits themselves
//! ([`Rate`]) are the service's, passed to every check, so changing them
//! needs no walk over the sessions.

use std::time::{Duration, Instant};

/// A rate limit: `per_second` tokens a second, at most `burst` saved up.
/// `per_second == 0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second (0: unlimited).
    pub per_second: u32,
    /// The most tokens the bucket holds (at least 1 when limited).
    pub burst: u32,
}

impl Rate {
    /// No limit at all.
    pub const UNLIMITED: Rate = Rate {
        per_second: 0,
        burst: 0,
    };
}

/// The state of one bucket. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens left at `at` (fractional: refills are continuous).
    tokens: f64,
    /// When `tokens` was last brought up to date; `None`: never used, full.
    at: Option<Instant>,
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket {
            tokens: 0.0,
            at: None,
        }
    }
}

impl TokenBucket {
    /// Takes one token at `now` under `rate`: `Ok` when there was one;
    /// otherwise `Err` with how long until there is (the request is
    /// refused and nothing is taken). Never blocks.
    ///
    /// # Errors
    /// The wait until the next token, when the bucket is empty.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        if rate.per_second == 0 {
            return Ok(());
        }
        let burst = f64::from(rate.burst.max(1));
        let per_second = f64::from(rate.per_second);
        self.tokens = match self.at {
            None => burst,
            Some(at) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                (self.tokens + elapsed * per_second).min(burst)
            }
        };
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
    }
}

/// `retry_after` as the wire carries it: seconds, rounded up to the
/// millisecond and at least 0.001, so a client that waits that long finds
/// a token.
pub fn retry_after_secs(wait: Duration) -> f64 {
    let ms = wait.as_secs_f64() * 1000.0;
    ms.ceil().max(1.0) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 10,
        burst: 3,
    };

    #[test]
    fn a_full_bucket_allows_the_burst_then_refuses() {
        let t0 = Instant::now();
        let mut b = TokenBucket::default();
        for _ in 0..3 {
            assert!(b.take(RATE, t0).is_ok());
        }
        let wait = b.take(RATE, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(retry_after_secs(wait), 0.1);
    }

    #[test]
    fn it_refills_at_the_rate_and_never_beyond_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::default();
        for _ in 0..3 {
            b.take(RATE, t0).unwrap();
        }
        // 50 ms: half a token, still refused, the wait shrinks.
        let wait = b.take(RATE, t0 + Duration::from_millis(50)).unwrap_err();
        assert!(wait <= Duration::from_millis(51) && wait >= Duration::from_millis(49));
        assert!(b.take(RATE, t0 + Duration::from_millis(100)).is_ok());
        // A long pause fills it to the burst, not more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(RATE, later).is_ok());
        }
        assert!(b.take(RATE, later).is_err());
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::default();
        for _ in 0..10_000 {
            assert!(b.take(Rate::UNLIMITED, t0).is_ok());
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_a_millisecond() {
        assert_eq!(retry_after_secs(Duration::from_micros(1)), 0.001);
        assert_eq!(retry_after_secs(Duration::from_micros(1_500)), 0.002);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2.0);
    }
}
