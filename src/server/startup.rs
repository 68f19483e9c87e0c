//! Start-up errors an operator can act on: the store that does not open,
//! the address that cannot be bound, and the lines that say the server is
//! up (each printed once).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, LogFormat};
use crate::storage::{self, Store, StoreError};

/// Opens the store, or says what to check.
///
/// # Errors
/// The store's error, explained.
pub fn open_store(db: &str, migrate: bool) -> Result<Arc<dyn Store>, String> {
    storage::open_with(db, storage::OpenOptions { migrate })
        .map_err(|e| explain_store_error(db, &e))
}

/// The message for a store that does not open: where, why, what to check.
pub fn explain_store_error(db: &str, e: &StoreError) -> String {
    let shown = crate::config::show::mask(db);
    if let StoreError::Schema(why) = e {
        return format!("cannot use the store {shown}: {why}");
    }
    let StoreError::Mysql(err) = e else {
        return format!(
            "cannot open the store {shown}: {e} (check --db: sqlite:PATH needs a \
             writable directory; see docs/operations.md)"
        );
    };
    let target = mysql_target(db);
    let hint = match err {
        mysql::Error::MySqlError(m) if m.code == 1045 => format!(
            "the user or password was refused ({}): check the user in --db and the \
             password (--db-password-file, CHAT_DB_PASSWORD)",
            m.message
        ),
        mysql::Error::MySqlError(m) if m.code == 1049 => format!(
            "{}: create it (CREATE DATABASE ...) or fix the database name in --db",
            m.message
        ),
        mysql::Error::MySqlError(m) if m.code == 1044 => {
            format!("{}: grant the user access to the database", m.message)
        }
        mysql::Error::MySqlError(m) => format!("the server said: {} ({})", m.message, m.code),
        mysql::Error::DriverError(d) => format!(
            "{d}: check that MySQL/MariaDB runs at {target} and that this host may reach it"
        ),
        mysql::Error::IoError(io) => format!(
            "{io}: check that MySQL/MariaDB runs at {target} and that this host may reach it"
        ),
        other => format!("{other}: check the host, the credentials and the database in --db"),
    };
    format!("cannot open the MySQL store {shown}: {hint}")
}

/// `host:port` of a MySQL URL, for messages.
fn mysql_target(db: &str) -> &str {
    let rest = db.strip_prefix("mysql://").unwrap_or(db);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('/').next().unwrap_or(rest)
}

/// A bind error that names the address and the setting.
pub fn bind_error(setting: &str, addr: SocketAddr, e: io::Error) -> String {
    let why = match e.kind() {
        io::ErrorKind::AddrInUse => {
            "the address is in use: another process listens there (another chat-server?)".to_owned()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied: ports below 1024 need CAP_NET_BIND_SERVICE".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => {
            "the address is not one of this host's: check the IP".to_owned()
        }
        _ => e.to_string(),
    };
    format!("cannot listen on {addr} ({setting}): {why}")
}

/// Prints a start-up line once, to stderr, whatever `RUST_LOG` says
/// (tests, scripts and operators wait for it): as it is with the text log
/// format, as a JSON object like the log's records with the JSON one.
pub fn announce_line(config: &Config, line: &str) {
    match config.log_format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let record = serde_json::json!({
                "ts_ms": ts,
                "level": "INFO",
                "target": "chat::server",
                "msg": line,
            });
            eprintln!("{record}");
        }
    }
}
