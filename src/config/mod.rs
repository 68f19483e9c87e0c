//! Configuration of `chat-server`: flags, environment, config file, defaults.
//!
//! Every setting can come from four places; the first that has it wins:
//!
//! 1. a flag: `--listen 0.0.0.0:6000` or `--listen=0.0.0.0:6000`;
//! 2. an environment variable: `CHAT_LISTEN=0.0.0.0:6000`;
//! 3. the config file named by `--config PATH` (or `CHAT_CONFIG`): TOML,
//!    keys spelled as the flags without their dashes (`listen =
//!    "0.0.0.0:6000"`, `idle-timeout = "60s"`, `workers = 8`); the old
//!    `key = value` lines with unquoted values still work, with a note;
//! 4. the built-in default.
//!
//! The one list of settings is [`settings::Settings`], a clap declaration:
//! each field is a setting with its flag, environment variable, default,
//! parser and help line. `--help`, the environment lookup, the file loader
//! ([`layers`]) and `--check-config` ([`show`]) all follow from it.
//! [`resolve`] turns the parsed settings into the [`Config`] the server
//! reads. The log level is not a setting: `RUST_LOG` sets it, as usual
//! with `env_logger`.
//!
//! # Adding a setting
//!
//! 1. a field in [`settings::Settings`] with its `#[arg(long, env =
//!    "CHAT_NAME", value_name, default_value, value_parser)]` and a
//!    one-line doc comment (the help);
//! 2. the field of [`Config`] it becomes, set in [`resolve::resolve`];
//! 3. a line in the tests (`tests.rs`) and in docs/operations.md.
//!
//! ```
//! use chat::config::{Command, Config};
//! let args = ["--listen", "127.0.0.1:0", "--workers=2"].map(String::from);
//! let Command::Run(config) = Config::load(&args, |_| None)? else { unreachable!() };
//! assert_eq!(config.workers, 2);
//! assert_eq!(config.max_message, 64 * 1024); // the default
//! # Ok::<(), chat::config::ConfigError>(())
//! ```

pub mod layers;
pub mod resolve;
pub mod settings;
pub mod show;
mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use crate::runtime::Priority;
use crate::service::LoginLimits;
use layers::Layered;
use settings::Cli;

pub use values::{
    parse_addr, parse_duration, parse_keepalive, parse_priority, parse_size, Keepalive, LogFormat,
    OrOff,
};

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
    /// The data directory as given (`--data-dir`); `None`: the SQLite
    /// file's folder, or for MySQL the working directory
    /// ([`Config::data_dir`]).
    pub data_dir: Option<PathBuf>,
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
    /// Connections from one source address, logged in or not (and, apart,
    /// its plain-HTTP connections to the web listeners); 0: no limit
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
    /// The journal's directory as given (`--journal-dir`); `None`: the
    /// default ([`Config::journal_dir`]).
    pub journal_dir_flag: Option<String>,
    /// `fdatasync` the journal per batch (`--log-fsync`).
    pub log_fsync: bool,
    /// The longest a journaled message waits to be applied
    /// (`--journal-apply-interval`).
    pub journal_apply_interval: Duration,
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
    /// The log's format (`--log-format`).
    pub log_format: LogFormat,
    /// Apply the schema migrations a database needs at start (`false`:
    /// `--no-migrate`, refuse such a database).
    pub migrate: bool,
    /// Messages about how the configuration was read (an old-format
    /// file), for the operator: `chat-server` logs each once at start.
    pub notes: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug)]
