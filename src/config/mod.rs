//! Configuration of `chat-server`: flags, environment, config file, defaults.
//!
//! Every setting can come from four places; the first that has it wins:
//!
//! 1. a flag: `--listen 0.0.0.0:6000` or `--listen=0.0.0.0:6000`;
//! 2. an environment variable: `CHAT_LISTEN=0.0.0.0:6000`;
//! 3. the config file named by `--config PATH` (or `CHAT_CONFIG`), made of
//!    `key = value` lines with `#` comments, keys spelled as the flags
//!    without their dashes (`listen = 0.0.0.0:6000`, `idle-timeout = 60s`);
//! 4. the built-in default.
//!
//! [`OPTIONS`] is the one list of settings: `--help` prints it, and the
//! parser accepts exactly its keys, so the two cannot drift apart. The log
//! level is not a setting here: `RUST_LOG` sets it, as usual with
//! `env_logger`.
//!
//! ```
//! use chat::config::{Command, Config};
//! let args = ["--listen", "127.0.0.1:0", "--workers=2"].map(String::from);
//! let Command::Run(config) = Config::load(&args, |_| None)? else { unreachable!() };
//! assert_eq!(config.workers, 2);
//! assert_eq!(config.max_message, 64 * 1024); // the default
//! # Ok::<(), chat::config::ConfigError>(())
//! ```

mod values;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::runtime::Priority;
use crate::service::LoginLimits;

pub use values::{parse_duration, parse_keepalive, parse_priority, parse_size, Keepalive};

