//! The declaration table: every setting of `chat-server`, once.
//!
//! Each field of [`Settings`] is one setting. Its attribute gives the flag
//! (`long`, the field name with dashes), the environment variable (`env`),
//! the value's shape (`value_name`), the default (`default_value`, or the
//! field is an `Option`), and the parser (`value_parser`, from
//! [`super::values`]); its doc comment is the help line. The config file's
//! keys are the flags without their dashes. `--help`, the environment
//! lookup, the file loader and `--check-config` all read this table, so
//! nothing else lists the settings.
//!
//! A setting whose environment value is hidden (`hide_env_values`) is a
//! secret: `--check-config` masks it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use super::values::{
    addr_or_off, count, count32, duration_or_off, on_off, parse_addr, parse_duration,
    parse_keepalive, parse_priority, size, window, Keepalive, LogFormat, OrOff,
};
use crate::runtime::Priority;

/// The whole command line: the settings, the options that are not settings
/// (`--config`, `--check-config`).
#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version,
    about = "chat-server: a muduo-style chat server speaking the original's JSON protocol",
    long_about = None,
    args_override_self = true,
    allow_negative_numbers = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Read settings from this TOML file (keys as the flags: `listen = "0.0.0.0:6000"`)
    #[arg(long, env = "CHAT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print it with secrets masked, and exit (0: valid, 1: not)
    #[arg(long)]
    pub check_config: bool,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// What to do instead of serving; the settings go before it
