//! `chat-bench`: the command-line front of the [`chat_bench`] library.
//!
//! Prints the report as a table on standard output and, with `--json`, one
//! JSON object as the last line (`--output FILE` writes it to a file);
//! the report's warnings (the generator fell behind) also go to standard
//! error.
//! Exit status: 0 when the run succeeded, 1 when it failed or missed a
//! threshold (`--max-p99`, `--min-rate`), 2 for bad arguments.

use chat_bench::cli::{self, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (config, json, gates) = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run {
            config,
            json,
            gates,
        }) => (config, json, gates),
        Err(why) => {
            eprintln!("chat-bench: {why}\nTry `chat-bench --help`.");
            return ExitCode::from(2);
        }
    };
    match chat_bench::run(&config) {
        Ok(report) => {
            print!("{}", report.table());
            if json {
                println!("{}", report.to_json());
            }
            if let Err(e) = gates.write(&report) {
                eprintln!("chat-bench: --output: {e}");
                return ExitCode::FAILURE;
            }
            for warning in &report.warnings {
                eprintln!("chat-bench: warning: {warning}");
            }
            let misses = gates.misses(&report);
            for miss in &misses {
                eprintln!("chat-bench: threshold missed: {miss}");
            }
            if report.failed.is_some() || !misses.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("chat-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