/// One setting: its flag/file key, its environment variable, and its help.
#[derive(Debug)]
pub struct Opt {
    /// The flag without `--`, also the config-file key.
    pub key: &'static str,
    /// What the value looks like, for `--help`.
    pub value: &'static str,
    /// The default, as text (empty: none).
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

impl Opt {
    /// The environment variable: `CHAT_` and the key in upper snake case.
    pub fn env_name(&self) -> String {
        format!("CHAT_{}", self.key.replace('-', "_").to_uppercase())
    }
}

/// Every setting, in the order `--help` lists them.
pub const OPTIONS: &[Opt] = &[
    Opt {
        key: "listen",
        value: "ADDR",
        default: "127.0.0.1:6000",
        help: "address to listen on (port 0 picks a free port)",
    },
    Opt {
        key: "tls-listen",
        value: "ADDR",
        default: "",
        help: "also listen here for the same protocol over TLS (needs --tls-cert and --tls-key); the plain --listen stays",
    },
    Opt {
        key: "tls-cert",
        value: "FILE",
        default: "",
        help: "TLS certificate chain, PEM, leaf first; re-read on SIGHUP",
    },
    Opt {
        key: "tls-key",
        value: "FILE",
        default: "",
        help: "TLS private key, PEM (PKCS#8, PKCS#1 or SEC1); re-read on SIGHUP",
    },
    Opt {
        key: "http",
        value: "ADDR|off",
        default: "127.0.0.1:6080",
        help: "web listener: the browser client, /ws (JSON over WebSocket), /healthz, /readyz, /metrics; off disables",
    },
    Opt {
        key: "https",
        value: "ADDR",
        default: "",
        help: "also serve the web listener's routes here over TLS (https:, wss:; needs --tls-cert and --tls-key, the same certificate as --tls-listen)",
    },
    Opt {
        key: "metrics",
        value: "on|off",
        default: "on",
        help: "count traffic for the web listener's /metrics; off counts nothing (to measure the cost)",
    },
    Opt {
        key: "drain-grace",
        value: "DURATION",
        default: "0s",
        help: "after SIGTERM, keep accepting this long with /readyz at 503 (for a load balancer), then shut down",
    },
    Opt {
        key: "threads",
        value: "N",
        default: "cores",
        help: "I/O threads (event loops); 0 does all I/O on the main loop",
    },
    Opt {
        key: "workers",
        value: "N",
        default: "4",
        help: "worker threads for database calls",
    },
    Opt {
        key: "hash-threads",
        value: "N",
        default: "1",
        help: "threads for argon2 password hashing (register, login), at --hash-priority",
    },
    Opt {
        key: "hash-priority",
        value: "idle|NICE",
        default: "idle",
        help: "CPU priority of the hashing threads: idle (SCHED_IDLE, only CPU nothing else wants) or a nice increment 0-19 (a small share of a busy CPU: for hosts kept busy by other programs)",
    },
    Opt {
        key: "hash-max-wait",
        value: "DURATION",
        default: "1s",
        help: "how long a password hash waits while the I/O threads are over 25% busy (0: never waits)",
    },
    Opt {
        key: "db",
        value: "URL",
        default: "sqlite:data/chat.db",
        help: "store: sqlite:PATH, sqlite::memory: or mysql://user:pass@host:port/db",
    },
    Opt {
        key: "max-message",
        value: "SIZE",
        default: "64KiB",
        help: "largest accepted message; bigger ones close the connection",
    },
    Opt {
        key: "idle-timeout",
        value: "DURATION",
        default: "300s",
        help: "close connections silent this long (0: never); ping resets it",
    },
    Opt {
        key: "keepalive",
        value: "IDLE[,INTERVAL[,PROBES]]|off",
        default: "30s,10s,3",
        help: "TCP keepalive on every connection: first probe after IDLE without traffic, then every INTERVAL (default 10s), reset after PROBES unanswered (default 3) or data unacknowledged as long; finds peers gone without a FIN",
    },
    Opt {
        key: "login-takeover-grace",
        value: "DURATION|off",
        default: "30s",
        help: "a login of an account online on a connection silent longer than this replaces that connection (off: never, the login gets errno 2); single node only",
    },
    Opt {
        key: "sessions-per-user",
        value: "N",
        default: "1",
        help: "how many connections one account may be logged in on at once (1: a second login gets errno 2, as the original); with more, every session gets every message, self-copies included",
    },
    Opt {
        key: "token-ttl",
        value: "DURATION",
        default: "30d",
        help: "how long a resume token handed out by a login stays valid (a login with it hands out a fresh one)",
    },
    Opt {
        key: "token-key-file",
        value: "PATH",
        default: "DATA-DIR/token.key",
        help: "the 32-byte key that signs resume tokens; created (mode 0600) when missing, next to the SQLite database or, for MySQL, in the current directory; every node of a cluster must read the same file",
    },
    Opt {
        key: "high-water-mark",
        value: "SIZE",
        default: "4MiB",
        help: "close a connection whose unsent output exceeds this (a slow reader)",
    },
    Opt {
        key: "login-timeout",
        value: "DURATION",
        default: "30s",
        help: "close connections not logged in (nor logging in) this long after connecting or logging out (0: never)",
    },
    Opt {
        key: "max-anonymous-per-address",
        value: "N",
        default: "64",
        help: "connections not logged in from one source address; more are refused with errno 12 (0: no limit)",
    },
    Opt {
        key: "max-connections-per-address",
        value: "N",
        default: "256",
        help: "connections from one source address, logged in or not; more are refused with errno 13 (0: no limit)",
    },
    Opt {
        key: "login-hold-bytes",
        value: "SIZE",
        default: "64KiB",
        help: "requests one connection may send behind its login, in bytes; more get errno 4",
    },
    Opt {
        key: "login-hold-total",
        value: "SIZE",
        default: "16MiB",
        help: "requests all connections together may send behind their logins, in bytes; more get errno 4",
    },
    Opt {
        key: "max-pending-hashes",
        value: "N",
        default: "4",
        help: "registers and logins one connection may have waiting for the password hasher; more get errno 12",
    },
    Opt {
        key: "max-pending-hashes-per-address",
        value: "N",
        default: "16",
        help: "registers and logins all connections of one source address may have waiting for the password hasher; more get errno 12 (0: no limit)",
    },
    Opt {
        key: "login-failures-per-account",
        value: "N",
        default: "5",
        help: "failed logins of one account within --login-window that block its logins for a cool-down, errno 12 (0: no limit)",
    },
    Opt {
        key: "login-failures-per-address",
        value: "N",
        default: "20",
        help: "failed logins from one source address within --login-window that block its logins for a cool-down, errno 12 (0: no limit)",
    },
    Opt {
        key: "login-window",
        value: "DURATION",
        default: "60s",
        help: "the window of the failed-login and registration counts",
    },
    Opt {
        key: "login-cooldown",
        value: "DURATION",
        default: "60s",
        help: "the first block after too many failed logins; each next one doubles",
    },
    Opt {
        key: "login-cooldown-max",
        value: "DURATION",
        default: "15m",
        help: "the longest block after too many failed logins",
    },
    Opt {
        key: "registrations-per-address",
        value: "N",
        default: "20",
        help: "registrations from one source address within --login-window; more get errno 12 (0: no limit)",
    },
    Opt {
        key: "accounts-per-address",
        value: "N",
        default: "100",
        help: "accounts created from one source address within --accounts-window; more registrations get errno 13 (0: no limit)",
    },
    Opt {
        key: "accounts-window",
        value: "DURATION",
        default: "24h",
        help: "the window of --accounts-per-address",
    },
    Opt {
        key: "max-pending-requests",
        value: "N",
        default: "64",
        help: "requests one connection may have waiting for a database worker; more get errno 12 (0: no limit)",
    },
    Opt {
        key: "worker-queue",
        value: "N",
        default: "65536",
        help: "requests all connections together may have waiting for the database workers; more get errno 12",
    },
    Opt {
        key: "chat-rate",
        value: "N",
        default: "1000",
        help: "chat messages (9, 13) one connection may send per second, on average; more get errno 12 with retry_after (0: no limit)",
    },
    Opt {
        key: "chat-burst",
        value: "N",
        default: "2000",
        help: "chat messages one connection may send at once after a pause (the rate limit's bucket)",
    },
    Opt {
        key: "request-rate",
        value: "N",
        default: "1000",
        help: "other requests (all but chat, login, register) one connection may send per second; more get errno 12 with retry_after (0: no limit)",
    },
    Opt {
        key: "request-burst",
        value: "N",
        default: "2000",
        help: "other requests one connection may send at once after a pause",
    },
    Opt {
        key: "max-friends",
        value: "N",
        default: "1000",
        help: "friends one user may have; more get errno 13 (0: no limit)",
    },
    Opt {
        key: "max-groups-created",
        value: "N",
        default: "100",
        help: "groups one user may have created (and not dismissed); more get errno 13 (0: no limit)",
    },
    Opt {
        key: "max-groups-joined",
        value: "N",
        default: "500",
        help: "groups one user may be a member of; more get errno 13 (0: no limit)",
    },
    Opt {
        key: "max-group-size",
        value: "N",
        default: "2000",
        help: "members one group may have; more get errno 13 (0: no limit)",
    },
    Opt {
        key: "max-pending-per-recipient",
        value: "N",
        default: "100000",
        help: "one-to-one messages waiting for one recipient; more get errno 13 (0: no limit)",
    },
    Opt {
        key: "log-writers",
        value: "N",
        default: "1 (SQLite), 2 (MySQL)",
        help: "threads that commit chat messages to the message log, each a transaction per batch",
    },
    Opt {
        key: "log-batch",
        value: "N",
        default: "512",
        help: "the most chat messages one log transaction commits (group commit)",
    },
    Opt {
        key: "log-queue",
        value: "N",
        default: "65536",
        help: "chat messages one log writer may have queued; more get errno 12",
    },
    Opt {
        key: "history-retention",
        value: "DURATION",
        default: "off",
        help: "prune log entries older than this (e.g. 30d); off keeps all history",
    },
    Opt {
        key: "argon2-memory",
        value: "SIZE",
        default: "19MiB",
        help: "argon2id memory cost of new password hashes",
    },
    Opt {
        key: "argon2-passes",
        value: "N",
        default: "2",
        help: "argon2id time cost (passes) of new password hashes",
    },
    Opt {
        key: "redis",
        value: "URL",
        default: "",
        help: "cluster mode: the Redis all nodes share (redis://host:port); needs a MySQL --db",
    },
    Opt {
        key: "node-id",
        value: "ID",
        default: "HOST-PORT",
        help: "cluster mode: this node's name, unique and stable across restarts",
    },
    Opt {
        key: "liveness",
        value: "DURATION",
        default: "10s",
        help: "cluster mode: a node silent this long is dead to the others (min 300ms)",
    },
    Opt {
        key: "redis-prefix",
        value: "PREFIX",
        default: "chat",
        help: "cluster mode: first part of every Redis key and channel",
    },
    Opt {
        key: "config",
        value: "PATH",
        default: "",
        help: "read settings from this file (key = value lines)",
    },
];

/// The settings of one server run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen (`--listen`).
    pub listen: SocketAddr,
    /// Where to listen for TLS (`--tls-listen`); `None`: no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// The TLS certificate chain (`--tls-cert`), PEM.
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (`--tls-key`), PEM.
    pub tls_key: Option<PathBuf>,
    /// The web listener (`--http`); `None` when `off`.
    pub http: Option<SocketAddr>,
    /// The web listener over TLS (`--https`); `None`: none.
    pub https: Option<SocketAddr>,
    /// Whether traffic is counted for `/metrics` (`--metrics`).
    pub metrics: bool,
    /// How long SIGTERM leaves the listeners open (`--drain-grace`).
    pub drain_grace: Duration,
    /// Number of I/O threads (`--threads`).
    pub threads: usize,
    /// Number of worker threads (`--workers`), at least 1.
    pub workers: usize,
    /// Number of password-hashing threads (`--hash-threads`), at least 1.
    pub hash_threads: usize,
    /// Longest a hash waits for the I/O threads to calm down
    /// (`--hash-max-wait`).
    pub hash_max_wait: Duration,
    /// CPU priority of the hashing threads (`--hash-priority`).
    pub hash_priority: Priority,
    /// Store URL (`--db`).
    pub db: String,
    /// Largest message in bytes (`--max-message`).
    pub max_message: usize,
    /// Close connections idle this long; `None` never does (`--idle-timeout 0`).
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive for every accepted connection (`--keepalive`); `None`
    /// leaves it off.
    pub keepalive: Option<Keepalive>,
    /// A login may replace the account's connection on this node once that
    /// connection has received nothing for longer than this
    /// (`--login-takeover-grace`); `None` never replaces (errno 2).
    pub login_takeover_grace: Option<Duration>,
    /// How many connections one account may be logged in on at once
    /// (`--sessions-per-user`), at least 1.
    pub sessions_per_user: u32,
    /// How long a resume token stays valid (`--token-ttl`), at least 1s.
    pub token_ttl: Duration,
    /// The file holding the resume tokens' key (`--token-key-file`); `None`:
    /// `token.key` in the data directory ([`Config::token_key_path`]).
    pub token_key_file: Option<String>,
    /// Output bytes queued for one connection before it is dropped as a slow
    /// reader (`--high-water-mark`).
    pub high_water_mark: usize,
    /// Close connections anonymous this long; `None` never does
    /// (`--login-timeout 0`).
    pub login_timeout: Option<Duration>,
    /// Anonymous connections from one source address; 0: no limit
    /// (`--max-anonymous-per-address`).
    pub max_anonymous_per_address: usize,
    /// Connections from one source address, logged in or not; 0: no limit
    /// (`--max-connections-per-address`).
    pub max_connections_per_address: usize,
    /// Bytes of requests one connection may send behind its login
    /// (`--login-hold-bytes`).
    pub login_hold_bytes: usize,
    /// Bytes of requests all connections together may send behind their
    /// logins (`--login-hold-total`).
    pub login_hold_total: usize,
    /// Registers and logins one connection may have queued or running on
    /// the hashing threads (`--max-pending-hashes`), at least 1.
    pub max_pending_hashes: u32,
    /// The limits per address and per account on registers and logins
    /// (`--max-pending-hashes-per-address`, `--login-failures-per-account`,
    /// `--login-failures-per-address`, `--login-window`, `--login-cooldown`,
    /// `--login-cooldown-max`, `--registrations-per-address`,
    /// `--accounts-per-address`, `--accounts-window`).
    pub login_limits: LoginLimits,
    /// Requests one connection may have waiting for a worker
    /// (`--max-pending-requests`); 0: no limit.
    pub max_pending_requests: u32,
    /// Requests all connections may have waiting for the workers
    /// (`--worker-queue`), at least 1.
    pub worker_queue: usize,
    /// Chat messages per second and burst of one connection
    /// (`--chat-rate`, `--chat-burst`); a rate of 0: no limit.
    pub chat_rate: (u32, u32),
    /// Other requests per second and burst of one connection
    /// (`--request-rate`, `--request-burst`); a rate of 0: no limit.
    pub request_rate: (u32, u32),
    /// Friends of one user (`--max-friends`); 0: no limit.
    pub max_friends: u32,
    /// Groups one user created (`--max-groups-created`); 0: no limit.
    pub max_groups_created: u32,
    /// Groups one user is in (`--max-groups-joined`); 0: no limit.
    pub max_groups_joined: u32,
    /// Members of one group (`--max-group-size`); 0: no limit.
    pub max_group_size: u32,
    /// One-to-one messages waiting for one recipient
    /// (`--max-pending-per-recipient`); 0: no limit.
    pub max_pending_per_recipient: u64,
    /// Message log writer threads (`--log-writers`).
    pub log_writers: usize,
    /// The most chat messages one log transaction commits (`--log-batch`).
    pub log_batch: usize,
    /// Chat messages one log writer may have queued (`--log-queue`).
    pub log_queue: usize,
    /// Prune log entries older than this (`--history-retention`); `None`
    /// keeps everything.
    pub history_retention: Option<Duration>,
    /// argon2id memory cost in KiB for new hashes (`--argon2-memory`).
    pub argon2_memory_kib: u32,
    /// argon2id passes for new hashes (`--argon2-passes`).
    pub argon2_passes: u32,
    /// The shared Redis (`--redis`); `Some` turns cluster mode on.
    pub redis: Option<String>,
    /// This node's name (`--node-id`); `None`: `cluster::default_node_id`
    /// of the port actually bound.
    pub node_id: Option<String>,
    /// How long a node's heartbeat outlives it (`--liveness`).
    pub liveness: Duration,
    /// First part of every Redis key and channel (`--redis-prefix`).
    pub redis_prefix: String,
}

