//! `chat-server`: the chat daemon.
//!
//! ```text
//! cargo run --release --bin chat-server                   # 127.0.0.1:6000, sqlite:data/chat.db
//! chat-server --listen 0.0.0.0:6000 --db mysql://chat@127.0.0.1:3306/chat --db-password-file /run/secrets/db
//! chat-server --help                                      # every setting, its env var, its default
//! chat-server --config /etc/chat/chat.toml --check-config # validate, print the effective settings
//! chat-server --db sqlite:/var/lib/chat/chat.db migrate-legacy --from mysql://root@127.0.0.1:3306/chat
//! ```
//!
//! The work is done by [`chat::server::run`]; this file only reads the
//! configuration and sets up logging (`RUST_LOG`, default `info`;
//! `--log-format text|json`).
//!
//! Exit status: 0 after a clean stop (or a valid `--check-config`), 1 when
//! the server failed (or `--check-config` found an error), 2 for any other
//! configuration error.

use std::io::Write;
use std::process::ExitCode;

use chat::config::{usage, Command, Config, LogFormat};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let checking = args.iter().any(|a| a == "--check-config");
    let config = match Config::load(&args, |name| std::env::var(name).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Check(_, text)) => {
            // A closed stdout (`| head`) is no error of the configuration.
            let _ = writeln!(std::io::stdout(), "{text}# the configuration is valid");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Backup(config, to)) => return backup(&config, &to),
        Ok(Command::MigrateLegacy(config, from)) => return migrate_legacy(&config, &from),
        Ok(Command::Help) => {
            let _ = write!(std::io::stdout(), "{}", usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("chat-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(if checking { 1 } else { 2 });
        }
    };
    init_logging(config.log_format);
    for note in &config.notes {
        log::warn!("{note}");
    }
    log::debug!("configuration: {config:?}");
    match chat::server::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `chat-server backup --to FILE`.
fn backup(config: &Config, to: &std::path::Path) -> ExitCode {
    let journal = config.journal_dir();
    match chat::storage::backup::sqlite_backup(&config.db, journal.as_deref(), to) {
        Ok(copied) => {
            println!(
                "chat-server: backed up {} pages to {}, and {} messages from the journal",
                copied.pages,
                copied.to.display(),
                copied.journaled
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-server: backup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `chat-server migrate-legacy --from URL`: the C++ original's database
/// into the store.
fn migrate_legacy(config: &Config, from: &str) -> ExitCode {
    let options = chat::storage::OpenOptions {
        migrate: config.migrate,
    };
    match chat::storage::legacy::migrate_legacy(from, &config.db, options) {
        Ok(imported) => {
            println!("chat-server: imported {imported}");
            println!(
                "chat-server: each password is hashed at its user's first login; \
                 keep the original's database out of reach meanwhile"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-server: migrate-legacy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// env_logger at `RUST_LOG` (default `info`), as text lines or one JSON
/// object a line (`ts_ms`: milliseconds since the epoch, `level`,
/// `target`, `msg`).
fn init_logging(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let line = serde_json::json!({
                "ts_ms": ts,
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}
