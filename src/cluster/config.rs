//! `ClusterConfig`: what a node needs to join a cluster; `ClusterError`: why
//! [`Cluster::start`](super::Cluster::start) can refuse.
//!
//! Only a bad configuration is an error. Redis being down at start is not:
//! the node starts, serves its own users and joins the cluster as soon as
//! Redis answers.

use std::fmt;
use std::time::Duration;

/// Settings of one node. Build it with [`ClusterConfig::new`] and change the
/// public fields that need it:
///
/// ```
/// use std::time::Duration;
/// use chat::cluster::ClusterConfig;
/// let cfg = ClusterConfig {
///     liveness: Duration::from_secs(2),
///     ..ClusterConfig::new("redis://127.0.0.1:6379", "node1")
/// };
/// assert_eq!(cfg.key_prefix, "chat");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis every node shares: `redis://host:port[/db]`.
    pub redis_url: String,
    /// This node's name: letters, digits, `.`, `_`, `-`, at most 64. Unique
    /// among running nodes and *stable across restarts*: a node that starts
    /// clears the claims left by the previous process with its id.
    pub node_id: String,
    /// First part of every key and channel (default `chat`), so that
    /// clusters or tests can share a Redis. Same characters as `node_id`,
    /// plus `:`.
    pub key_prefix: String,
    /// How long a node's heartbeat outlives it (default 10 s): a node silent
    /// this long is dead to the others, who then store its users' messages
    /// offline and let them log in elsewhere. The heartbeat beats every
    /// third of it. At least 300 ms.
    pub liveness: Duration,
    /// Connect, read and write timeout of every Redis call (default 2 s):
    /// a Redis that hangs costs each cluster thread at most this long per
    /// command before the thread treats the link as lost.
    pub io_timeout: Duration,
    /// How long [`is_online`](super::Cluster::is_online), which blocks a
    /// worker, waits for the publisher's answer before answering as if
    /// Redis were down (default 500 ms). A login's claim does not wait on
    /// the worker at all ([`claim_then`](super::Cluster::claim_then)).
    pub ask_timeout: Duration,
    /// First delay between reconnection attempts (default 100 ms); it
    /// doubles after each failure up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts (default 5 s).
    pub reconnect_max: Duration,
    /// How many sessions one user may hold at once over every node
    /// (default 1; the server's `--sessions-per-user`): the claim script
    /// counts each node's sessions of a user and refuses the one past it.
    /// Every node of a cluster must use the same value.
    pub sessions_per_user: u32,
    /// Messages for other nodes that may wait in the publisher's queue
    /// (default [`MAX_QUEUED_PUBLISHES`]). Past it, for instance while
    /// Redis hangs and the publisher waits out its `io_timeout`, a message
    /// is not queued: it is handled as when Redis is down (the log keeps
    /// it, and the other nodes are told to catch their users up).
    pub max_queued_publishes: usize,
    /// Users whose nodes the route cache keeps (default
    /// [`ROUTE_CACHE_ENTRIES`]; 0: no cache, every message goes through
    /// the `route` script). A message to a cached user joins its node's
    /// batch without a Redis round trip of its own (`routes.rs`).
    pub route_cache_entries: usize,
}

/// Default [`ClusterConfig::route_cache_entries`]: 262,144 users, about
/// 30 MiB.
pub const ROUTE_CACHE_ENTRIES: usize = 1 << 18;

/// Default [`ClusterConfig::max_queued_publishes`]: 262,144 messages, about
/// 50 MiB of 200-byte payloads, and five seconds of the 1,000-user
/// benchmark's cross-node traffic.
pub const MAX_QUEUED_PUBLISHES: usize = 1 << 18;

impl ClusterConfig {
    /// The defaults for `redis_url` and `node_id`.
    pub fn new(redis_url: impl Into<String>, node_id: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            redis_url: redis_url.into(),
            node_id: node_id.into(),
            key_prefix: "chat".to_owned(),
            liveness: Duration::from_secs(10),
            io_timeout: Duration::from_secs(2),
            ask_timeout: Duration::from_millis(500),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            sessions_per_user: 1,
            max_queued_publishes: MAX_QUEUED_PUBLISHES,
            route_cache_entries: ROUTE_CACHE_ENTRIES,
        }
    }

    /// Checks every field except the URL (which `redis::Client::open` checks).
    ///
    /// # Errors
    /// [`ClusterError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |what: String| Err(ClusterError::Config(what));
        if !valid_name(&self.node_id, false) {
            return bad(format!(
                "node id {:?}: use 1 to 64 letters, digits, '.', '_' or '-'",
                self.node_id
            ));
        }
        if !valid_name(&self.key_prefix, true) {
            return bad(format!(
                "key prefix {:?}: use 1 to 64 letters, digits, '.', '_', '-' or ':'",
                self.key_prefix
            ));
        }
        if self.liveness < Duration::from_millis(300) {
            return bad(format!("liveness {:?} is below 300 ms", self.liveness));
        }
        if self.io_timeout.is_zero() || self.ask_timeout.is_zero() || self.reconnect_min.is_zero() {
            return bad(
                "io timeout, ask timeout and reconnect delay must be above zero".to_owned(),
            );
        }
        if self.sessions_per_user == 0 {
            return bad("sessions per user must be at least 1".to_owned());
        }
        if self.reconnect_max < self.reconnect_min {
            return bad("reconnect_max is below reconnect_min".to_owned());
        }
        Ok(())
    }

    /// How often the heartbeat refreshes the alive key.
    pub(crate) fn beat_interval(&self) -> Duration {
        self.liveness / 3
    }

    /// How long the blocking [`Cluster::claim`](super::Cluster::claim)
    /// waits for the publisher thread's answer: one reconnection, one batch,
    /// the other nodes' confirmations (at most `io_timeout`) and a margin.
    pub(crate) fn answer_timeout(&self) -> Duration {
        self.io_timeout * 4
    }

    /// How long after a presence sync a user found held by another live
    /// node is claimed again before this node gives its session up: time
    /// for every other node to reconnect (its longest back-off, a
    /// connection and its sync) and release the claims of users who left
    /// it while the link was down.
    pub(crate) fn recheck_after(&self) -> Duration {
        self.reconnect_max + self.io_timeout * 2
    }
}

