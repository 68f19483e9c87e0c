//! From the parsed [`Settings`] to the [`Config`] the server runs with:
//! the defaults that depend on other settings or on the machine, the
//! password put into the store URL, and the checks across settings.

use std::path::Path;

use super::settings::Settings;
use super::{Config, ConfigError};
use crate::service::LoginLimits;

/// Builds the configuration; `notes` are messages about how it was read.
///
/// # Errors
/// A password file that cannot be read, or settings that do not go
/// together (TLS without a certificate, a cluster on SQLite).
pub fn resolve(s: Settings, notes: Vec<String>) -> Result<Config, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data_dir = s.data_dir.clone().filter(|d| !d.as_os_str().is_empty());
    let db = match s.db.as_deref().filter(|d| !d.is_empty()) {
        Some(db) => db.to_owned(),
        None => default_db(data_dir.as_deref()),
    };
    let db = with_password(&db, password(&s)?)?;
    // SQLite has one writer anyway; MySQL commits two batches at once.
    let default_writers = if db.starts_with("mysql://") { 2 } else { 1 };
    let config = Config {
        listen: s.listen,
        tls_listen: s.tls_listen,
        tls_cert: s.tls_cert,
        tls_key: s.tls_key,
        http: s.http.0,
        https: s.https,
        metrics: s.metrics,
        drain_grace: s.drain_grace,
        threads: s.threads.unwrap_or(cores),
        workers: s.workers,
        hash_threads: s.hash_threads,
        hash_max_wait: s.hash_max_wait,
        hash_priority: s.hash_priority,
        db,
        data_dir,
        max_message: s.max_message,
        idle_timeout: s.idle_timeout.0,
        keepalive: s.keepalive.0,
        login_takeover_grace: s.login_takeover_grace.0,
        sessions_per_user: s.sessions_per_user,
        token_ttl: s.token_ttl,
        token_key_file: s.token_key_file.filter(|v| !v.is_empty()),
        high_water_mark: s.high_water_mark,
        login_timeout: s.login_timeout.0,
        max_anonymous_per_address: s.max_anonymous_per_address,
        max_connections_per_address: s.max_connections_per_address,
        login_hold_bytes: s.login_hold_bytes,
        login_hold_total: s.login_hold_total,
        max_pending_hashes: s.max_pending_hashes,
        login_limits: LoginLimits {
            pending_per_address: s.max_pending_hashes_per_address,
            failures_per_account: s.login_failures_per_account,
            failures_per_address: s.login_failures_per_address,
            window: s.login_window,
            cooldown: s.login_cooldown,
            cooldown_max: s.login_cooldown_max,
            registrations_per_address: s.registrations_per_address,
            accounts_per_address: s.accounts_per_address,
            accounts_window: s.accounts_window,
        },
        max_pending_requests: s.max_pending_requests,
        worker_queue: s.worker_queue,
        chat_rate: (s.chat_rate, s.chat_burst),
        request_rate: (s.request_rate, s.request_burst),
        max_friends: s.max_friends,
        max_groups_created: s.max_groups_created,
        max_groups_joined: s.max_groups_joined,
        max_group_size: s.max_group_size,
        max_pending_per_recipient: s.max_pending_per_recipient as u64,
        log_writers: s.log_writers.unwrap_or(default_writers),
        log_batch: s.log_batch,
        log_queue: s.log_queue,
        history_retention: s.history_retention.0,
        journal_dir_flag: s.journal_dir.filter(|v| !v.is_empty()),
        log_fsync: s.log_fsync,
        journal_apply_interval: s.journal_apply_interval,
        argon2_memory_kib: u32::try_from(s.argon2_memory / 1024).unwrap_or(u32::MAX),
        argon2_passes: s.argon2_passes,
        redis: s.redis.filter(|v| !v.is_empty()),
        node_id: s.node_id.filter(|v| !v.is_empty()),
        liveness: s.liveness,
        redis_prefix: s.redis_prefix,
        log_format: s.log_format,
        migrate: !s.no_migrate,
        notes,
    };
    config.check_cluster()?;
    config.check_tls()?;
    Ok(config)
}

/// The store when `--db` is not given: `chat.db` in the data directory
/// (`data` when that is not given either).
pub fn default_db(data_dir: Option<&Path>) -> String {
    let dir = data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR));
    format!("sqlite:{}", dir.join("chat.db").display())
}

/// The data directory when neither `--data-dir` nor `--db` says.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The MySQL password from `--db-password-file` (its first line) or
/// `--db-password`, if either is set.
fn password(s: &Settings) -> Result<Option<String>, ConfigError> {
    if let Some(file) = &s.db_password_file {
        return read_password_file(file).map(Some);
    }
    Ok(s.db_password.clone())
}

fn read_password_file(file: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError(format!(
            "db-password-file {}: cannot read it: {e}",
            file.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// `db` with `password` as the URL's password (percent-encoded), replacing
/// any password it had.
///
/// # Errors
/// A password for a store that is not MySQL, or a URL without a user.
pub fn with_password(db: &str, password: Option<String>) -> Result<String, ConfigError> {
    let Some(password) = password else {
        return Ok(db.to_owned());
    };
    let Some(rest) = db.strip_prefix("mysql://") else {
        return Err(ConfigError(format!(
            "a database password (db-password, db-password-file) is for a mysql:// store, not {db:?}"
        )));
    };
    let host_start = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..host_start].rfind('@') else {
        return Err(ConfigError(
            "a database password needs a user in --db: mysql://USER@host:port/db".into(),
        ));
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    let host = &rest[at + 1..];
    Ok(format!(
        "mysql://{user}:{}@{host}",
        percent_encode(&password)
    ))
}

/// Every byte but the URL's unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