// Built once per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Config),
    /// `--check-config`: the configuration is valid; print this text (the
    /// effective configuration, secrets masked) and exit 0.
    Check(Config, String),
    /// `backup --to FILE`: copy the store there and exit.
    Backup(Config, PathBuf),
    /// `migrate-legacy --from URL`: import the C++ original's database
    /// there into the store and exit.
    MigrateLegacy(Config, String),
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
    /// parse (the message names its source), or a config file that cannot
    /// be read.
    pub fn load(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let declared = Cli::command();
        let cmd = layers::without_env(declared.clone());
        let argv = |extra: &[String]| {
            let mut v = vec!["chat-server".to_owned()];
            v.extend_from_slice(extra);
            v.extend_from_slice(args);
            v
        };
        let flags = match cmd.clone().try_get_matches_from(argv(&[])) {
            Ok(m) => m,
            Err(e) => return early_exit(&e),
        };
        let given = Cli::from_arg_matches(&flags).map_err(|e| clap_error(&e))?;
        let env_values = layers::from_env(&declared, &env);
        let config_path = given.config.clone().or_else(|| {
            env("CHAT_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut notes = Vec::new();
        let mut values: Vec<Layered> = Vec::new();
        if let Some(path) = &config_path {
            let file = layers::from_file(&cmd, path)?;
            notes.extend(file.note);
            values.extend(file.values);
        }
        values.extend(env_values);
        layers::check_each(&cmd, &values)?;
        let matches = cmd
            .clone()
            .try_get_matches_from(argv(&layers::as_args(&values)))
            .map_err(|e| clap_error(&e))?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| clap_error(&e))?;
        let config = resolve::resolve(cli.settings, notes)?;
        match cli.action {
            Some(settings::Action::Backup { to }) => return Ok(Command::Backup(config, to)),
            Some(settings::Action::MigrateLegacy { from }) => {
                let from = from
                    .or_else(|| env("CHAT_MIGRATE_FROM"))
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        ConfigError(
                            "migrate-legacy needs --from mysql://… (or CHAT_MIGRATE_FROM)".into(),
                        )
                    })?;
                return Ok(Command::MigrateLegacy(config, from));
            }
            None => {}
        }
        if cli.check_config {
            let mut effective = layers::effective(&cmd, &values, &flags);
            show::fill_derived(&mut effective, &config);
            return Ok(Command::Check(config, show::render(&declared, &effective)));
        }
        Ok(Command::Run(config))
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

    /// Where the message log's journal lives, `None` for none: off, in
    /// cluster mode (`--redis`: several nodes number messages in the
    /// shared store), and for an in-memory SQLite store. By default next
    /// to the SQLite file (`chat.db` → `chat.db.redo`), or for MySQL
    /// `redo-DBNAME` in the token key's folder.
    pub fn journal_dir(&self) -> Option<std::path::PathBuf> {
        use std::path::PathBuf;
        if self.redis.is_some() {
            return None;
        }
        match self.journal_dir_flag.as_deref().map(str::trim) {
            Some("off") => return None,
            Some(dir) if !dir.is_empty() => return Some(PathBuf::from(dir)),
            _ => {}
        }
        if let Some(rest) = self.db.strip_prefix("mysql://") {
            let name = rest.rsplit('/').next().unwrap_or("");
            let name = name.split('?').next().unwrap_or("");
            let dir = match &self.data_dir {
                Some(dir) => dir.clone(),
                None => self
                    .token_key_path()
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            };
            return Some(dir.join(format!("redo-{name}")));
        }
        let path = self.db.strip_prefix("sqlite:").unwrap_or(&self.db);
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() || path.starts_with(':') {
            return None;
        }
        Some(PathBuf::from(format!("{path}.redo")))
    }

    /// Where the resume tokens' key lives: `--token-key-file`, else
    /// `token.key` in the [data directory](Config::data_dir).
    pub fn token_key_path(&self) -> std::path::PathBuf {
        match &self.token_key_file {
            Some(file) => PathBuf::from(file),
            None => self.data_dir().join("token.key"),
        }
    }

    /// The folder of the server's files: `--data-dir`, else the SQLite
    /// database's folder (`data` for the default store), else (MySQL, or
    /// an in-memory SQLite) the working directory, as before `--data-dir`
    /// existed.
    pub fn data_dir(&self) -> PathBuf {
        use std::path::Path;
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        self.db
            .strip_prefix("sqlite:")
            .filter(|path| !path.starts_with(':'))
            .and_then(|path| Path::new(path).parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
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
        // The defaults are valid by construction (the config tests parse them).
        match Config::load(&[], |_| None) {
            Ok(Command::Run(config)) => config,
            other => unreachable!("bad defaults: {other:?}"),
        }
    }
}

/// `--help` and `--version` end parsing early; anything else is an error.
fn early_exit(e: &clap::Error) -> Result<Command, ConfigError> {
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp => Ok(Command::Help),
        clap::error::ErrorKind::DisplayVersion => Ok(Command::Version),
        _ => Err(clap_error(e)),
    }
}

fn clap_error(e: &clap::Error) -> ConfigError {
    ConfigError(format!("{} (see --help)", layers::clap_reason(e)))
}

/// The text `--help` prints: every setting with its environment variable
/// and default.
pub fn usage() -> String {
    Cli::command().render_long_help().to_string()
}

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;