fn valid_name(s: &str, colon: bool) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || (colon && b == b':'))
}

/// A node id for a node listening on `port`: `{hostname}-{port}`, which is
/// unique on a network of distinct host names and stable across restarts.
/// Characters a node id may not have are replaced by `-`.
pub fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .take(50)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if host.is_empty() {
        format!("node-{port}")
    } else {
        format!("{host}-{port}")
    }
}

/// Why a node could not start its cluster layer.
#[derive(Debug)]
pub enum ClusterError {
    /// A setting is wrong; the text says which.
    Config(String),
    /// The Redis URL cannot be parsed.
    Url(redis::RedisError),
    /// A thread could not be spawned.
    Spawn(std::io::Error),
    /// Another node is alive under the same key prefix and speaks another
    /// inter-node protocol (`None`: one from before versions were
    /// numbered); see [`PROTOCOL`](super::PROTOCOL).
    Protocol { node: String, found: Option<u32> },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Config(what) => write!(f, "cluster configuration: {what}"),
            ClusterError::Url(e) => write!(f, "cluster: bad Redis URL: {e}"),
            ClusterError::Spawn(e) => write!(f, "cluster: cannot spawn a thread: {e}"),
            ClusterError::Protocol { node, found } => {
                let theirs = match found {
                    Some(p) => format!("inter-node protocol {p}"),
                    None => "an inter-node protocol from before version numbers".to_owned(),
                };
                write!(
                    f,
                    "cluster: node {node} is alive under this key prefix and speaks {theirs}; \
                     this node speaks protocol {}. Nodes of different protocols cannot share a \
                     cluster: stop every node, then start the new version (or give it another \
                     --redis-prefix). A node killed without a clean stop counts as alive until \
                     its heartbeat key expires, at most --liveness later",
                    super::PROTOCOL
                )
            }
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Config(_) => None,
            ClusterError::Url(e) => Some(e),
            ClusterError::Spawn(e) => Some(e),
            ClusterError::Protocol { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClusterConfig {
        ClusterConfig::new("redis://127.0.0.1:6379", "n1")
    }

    #[test]
    fn defaults() {
        let c = cfg();
        assert_eq!(c.key_prefix, "chat");
        assert_eq!(c.liveness, Duration::from_secs(10));
        assert_eq!(c.ask_timeout, Duration::from_millis(500));
        assert_eq!(c.recheck_after(), Duration::from_secs(9));
        assert_eq!(
            c.beat_interval(),
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        for (c, word) in [
            (
                ClusterConfig {
                    node_id: String::new(),
                    ..cfg()
                },
                "node id",
            ),
            (
                ClusterConfig {
                    node_id: "a b".into(),
                    ..cfg()
                },
                "node id",
            ),
            (
                ClusterConfig {
                    node_id: "a:b".into(),
                    ..cfg()
                },
                "node id",
            ),
            (
                ClusterConfig {
                    node_id: "x".repeat(65),
                    ..cfg()
                },
                "node id",
            ),
            (
                ClusterConfig {
                    key_prefix: "p*".into(),
                    ..cfg()
                },
                "key prefix",
            ),
            (
                ClusterConfig {
                    liveness: Duration::from_millis(299),
                    ..cfg()
                },
                "liveness",
            ),
            (
                ClusterConfig {
                    ask_timeout: Duration::ZERO,
                    ..cfg()
                },
                "ask timeout",
            ),
            (
                ClusterConfig {
                    reconnect_max: Duration::from_millis(1),
                    ..cfg()
                },
                "reconnect_max",
            ),
        ] {
            match c.validate() {
                Err(ClusterError::Config(what)) => assert!(what.contains(word), "{what}"),
                other => panic!("{c:?} gave {other:?}"),
            }
        }
        assert!(ClusterConfig {
            key_prefix: "test:1".into(),
            ..cfg()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn default_node_id_is_a_valid_name() {
        let id = default_node_id(6001);
        assert!(id.ends_with("-6001"), "{id}");
        assert!(ClusterConfig::new("redis://x", id).validate().is_ok());
    }
}
