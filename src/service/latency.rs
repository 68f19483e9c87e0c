//! `chat_delivery_latency_seconds`: how long a chat message takes from
//! being read off the sender's connection to being handed to a
//! recipient's.
//!
//! The server reads the clock once per read (it is the time the I/O loop
//! woke for it, which the message callback is given anyway; one read per
//! WebSocket frame) and hands it to [`Service::handle_at`](super::Service::handle_at)
//! as the request's `received`; with `--metrics off` it passes `None` and
//! nothing here ever runs. The instant rides along in the [`Ctx`](super::Ctx),
//! the log writer's post and each recipient's [`Delivery`](super::delivery::Delivery),
//! and [`observe`] takes the second clock read right after the
//! message's bytes were accepted by the recipient's connection
//! ([`Peer::send_counted`](super::Peer::send_counted)).
//!
//! What counts: live deliveries only, one observation per recipient
//! connection handed the message (a group message to five online members
//! is five). Not observed: the sender's own copy, messages buffered during
//! a recipient's login, gap fills, backlogs and syncs read from the log,
//! requests held behind the sender's login, and messages that crossed
//! nodes in cluster mode (an `Instant` means nothing on another host).
//!
//! The histogram lives here, below the server, so that the service can
//! observe without importing server code; the server's `/metrics`
//! collector reads [`LATENCY`].

use std::time::Instant;

use crate::runtime::Histogram;

/// The buckets' upper bounds, in seconds: 50 µs to 5 s.
static BOUNDS: [f64; 14] = [
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
    0.25,
    1.0,
    5.0,
    f64::INFINITY,
];

/// Live deliveries' latencies; see the [module docs](self).
pub static LATENCY: Histogram<{ BOUNDS.len() }> = Histogram::new(&BOUNDS);

/// One live delivery of a message read at `received` (`None`: not
/// measured); any thread.
pub fn observe(received: Option<Instant>) {
    if let Some(at) = received {
        LATENCY.observe(at.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_span_50_microseconds_to_5_seconds() {
        let (_, _, buckets) = LATENCY.snapshot();
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        assert_eq!(bounds.first(), Some(&0.00005));
        assert_eq!(bounds.iter().rev().nth(1), Some(&5.0));
        assert_eq!(bounds.last(), Some(&f64::INFINITY));
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    }

    #[test]
    fn a_measured_delivery_lands_in_its_bucket() {
        // Other tests deliver too, concurrently: counts only grow.
        let count = || LATENCY.snapshot().1;
        let before = count();
        // Beyond the last bound whatever the scheduler does meanwhile.
        let Some(minute_ago) = Instant::now().checked_sub(Duration::from_secs(60)) else {
            return; // a clock younger than a minute
        };
        observe(Some(minute_ago));
        assert!(count() > before);
        let (_, _, buckets) = LATENCY.snapshot();
        assert!(buckets.last().is_some_and(|b| b.1 >= 1), "{buckets:?}");
    }
}
