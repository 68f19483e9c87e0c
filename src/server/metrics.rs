//! The counters behind `GET /metrics`, and their Prometheus (OpenMetrics)
//! text, encoded by `prometheus-client`.
//!
//! Nothing on the message path takes a lock: the counters are atomics in
//! one static ([`METRICS`]), bumped with relaxed adds: a request by its
//! msgId in the message callbacks ([`count_request`]), an error reply by
//! its errno when it is sent ([`count_frame`]: a prefix check, since a
//! failure's first key is `errmsg`), connections by transport. What costs
//! more is sampled once a second by the readiness thread
//! (src/server/web/readiness.rs), off the I/O threads: the users logged
//! in and the process's RSS, CPU time and open descriptors, read from
//! `/proc`. Store calls are timed by `TimedStore` (timed_store.rs) into
//! one histogram per operation, and live deliveries of chat messages by
//! the service (src/service/latency.rs: the read's instant travels with
//! the message), both into `runtime::Histogram`s (atomic buckets). A
//! scrape, on a web I/O thread, only reads atomics.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};

use crate::cluster::ClusterStats;

mod process;

use process::process_sample;

/// The label set of exemplars, which these histograms do not have.
type NoLabels = Vec<(String, String)>;

/// msgIds and errnos above this share the last slot.
const SLOTS: usize = 64;

/// The transports a client connects over.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// The chat port (`--listen`).
    Tcp,
    /// `/ws` on the web listener (`--http`).
    WebSocket,
}

/// Every counter; one static. See the [module docs](self).
#[derive(Debug)]
pub struct Metrics {
    connections: [AtomicI64; 2],
    requests: [AtomicU64; SLOTS],
    errors: [AtomicU64; SLOTS],
    /// Sampled: users logged in, RSS bytes, CPU microseconds, open fds.
    logged_in: AtomicU64,
    rss_bytes: AtomicU64,
    cpu_micros: AtomicU64,
    open_fds: AtomicU64,
    worker_jobs: AtomicU64,
    /// Sampled cluster counters (published, stored by sender, delivered,
    /// stored by receiver, reconnects, overflows, route cache hits and
    /// misses, forwards, batch publishes), when in cluster mode.
    cluster: [AtomicU64; 10],
    cluster_on: AtomicBool,
    /// `--metrics off`: nothing is counted (to measure what counting costs).
    off: AtomicBool,
}

/// The process's counters.
pub static METRICS: Metrics = Metrics {
    connections: [const { AtomicI64::new(0) }; 2],
    requests: [const { AtomicU64::new(0) }; SLOTS],
    errors: [const { AtomicU64::new(0) }; SLOTS],
    logged_in: AtomicU64::new(0),
    rss_bytes: AtomicU64::new(0),
    cpu_micros: AtomicU64::new(0),
    open_fds: AtomicU64::new(0),
    worker_jobs: AtomicU64::new(0),
    cluster: [const { AtomicU64::new(0) }; 10],
    cluster_on: AtomicBool::new(false),
    off: AtomicBool::new(false),
};

/// Turns counting off (`--metrics off`), before the listeners start.
pub fn disable() {
    METRICS.off.store(true, Ordering::Relaxed);
}

/// Whether counting is off (`--metrics off`); any thread.
pub fn off() -> bool {
    METRICS.off.load(Ordering::Relaxed)
}

fn slot(n: i64) -> usize {
    usize::try_from(n).map_or(SLOTS - 1, |n| n.min(SLOTS - 1))
}

/// A connection of `transport` opened (`+1`) or closed (`-1`); any thread.
pub fn count_connection(transport: Transport, delta: i64) {
    if off() {
        return;
    }
    METRICS.connections[transport as usize].fetch_add(delta, Ordering::Relaxed);
}

/// One decoded request; any thread.
pub fn count_request(obj: &Map<String, Value>) {
    if off() {
        return;
    }
    count_msg_id(obj.get("msgId").and_then(Value::as_i64).unwrap_or(-1));
}

/// [`count_request`] for a request whose msgId is known already (the
/// fast path of chats); any thread.
pub fn count_msg_id(id: i64) {
    if off() {
        return;
    }
    METRICS.requests[slot(id)].fetch_add(1, Ordering::Relaxed);
}

/// One frame sent to a client: counted when it is a failure (its first
/// key is `errmsg`, keys being sorted), by its errno; any thread.
pub fn count_frame(frame: &[u8]) {
    const PREFIX: &[u8] = b"{\"errmsg\":";
    const KEY: &[u8] = b"\"errno\":";
    if off() || !frame.starts_with(PREFIX) {
        return;
    }
    // In a JSON string a quote is escaped, so the key is the first match.
    let Some(at) = frame.windows(KEY.len()).position(|w| w == KEY) else {
        return;
    };
    let digits = frame
        .get(at + KEY.len()..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, &b| {
            n.saturating_mul(10).saturating_add(i64::from(b - b'0'))
        });
    METRICS.errors[slot(digits)].fetch_add(1, Ordering::Relaxed);
}