/// What the command line asks for.
#[derive(Debug)]
// Built once per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Config),
    /// Print [`usage`] and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration from `args` (without the program name), the
    /// environment as `env` reports it, and the config file if one is named.
    ///
    /// # Errors
    /// An unknown flag or file key, a missing value, a value that does not
    /// parse, or a config file that cannot be read.
    pub fn load(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let flags = match parse_flags(args)? {
            Flags::Help => return Ok(Command::Help),
            Flags::Version => return Ok(Command::Version),
            Flags::Values(v) => v,
        };
        let mut env_values = HashMap::new();
        for opt in OPTIONS {
            if let Some(v) = env(&opt.env_name()) {
                env_values.insert(opt.key, v);
            }
        }
        let file_values = match flags.get("config").or_else(|| env_values.get("config")) {
            Some(path) => read_config_file(path)?,
            None => HashMap::new(),
        };
        let lookup = |key: &str| -> Option<(String, &'static str)> {
            if let Some(v) = flags.get(key) {
                return Some((v.clone(), "flag"));
            }
            if let Some(v) = env_values.get(key) {
                return Some((v.clone(), "environment"));
            }
            file_values.get(key).map(|v| (v.clone(), "config file"))
        };
        Config::from_lookup(lookup).map(Command::Run)
    }

    /// Builds a configuration from one lookup that already applies the
    /// precedence; missing keys take their defaults.
    fn from_lookup(
        lookup: impl Fn(&str) -> Option<(String, &'static str)>,
    ) -> Result<Config, ConfigError> {
        let get = |key: &str| lookup(key);
        let bad = |key: &str, from: &str, v: &str, why: String| {
            ConfigError(format!("{key} = {v:?} (from the {from}): {why}"))
        };
        let listen = match get("listen") {
            Some((v, from)) => v
                .parse()
                .map_err(|e| bad("listen", from, &v, format!("{e}")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 6000)),
        };
        let tls_listen = match get("tls-listen") {
            Some((v, _)) if v.trim().is_empty() => None,
            Some((v, from)) => Some(
                v.parse()
                    .map_err(|e| bad("tls-listen", from, &v, format!("{e}")))?,
            ),
            None => None,
        };
        let path = |key: &str| {
            get(key)
                .map(|(v, _)| v)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let http = match get("http") {
            Some((v, _)) if v.trim() == "off" => None,
            Some((v, from)) => Some(
                v.trim()
                    .parse()
                    .map_err(|e| bad("http", from, &v, format!("{e} (an address, or off)")))?,
            ),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 6080))),
        };
        let https = match get("https") {
            Some((v, _)) if v.trim().is_empty() => None,
            Some((v, from)) => Some(
                v.trim()
                    .parse()
                    .map_err(|e| bad("https", from, &v, format!("{e}")))?,
            ),
            None => None,
        };
        let count = |key: &str, default: usize, min: usize| -> Result<usize, ConfigError> {
            match get(key) {
                Some((v, from)) => match v.trim().parse::<usize>() {
                    Ok(n) if n >= min => Ok(n),
                    Ok(n) => Err(bad(
                        key,
                        from,
                        &v,
                        format!("{n} is below the minimum of {min}"),
                    )),
                    Err(e) => Err(bad(key, from, &v, format!("{e}"))),
                },
                None => Ok(default),
            }
        };
        let size = |key: &str, default: usize, min: usize| -> Result<usize, ConfigError> {
            match get(key) {
                Some((v, from)) => match parse_size(&v) {
                    Ok(n) if n >= min => Ok(n),
                    Ok(n) => Err(bad(
                        key,
                        from,
                        &v,
                        format!("{n} bytes is below the minimum of {min}"),
                    )),
                    Err(why) => Err(bad(key, from, &v, why)),
                },
                None => Ok(default),
            }
        };
        let duration = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(key) {
                Some((v, from)) => parse_duration(&v).map_err(|why| bad(key, from, &v, why)),
                None => Ok(default),
            }
        };
        let keepalive = match get("keepalive") {
            Some((v, from)) => {
                parse_keepalive(&v).map_err(|why| bad("keepalive", from, &v, why))?
            }
            None => Some(Keepalive::DEFAULT),
        };
        let grace = match get("login-takeover-grace") {
            Some((v, _)) if v.trim().eq_ignore_ascii_case("off") => None,
            Some((v, from)) => {
                Some(parse_duration(&v).map_err(|why| bad("login-takeover-grace", from, &v, why))?)
            }
            None => Some(Duration::from_secs(30)),
        };
        let retention = match get("history-retention") {
            Some((v, _)) if v.trim().eq_ignore_ascii_case("off") => None,
            Some((v, from)) => {
                let d =
                    parse_duration(&v).map_err(|why| bad("history-retention", from, &v, why))?;
                (!d.is_zero()).then_some(d)
            }
            None => None,
        };
        // A window of zero would count nothing.
        let window = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            let d = duration(key, default)?;
            match get(key) {
                Some((v, from)) if d.is_zero() => Err(bad(key, from, &v, "must be above 0".into())),
                _ => Ok(d),
            }
        };
        let limit = |key: &str, default: usize| -> Result<u32, ConfigError> {
            Ok(u32::try_from(count(key, default, 0)?).unwrap_or(u32::MAX))
        };
        let defaults = LoginLimits::default();
        let login_limits = LoginLimits {
            pending_per_address: limit("max-pending-hashes-per-address", 16)?,
            failures_per_account: limit("login-failures-per-account", 5)?,
            failures_per_address: limit("login-failures-per-address", 20)?,
            window: window("login-window", defaults.window)?,
            cooldown: window("login-cooldown", defaults.cooldown)?,
            cooldown_max: window("login-cooldown-max", defaults.cooldown_max)?,
            registrations_per_address: limit("registrations-per-address", 20)?,
            accounts_per_address: limit("accounts-per-address", 100)?,
            accounts_window: window("accounts-window", defaults.accounts_window)?,
        };
        let count32 = |key: &str, default: u32, min: u32| -> Result<u32, ConfigError> {
            let n = count(key, default as usize, min as usize)?;
            u32::try_from(n).map_err(|_| ConfigError(format!("{key} = {n}: at most {}", u32::MAX)))
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let idle = duration("idle-timeout", Duration::from_secs(300))?;
        let argon2_memory = size("argon2-memory", 19 * 1024 * 1024, 8 * 1024)?;
        let login_timeout = duration("login-timeout", Duration::from_secs(30))?;
        let db = get("db").map_or_else(|| "sqlite:data/chat.db".to_owned(), |(v, _)| v);
        // SQLite has one writer anyway; MySQL commits two batches at once.
        let default_writers = if db.starts_with("mysql://") { 2 } else { 1 };
        let config = Config {
            listen,
            tls_listen,
            tls_cert: path("tls-cert"),
            tls_key: path("tls-key"),
            http,
            https,
            threads: count("threads", cores, 0)?,
            workers: count("workers", 4, 1)?,
            hash_threads: count("hash-threads", 1, 1)?,
            hash_max_wait: duration("hash-max-wait", Duration::from_secs(1))?,
            hash_priority: match get("hash-priority") {
                Some((v, from)) => {
                    parse_priority(&v).map_err(|why| bad("hash-priority", from, &v, why))?
                }
                None => Priority::Idle,
            },
            max_pending_requests: count32("max-pending-requests", 64, 0)?,
            worker_queue: count("worker-queue", 65_536, 1)?,
            chat_rate: (
                count32("chat-rate", 1000, 0)?,
                count32("chat-burst", 2000, 1)?,
            ),
            request_rate: (
                count32("request-rate", 1000, 0)?,
                count32("request-burst", 2000, 1)?,
            ),
            max_friends: count32("max-friends", 1000, 0)?,
            max_groups_created: count32("max-groups-created", 100, 0)?,
            max_groups_joined: count32("max-groups-joined", 500, 0)?,
            max_group_size: count32("max-group-size", 2000, 0)?,
            max_pending_per_recipient: count("max-pending-per-recipient", 100_000, 0)? as u64,
            log_writers: count("log-writers", default_writers, 1)?,
            log_batch: count("log-batch", 512, 1)?,
            log_queue: count("log-queue", 65_536, 1)?,
            history_retention: retention,
            db,
            max_message: size("max-message", 64 * 1024, 64)?,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            keepalive,
            login_takeover_grace: grace,
            sessions_per_user: count32("sessions-per-user", 1, 1)?,
            token_ttl: match get("token-ttl") {
                Some((v, from)) => match parse_duration(&v) {
                    Ok(d) if d >= Duration::from_secs(1) => d,
                    Ok(_) => return Err(bad("token-ttl", from, &v, "must be at least 1s".into())),
                    Err(why) => return Err(bad("token-ttl", from, &v, why)),
                },
                None => Duration::from_secs(30 * 86_400),
            },
            token_key_file: get("token-key-file")
                .map(|(v, _)| v)
                .filter(|v| !v.is_empty()),
            high_water_mark: size("high-water-mark", 4 * 1024 * 1024, 1024)?,
            login_timeout: (!login_timeout.is_zero()).then_some(login_timeout),
            max_anonymous_per_address: count("max-anonymous-per-address", 64, 0)?,
            max_connections_per_address: count("max-connections-per-address", 256, 0)?,
            login_hold_bytes: size("login-hold-bytes", 64 * 1024, 0)?,
            login_hold_total: size("login-hold-total", 16 * 1024 * 1024, 0)?,
            max_pending_hashes: u32::try_from(count("max-pending-hashes", 4, 1)?)
                .unwrap_or(u32::MAX),
            login_limits,
            argon2_memory_kib: u32::try_from(argon2_memory / 1024).unwrap_or(u32::MAX),
            argon2_passes: u32::try_from(count("argon2-passes", 2, 1)?).unwrap_or(u32::MAX),
            redis: get("redis").map(|(v, _)| v).filter(|v| !v.is_empty()),
            node_id: get("node-id").map(|(v, _)| v).filter(|v| !v.is_empty()),
            liveness: duration("liveness", Duration::from_secs(10))?,
            drain_grace: duration("drain-grace", Duration::ZERO)?,
            metrics: match get("metrics") {
                None => true,
                Some((v, from)) => match v.trim() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad("metrics", from, &v, "on or off".into())),
                },
            },
            redis_prefix: get("redis-prefix").map_or_else(|| "chat".to_owned(), |(v, _)| v),
        };
        config.check_cluster()?;
        config.check_tls()?;
        Ok(config)
    }

    /// A TLS listener (chat or web) needs its certificate and key.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let missing = self.tls_cert.is_none() || self.tls_key.is_none();
        for (flag, set) in [
            ("--tls-listen", self.tls_listen.is_some()),
            ("--https", self.https.is_some()),
        ] {
            if set && missing {
                return Err(ConfigError(format!(
                    "{flag} needs --tls-cert FILE and --tls-key FILE (PEM)"
                )));
            }
        }
        Ok(())
    }

    /// Where the resume tokens' key lives: `--token-key-file`, else
    /// `token.key` in the SQLite database's directory, else (MySQL, or an
    /// in-memory SQLite) in the current directory.
    pub fn token_key_path(&self) -> std::path::PathBuf {
        use std::path::{Path, PathBuf};
        if let Some(file) = &self.token_key_file {
            return PathBuf::from(file);
        }
        let dir = self
            .db
            .strip_prefix("sqlite:")
            .filter(|path| !path.starts_with(':'))
            .and_then(|path| Path::new(path).parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        dir.join("token.key")
    }

    /// Cluster mode shares one store between nodes: only MySQL can be shared.
    fn check_cluster(&self) -> Result<(), ConfigError> {
        if self.redis.is_some() && !self.db.starts_with("mysql://") {
            return Err(ConfigError(format!(
                "cluster mode (--redis) needs a MySQL store (--db mysql://user:pass@host:port/db): \
                 the embedded store {:?} cannot be shared between nodes",
                self.db
            )));
        }
        Ok(())
    }
}

