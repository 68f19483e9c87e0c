//! `chat-server`: the chat daemon.
//!
//! ```text
//! cargo run --release --bin chat-server                   # 127.0.0.1:6000, sqlite:data/chat.db
//! chat-server --listen 0.0.0.0:6000 --db mysql://chat:secret@127.0.0.1:3306/chat
//! chat-server --help                                      # every setting, its env var, its default
//! ```
//!
//! The work is done by [`chat::server::run`]; this file only reads the
//! configuration and sets up logging (`RUST_LOG`, default `info`).

use std::process::ExitCode;

use chat::config::{usage, Command, Config};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::load(&args, |name| std::env::var(name).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("chat-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(2);
        }
    };
    log::debug!("configuration: {config:?}");
    match chat::server::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e}");
            ExitCode::FAILURE
        }
    }
}