/// Records the sampled values; the sampler thread.
pub fn record_sample(logged_in: usize, worker_jobs: usize, cluster: Option<ClusterStats>) {
    if let Some(c) = cluster {
        let values = [
            c.published,
            c.stored_by_sender,
            c.delivered,
            c.stored_by_receiver,
            c.reconnects,
            c.publish_overflows,
            c.route_hits,
            c.route_misses,
            c.forwarded,
            c.batch_publishes,
        ];
        for (slot, v) in METRICS.cluster.iter().zip(values) {
            slot.store(v, Ordering::Relaxed);
        }
        METRICS.cluster_on.store(true, Ordering::Relaxed);
    }
    METRICS.logged_in.store(logged_in as u64, Ordering::Relaxed);
    METRICS
        .worker_jobs
        .store(worker_jobs as u64, Ordering::Relaxed);
    if let Some((rss, cpu, fds)) = process_sample() {
        METRICS.rss_bytes.store(rss, Ordering::Relaxed);
        METRICS.cpu_micros.store(cpu, Ordering::Relaxed);
        METRICS.open_fds.store(fds, Ordering::Relaxed);
    }
}

/// A few lines for `/inspect`: connections, users, worker jobs.
pub fn summary() -> String {
    let m = &METRICS;
    format!(
        "connections: {} tcp, {} ws\nlogged in: {}\nworker jobs: {}\nopen fds: {}\n",
        m.connections[0].load(Ordering::Relaxed),
        m.connections[1].load(Ordering::Relaxed),
        m.logged_in.load(Ordering::Relaxed),
        m.worker_jobs.load(Ordering::Relaxed),
        m.open_fds.load(Ordering::Relaxed),
    )
}

/// The names of the requests' msgIds, for the `kind` label.
fn kind(id: usize) -> Option<&'static str> {
    Some(match id {
        1 => "login",
        3 => "logout",
        5 => "register",
        7 => "refresh",
        9 => "chat",
        10 => "add_friend",
        11 => "create_group",
        12 => "join_group",
        13 => "group_chat",
        14 => "del_friend",
        19 => "quit_group",
        21 => "dismiss_group",
        23 => "group_members",
        25 => "ping",
        29 => "sync",
        31 => "convs",
        33 => "read",
        _ => return None,
    })
}

/// The collector that turns [`METRICS`] into families at each scrape.
#[derive(Debug)]
struct ChatCollector;