/// (`chat-server --db sqlite:/var/lib/chat/chat.db backup --to copy.db`)
/// or come from the environment or the file.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Action {
    /// Copy the SQLite store (--db) to a new file, consistently, while the server runs
    Backup {
        /// The file to write (must not exist)
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Import the C++ original's MySQL database into the store (--db, new or empty): users (passwords hashed at their first login), friends, groups, offline messages
    MigrateLegacy {
        /// The original's database: mysql://user[:pass]@host:port/db (only read); or CHAT_MIGRATE_FROM, which keeps its password out of ps
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
}

const AFTER_HELP: &str = "\
Each setting comes from its flag, else its environment variable, else the
config file (--config), else its default. Durations: 300 (seconds), 500ms,
1.5s, 2m, 1h 30m, 30d. Sizes: 65536, 64KiB, 4M (K, M, G are 1024-based),
1.5MiB. Log level: RUST_LOG=error|warn|info|debug|trace (default info).";

/// Every setting of a server run, as parsed; [`super::resolve`] turns it
/// into a [`super::Config`].
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on: IP:PORT or HOST:PORT (port 0 picks a free port)
    #[arg(long, env = "CHAT_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:6000", value_parser = parse_addr)]
    pub listen: SocketAddr,
    /// Also listen here for the same protocol over TLS (needs --tls-cert and --tls-key)
    #[arg(long, env = "CHAT_TLS_LISTEN", value_name = "ADDR", value_parser = parse_addr)]
    pub tls_listen: Option<SocketAddr>,
    /// TLS certificate chain, PEM, leaf first; re-read on SIGHUP
    #[arg(long, env = "CHAT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM (PKCS#8, PKCS#1 or SEC1); re-read on SIGHUP
    #[arg(long, env = "CHAT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Web listener: the browser client, /ws, /healthz, /readyz, /metrics; off disables
    #[arg(long, env = "CHAT_HTTP", value_name = "ADDR|off", default_value = "127.0.0.1:6080", value_parser = addr_or_off)]
    pub http: OrOff<SocketAddr>,
    /// Also serve the web listener's routes here over TLS (needs --tls-cert and --tls-key)
    #[arg(long, env = "CHAT_HTTPS", value_name = "ADDR", value_parser = parse_addr)]
    pub https: Option<SocketAddr>,
    /// Count traffic for /metrics; off counts nothing (to measure the cost)
    #[arg(long, env = "CHAT_METRICS", value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// After SIGTERM, keep accepting this long with /readyz at 503, then shut down
    #[arg(long, env = "CHAT_DRAIN_GRACE", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub drain_grace: Duration,
    /// I/O threads (event loops), default the number of cores; 0 does all I/O on the main loop
    #[arg(long, env = "CHAT_THREADS", value_name = "N", value_parser = count::<0>)]
    pub threads: Option<usize>,
    /// Worker threads for database calls
    #[arg(long, env = "CHAT_WORKERS", value_name = "N", default_value = "4", value_parser = count::<1>)]
    pub workers: usize,
    /// Threads for argon2 password hashing (register, login), at --hash-priority
    #[arg(long, env = "CHAT_HASH_THREADS", value_name = "N", default_value = "1", value_parser = count::<1>)]
    pub hash_threads: usize,
    /// CPU priority of the hashing threads: idle (SCHED_IDLE) or a nice increment 0-19
    #[arg(long, env = "CHAT_HASH_PRIORITY", value_name = "idle|NICE", default_value = "idle", value_parser = parse_priority)]
    pub hash_priority: Priority,
    /// How long a password hash waits while the I/O threads are over 25% busy (0: never waits)
    #[arg(long, env = "CHAT_HASH_MAX_WAIT", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub hash_max_wait: Duration,
    /// Folder of the server's files: the default store (DIR/chat.db), its journal, the token key [default: data; with --db sqlite:PATH, that file's folder; with a MySQL --db, the working directory]
    #[arg(long, env = "CHAT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store: sqlite:PATH, sqlite::memory: or mysql://user[:pass]@host:port/db [default: sqlite:DATA-DIR/chat.db, so sqlite:data/chat.db]
    #[arg(long, env = "CHAT_DB", value_name = "URL", hide_env_values = true)]
    pub db: Option<String>,
    /// MySQL password, replacing the one in --db (better from the environment than a flag)
    #[arg(
        long,
        env = "CHAT_DB_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub db_password: Option<String>,
    /// File whose first line is the MySQL password (as systemd credentials or secrets give it)
    #[arg(long, env = "CHAT_DB_PASSWORD_FILE", value_name = "FILE")]
    pub db_password_file: Option<PathBuf>,
    /// Largest accepted message; bigger ones close the connection
    #[arg(long, env = "CHAT_MAX_MESSAGE", value_name = "SIZE", default_value = "64KiB", value_parser = size::<64>)]
    pub max_message: usize,
    /// Close connections silent this long (0 or off: never); ping resets it
    #[arg(long, env = "CHAT_IDLE_TIMEOUT", value_name = "DURATION", default_value = "300s", value_parser = duration_or_off)]
    pub idle_timeout: OrOff<Duration>,
    /// TCP keepalive: first probe after IDLE silent, then every INTERVAL, reset after PROBES
    #[arg(long, env = "CHAT_KEEPALIVE", value_name = "IDLE[,INTERVAL[,PROBES]]|off", default_value = "30s,10s,3", value_parser = keepalive)]
    pub keepalive: OrOff<Keepalive>,
    /// A login replaces the account's connection silent longer than this (off: never, errno 2)
    #[arg(long, env = "CHAT_LOGIN_TAKEOVER_GRACE", value_name = "DURATION|off", default_value = "30s", value_parser = grace)]
    pub login_takeover_grace: OrOff<Duration>,
    /// How long a resume token handed out by a login stays valid (at least 1s)
    #[arg(long, env = "CHAT_TOKEN_TTL", value_name = "DURATION", default_value = "30d", value_parser = token_ttl)]
    pub token_ttl: Duration,
    /// The 32-byte key that signs resume tokens, created when missing (default token.key next to the SQLite database)
    #[arg(long, env = "CHAT_TOKEN_KEY_FILE", value_name = "PATH")]
    pub token_key_file: Option<String>,
    /// Close a connection whose unsent output exceeds this (a slow reader)
    #[arg(long, env = "CHAT_HIGH_WATER_MARK", value_name = "SIZE", default_value = "4MiB", value_parser = size::<1024>)]
    pub high_water_mark: usize,
    /// Close connections not logged in this long after connecting or logging out (0: never)
    #[arg(long, env = "CHAT_LOGIN_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = duration_or_off)]
    pub login_timeout: OrOff<Duration>,
    /// Connections not logged in from one source address; more get errno 12 (0: no limit)
    #[arg(long, env = "CHAT_MAX_ANONYMOUS_PER_ADDRESS", value_name = "N", default_value = "64", value_parser = count::<0>)]
    pub max_anonymous_per_address: usize,
    /// Connections from one source address, logged in or not; more get errno 13 (0: no limit). The web listeners' plain-HTTP connections have as many again of their own (more get 429)
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N", default_value = "256", value_parser = count::<0>)]
    pub max_connections_per_address: usize,
    /// Bytes of requests one connection may send behind its login; more get errno 4
    #[arg(long, env = "CHAT_LOGIN_HOLD_BYTES", value_name = "SIZE", default_value = "64KiB", value_parser = size::<0>)]
    pub login_hold_bytes: usize,
    /// Bytes of requests all connections together may send behind their logins
    #[arg(long, env = "CHAT_LOGIN_HOLD_TOTAL", value_name = "SIZE", default_value = "16MiB", value_parser = size::<0>)]
    pub login_hold_total: usize,
    /// Registers and logins one connection may have waiting for the hasher; more get errno 12
    #[arg(long, env = "CHAT_MAX_PENDING_HASHES", value_name = "N", default_value = "4", value_parser = count32::<1>)]
    pub max_pending_hashes: u32,
    /// The same for all connections of one source address (0: no limit)
    #[arg(long, env = "CHAT_MAX_PENDING_HASHES_PER_ADDRESS", value_name = "N", default_value = "16", value_parser = count32::<0>)]
    pub max_pending_hashes_per_address: u32,
    /// Failed logins of one account within --login-window that block it for a cool-down (0: no limit)
    #[arg(long, env = "CHAT_LOGIN_FAILURES_PER_ACCOUNT", value_name = "N", default_value = "5", value_parser = count32::<0>)]
    pub login_failures_per_account: u32,
    /// Failed logins from one source address within --login-window that block it (0: no limit)
    #[arg(long, env = "CHAT_LOGIN_FAILURES_PER_ADDRESS", value_name = "N", default_value = "20", value_parser = count32::<0>)]
    pub login_failures_per_address: u32,
    /// The window of the failed-login and registration counts
    #[arg(long, env = "CHAT_LOGIN_WINDOW", value_name = "DURATION", default_value = "60s", value_parser = window)]
    pub login_window: Duration,
    /// The first block after too many failed logins; each next one doubles
    #[arg(long, env = "CHAT_LOGIN_COOLDOWN", value_name = "DURATION", default_value = "60s", value_parser = window)]
    pub login_cooldown: Duration,
    /// The longest block after too many failed logins
    #[arg(long, env = "CHAT_LOGIN_COOLDOWN_MAX", value_name = "DURATION", default_value = "15m", value_parser = window)]
    pub login_cooldown_max: Duration,
    /// Registrations from one source address within --login-window; more get errno 12 (0: no limit)
    #[arg(long, env = "CHAT_REGISTRATIONS_PER_ADDRESS", value_name = "N", default_value = "20", value_parser = count32::<0>)]
    pub registrations_per_address: u32,
    /// Accounts created from one source address within --accounts-window; more get errno 13 (0: no limit)
    #[arg(long, env = "CHAT_ACCOUNTS_PER_ADDRESS", value_name = "N", default_value = "100", value_parser = count32::<0>)]
    pub accounts_per_address: u32,
    /// The window of --accounts-per-address
    #[arg(long, env = "CHAT_ACCOUNTS_WINDOW", value_name = "DURATION", default_value = "24h", value_parser = window)]
    pub accounts_window: Duration,
    /// Requests one connection may have waiting for a database worker; more get errno 12 (0: no limit)
    #[arg(long, env = "CHAT_MAX_PENDING_REQUESTS", value_name = "N", default_value = "64", value_parser = count32::<0>)]
    pub max_pending_requests: u32,
    /// Requests all connections together may have waiting for the workers; more get errno 12
    #[arg(long, env = "CHAT_WORKER_QUEUE", value_name = "N", default_value = "65536", value_parser = count::<1>)]
    pub worker_queue: usize,
    /// Chat messages one connection may send per second, on average (0: no limit)
    #[arg(long, env = "CHAT_CHAT_RATE", value_name = "N", default_value = "1000", value_parser = count32::<0>)]
    pub chat_rate: u32,
    /// Chat messages one connection may send at once after a pause
    #[arg(long, env = "CHAT_CHAT_BURST", value_name = "N", default_value = "2000", value_parser = count32::<1>)]
    pub chat_burst: u32,
    /// Other requests one connection may send per second (0: no limit)
    #[arg(long, env = "CHAT_REQUEST_RATE", value_name = "N", default_value = "1000", value_parser = count32::<0>)]
    pub request_rate: u32,
    /// Other requests one connection may send at once after a pause
    #[arg(long, env = "CHAT_REQUEST_BURST", value_name = "N", default_value = "2000", value_parser = count32::<1>)]
    pub request_burst: u32,
    /// Friends one user may have; more get errno 13 (0: no limit)
    #[arg(long, env = "CHAT_MAX_FRIENDS", value_name = "N", default_value = "1000", value_parser = count32::<0>)]
    pub max_friends: u32,
    /// Groups one user may have created (and not dismissed) (0: no limit)
    #[arg(long, env = "CHAT_MAX_GROUPS_CREATED", value_name = "N", default_value = "100", value_parser = count32::<0>)]
    pub max_groups_created: u32,
    /// Groups one user may be a member of (0: no limit)
    #[arg(long, env = "CHAT_MAX_GROUPS_JOINED", value_name = "N", default_value = "500", value_parser = count32::<0>)]
    pub max_groups_joined: u32,
    /// Members one group may have (0: no limit)
    #[arg(long, env = "CHAT_MAX_GROUP_SIZE", value_name = "N", default_value = "2000", value_parser = count32::<0>)]
    pub max_group_size: u32,
    /// One-to-one messages waiting for one recipient; more get errno 13 (0: no limit)
    #[arg(long, env = "CHAT_MAX_PENDING_PER_RECIPIENT", value_name = "N", default_value = "100000", value_parser = count::<0>)]
    pub max_pending_per_recipient: usize,
    /// Threads that commit chat messages to the message log (default 1 for SQLite, 2 for MySQL)
    #[arg(long, env = "CHAT_LOG_WRITERS", value_name = "N", value_parser = count::<1>)]
    pub log_writers: Option<usize>,
    /// The most chat messages one log transaction commits (group commit)
    #[arg(long, env = "CHAT_LOG_BATCH", value_name = "N", default_value = "512", value_parser = count::<1>)]
    pub log_batch: usize,
    /// Chat messages one log writer may have queued; more get errno 12
    #[arg(long, env = "CHAT_LOG_QUEUE", value_name = "N", default_value = "65536", value_parser = count::<1>)]
    pub log_queue: usize,
    /// Prune log entries older than this (e.g. 30d); off keeps all history
    #[arg(long, env = "CHAT_HISTORY_RETENTION", value_name = "DURATION|off", default_value = "off", value_parser = duration_or_off)]
    pub history_retention: OrOff<Duration>,
    /// How many connections one account may be logged in on at once (1: a second login gets errno 2, as the original); with more, every session gets every message, self-copies included
    #[arg(long, env = "CHAT_SESSIONS_PER_USER", value_name = "N", default_value = "1", value_parser = count32::<1>)]
    pub sessions_per_user: u32,
    /// The message log's journal (redo log) on a single node (default: beside the SQLite file, or redo-DBNAME beside the token key for MySQL); off: commit to the store directly
    #[arg(long, env = "CHAT_JOURNAL_DIR", value_name = "DIR|off")]
    pub journal_dir: Option<String>,
    /// fdatasync the journal per batch: acked messages survive a machine crash, not only kill -9
    #[arg(long, env = "CHAT_LOG_FSYNC", value_name = "on|off", default_value = "off", value_parser = on_off, action = clap::ArgAction::Set)]
    pub log_fsync: bool,
    /// The longest a journaled message waits to be applied to the store
    #[arg(long, env = "CHAT_JOURNAL_APPLY_INTERVAL", value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pub journal_apply_interval: Duration,
    /// argon2id memory cost of new password hashes (at least 8KiB)
    #[arg(long, env = "CHAT_ARGON2_MEMORY", value_name = "SIZE", default_value = "19MiB", value_parser = size::<8192>)]
    pub argon2_memory: usize,
    /// argon2id time cost (passes) of new password hashes
    #[arg(long, env = "CHAT_ARGON2_PASSES", value_name = "N", default_value = "2", value_parser = count32::<1>)]
    pub argon2_passes: u32,
    /// Cluster mode: the Redis all nodes share (redis://host:port); needs a MySQL --db
    #[arg(long, env = "CHAT_REDIS", value_name = "URL", hide_env_values = true)]
    pub redis: Option<String>,
    /// Cluster mode: this node's name, unique and stable across restarts (default HOST-PORT)
    #[arg(long, env = "CHAT_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Cluster mode: a node silent this long is dead to the others (min 300ms)
    #[arg(long, env = "CHAT_LIVENESS", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub liveness: Duration,
    /// Cluster mode: first part of every Redis key and channel
    #[arg(
        long,
        env = "CHAT_REDIS_PREFIX",
        value_name = "PREFIX",
        default_value = "chat"
    )]
    pub redis_prefix: String,
    /// Refuse a database that needs a migration instead of migrating it (to back it up first)
    #[arg(long, env = "CHAT_NO_MIGRATE", value_name = "on|off", num_args = 0..=1, default_value = "off", default_missing_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub no_migrate: bool,
    /// The log's format: text, or json (one object a line)
    #[arg(
        long,
        env = "CHAT_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        value_enum
    )]
    pub log_format: LogFormat,
}

fn keepalive(text: &str) -> Result<OrOff<Keepalive>, String> {
    parse_keepalive(text).map(OrOff)
}

/// `off`, or a duration (0 included: replace at once).
fn grace(text: &str) -> Result<OrOff<Duration>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(OrOff(None));
    }
    parse_duration(text).map(|d| OrOff(Some(d)))
}

fn token_ttl(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}