impl Default for Config {
    /// The built-in defaults, as `chat-server` with no flags and no
    /// environment would use.
    fn default() -> Config {
        // The defaults are valid by construction; see `from_lookup`.
        Config::from_lookup(|_| None).unwrap_or_else(|e| unreachable!("bad default: {e}"))
    }
}

enum Flags {
    Help,
    Version,
    Values(HashMap<&'static str, String>),
}

fn find_opt(key: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.key == key)
}

fn parse_flags(args: &[String]) -> Result<Flags, ConfigError> {
    let mut values = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Flags::Help),
            "-V" | "--version" => return Ok(Flags::Version),
            _ => {}
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(ConfigError(format!(
                "unexpected argument {arg:?} (see --help)"
            )));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        let opt = find_opt(name)
            .ok_or_else(|| ConfigError(format!("unknown flag --{name} (see --help)")))?;
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| ConfigError(format!("--{name} needs a value ({})", opt.value)))?,
        };
        values.insert(opt.key, value);
    }
    Ok(Flags::Values(values))
}

/// Reads `key = value` lines; `#` starts a comment; keys may use `_` for `-`.
fn read_config_file(path: &str) -> Result<HashMap<&'static str, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {path}: {e}")))?;
    parse_config_text(&text).map_err(|e| ConfigError(format!("{path}: {e}")))
}