impl Collector for ChatCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &METRICS;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut family = encoder.encode_descriptor(
            "chat_connections",
            "Open client connections, by transport",
            None,
            MetricType::Gauge,
        )?;
        for (i, transport) in ["tcp", "ws"].into_iter().enumerate() {
            let v = m.connections[i].load(Ordering::Relaxed);
            ConstGauge::new(v).encode(family.encode_family(&[("transport", transport)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "chat_messages",
            "Requests decoded, by kind (other: an unknown msgId)",
            None,
            MetricType::Counter,
        )?;
        let mut other = 0;
        for (id, n) in m.requests.iter().enumerate() {
            match kind(id) {
                Some(k) => {
                    ConstCounter::new(load(n)).encode(family.encode_family(&[("kind", k)])?)?
                }
                None => other += load(n),
            }
        }
        ConstCounter::new(other).encode(family.encode_family(&[("kind", "other")])?)?;
        let mut family = encoder.encode_descriptor(
            "chat_errors",
            "Error replies sent, by errno",
            None,
            MetricType::Counter,
        )?;
        for (errno, n) in m.errors.iter().enumerate().skip(1) {
            let n = load(n);
            if n > 0 {
                let label = errno.to_string();
                ConstCounter::new(n).encode(family.encode_family(&[("errno", label.as_str())])?)?;
            }
        }
        let gauges: [(&str, &str, u64); 4] = [
            (
                "chat_logged_in_users",
                "Users logged in on this node (sampled each second)",
                load(&m.logged_in),
            ),
            (
                "chat_worker_queue_depth",
                "Worker jobs queued or running (sampled each second)",
                load(&m.worker_jobs),
            ),
            (
                "process_resident_memory_bytes",
                "Resident set size (sampled each second)",
                load(&m.rss_bytes),
            ),
            (
                "process_open_fds",
                "Open file descriptors (sampled each second)",
                load(&m.open_fds),
            ),
        ];
        for (name, help, v) in gauges {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v as i64).encode(e)?;
        }
        let cpu = load(&m.cpu_micros) as f64 / 1e6;
        let e = encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time (sampled each second)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(cpu).encode(e)?;
        let mut family = encoder.encode_descriptor(
            "chat_store_latency_seconds",
            "Store calls' durations, by operation",
            None,
            MetricType::Histogram,
        )?;
        for (operation, h) in super::timed_store::latencies() {
            let (sum, count, buckets) = h.snapshot();
            if count == 0 {
                continue;
            }
            let labels = [("operation", operation)];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabels>(sum, count, &buckets, None)?;
        }
        let (sum, count, buckets) = crate::service::latency::LATENCY.snapshot();
        encoder
            .encode_descriptor(
                "chat_delivery_latency_seconds",
                "From reading a chat message to handing it to a recipient's connection, per live delivery",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabels>(sum, count, &buckets, None)?;
        let gaps = &crate::service::early::GAPS;
        let gap_counters = [
            (
                "chat_gap_held_messages",
                "Messages that reached a connection past a gap at its cursor, held until it closed",
                load(&gaps.held),
            ),
            (
                "chat_gap_closed",
                "Held gaps that closed by themselves within the grace (no query)",
                load(&gaps.closed),
            ),
            (
                "chat_gap_fills",
                "Gaps at a connection's cursor filled from the message log",
                load(&gaps.filled),
            ),
        ];
        encode_counters(&mut encoder, gap_counters)?;
        if m.cluster_on.load(Ordering::Relaxed) {
            let names = [
                (
                    "chat_cluster_published",
                    "Messages published to the recipient's node",
                ),
                (
                    "chat_cluster_stored_by_sender",
                    "Messages stored instead of published (the fallback)",
                ),
                (
                    "chat_cluster_delivered",
                    "Messages received from the channel and delivered here",
                ),
                (
                    "chat_cluster_stored_by_receiver",
                    "Messages received whose recipient had left: stored",
                ),
                (
                    "chat_cluster_reconnects",
                    "Reconnections of the publisher to Redis",
                ),
                (
                    "chat_cluster_publish_overflows",
                    "Messages not queued for Redis: the publisher's queue was full",
                ),
                (
                    "chat_cluster_route_hits",
                    "Recipients routed from the route cache, in their node's batch",
                ),
                (
                    "chat_cluster_route_misses",
                    "Recipients routed through the route script (not cached)",
                ),
                (
                    "chat_cluster_forwarded",
                    "Messages received for a user not here and re-routed (a stale route)",
                ),
                (
                    "chat_cluster_batch_publishes",
                    "Batches published to a node: one per destination node and tick",
                ),
            ];
            let counts = names.into_iter().zip(&m.cluster);
            encode_counters(
                &mut encoder,
                counts.map(|((name, help), v)| (name, help, load(v))),
            )?;
        }
        Ok(())
    }
}

/// Encodes each `(name, help, value)` as a counter without labels.
fn encode_counters<'a>(
    encoder: &mut DescriptorEncoder,
    counters: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    for (name, help, v) in counters {
        let e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(v).encode(e)?;
    }
    Ok(())
}

/// The registry `/metrics` encodes.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ChatCollector));
    registry
}

/// The text of one scrape (OpenMetrics text format).
pub fn scrape(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_errno() {
        let before = METRICS.errors[7].load(Ordering::Relaxed);
        count_frame(b"{\"errmsg\":\"no \\\"errno\\\":9 here\",\"errno\":7,\"msgId\":27}\n");
        count_frame(b"{\"errno\":0,\"msgId\":2}\n");
        assert_eq!(METRICS.errors[7].load(Ordering::Relaxed), before + 1);
        assert_eq!(METRICS.errors[9].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_scrape_is_openmetrics_text() {
        count_connection(Transport::WebSocket, 1);
        let text = scrape(&registry());
        assert!(text.contains("# TYPE chat_connections gauge\n"), "{text}");
        assert!(
            text.contains("chat_connections{transport=\"ws\"} "),
            "{text}"
        );
        assert!(text.contains("# TYPE chat_messages counter\n"), "{text}");
        assert!(
            text.contains("chat_messages_total{kind=\"chat\"} "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE chat_delivery_latency_seconds histogram\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE chat_gap_fills counter\n"), "{text}");
        assert!(text.contains("chat_gap_held_messages_total "), "{text}");
        assert!(
            text.contains("chat_delivery_latency_seconds_bucket{le=\"0.00005\"} "),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        count_connection(Transport::WebSocket, -1);
    }
}
