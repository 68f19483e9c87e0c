//! What the per-message rate check costs on its own (docs/benchmarks.md,
//! "The cost of the limits"): the chat bucket's `take` under the session's
//! lock with a clock read, as `limits::over_rate` does for every chat
//! message, timed over ten million calls on one thread.
//!
//! ```sh
//! cargo run --release --example limit_cost
//! ```

use std::hint::black_box;
use std::time::Instant;

use chat::service::session::bucket::{Rate, TokenBucket};
use parking_lot::Mutex;

const CALLS: u32 = 10_000_000;

fn main() {
    // The default chat rate; a rate the loop never exhausts, so every call
    // takes the path of an accepted message.
    let rate = Rate {
        per_second: u32::MAX,
        burst: u32::MAX,
    };
    let session = Mutex::new(TokenBucket::default());
    for round in 0..3 {
        let started = Instant::now();
        let mut refused = 0u32;
        for _ in 0..CALLS {
            if session
                .lock()
                .take(black_box(rate), Instant::now())
                .is_err()
            {
                refused += 1;
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(CALLS);
        println!("round {round}: {ns:.1} ns per check ({refused} refused)");
    }
}