fn parse_config_text(text: &str) -> Result<HashMap<&'static str, String>, ConfigError> {
    let mut values = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("line {}: expected `key = value`", n + 1)))?;
        let key = key.trim().replace('_', "-");
        let opt = find_opt(&key)
            .filter(|o| o.key != "config")
            .ok_or_else(|| ConfigError(format!("line {}: unknown key `{key}`", n + 1)))?;
        let value = value.trim().trim_matches('"');
        values.insert(opt.key, value.to_owned());
    }
    Ok(values)
}

/// The text `--help` prints: every option with its environment variable
/// and default.
pub fn usage() -> String {
    let mut s = String::from(
        "chat-server: a muduo-style chat server speaking the original's JSON protocol\n\n\
         usage: chat-server [--KEY VALUE]...\n\n\
         Settings come from flags, then environment variables, then the config file,\n\
         then the defaults. Log level: RUST_LOG=error|warn|info|debug|trace (default info).\n\n",
    );
    for opt in OPTIONS {
        let flag = format!("--{} {}", opt.key, opt.value);
        s.push_str(&format!("  {flag:<28} {}\n", opt.help));
        let default = if opt.default.is_empty() {
            "none"
        } else {
            opt.default
        };
        s.push_str(&format!(
            "  {:<28} env {}, default {default}\n",
            "",
            opt.env_name()
        ));
    }
    s.push_str("  -h, --help                   print this help\n  -V, --version                print the version\n");
    s
}

#[cfg(test)]
mod tests;
