//! # chat-bench: a load generator for the chat protocol
//!
//! Measures any server that speaks the chat protocol (ours, or the C++
//! original with `--legacy`): idle connections and memory, register and login
//! rates, one-to-one and group throughput and latency, and a realistic mix,
//! counting every message lost, duplicated or reordered.
//!
//! The generator is plain mio: several worker threads, each with its own
//! `mio::Poll` and its share of the users' connections, edge-triggered and
//! non-blocking, so one client thread can drive thousands of users.
//!
//! ## Module map
//!
//! | module | what it does |
//! |---|---|
//! | [`config`], [`cli`] | what a run is asked to do; the command line |
//! | `scenario` | the phases of each scenario in order, and its report |
//! | `phases` | one worker's part of a phase: connect, requests, hold, traffic, mixed |
//! | `pool`, `worker` | the worker threads, their event loop and cross-thread feedback |
//! | `conn` | one non-blocking connection with its buffers |
//! | [`json_stream`] | splits a byte stream of concatenated JSON values |
//! | [`proto`] | message ids, request text, the payload hidden in each chat text |
//! | [`seq`], [`ledger`] | per-stream sequence accounting: lost, duplicated, reordered |
//! | [`histogram`] | latency percentiles in constant memory |
//! | [`setup`] | account and group names, ids, the `--setup-only` state file |
//! | [`report`] | the table and the JSON line |
//! | [`timeline`] | `--timeline`: the run second by second, as CSV |
//! | [`sys`] | open-file limit, server memory and CPU time from `/proc` |
//! | [`supervisor`] | `soak`: the server process it starts, kills and restarts; memory samples and their verdict |
//!
//! ## Use from a test
//!
//! ```no_run
//! use chat_bench::{run, Config, Scenario};
//! use std::time::Duration;
//!
//! let config = Config {
//!     scenario: Scenario::Chat,
//!     addrs: vec!["127.0.0.1:6000".parse().unwrap()],
//!     users: 10,
//!     messages: Some(100),
//!     ..Config::default()
//! };
//! let report = run(&config).expect("run");
//! assert!(report.failed.is_none());
//! assert_eq!(report.lost, Some(0));
//! assert_eq!(report.reordered, Some(0));
//! ```

pub mod cli;
pub mod config;
mod conn;
pub mod gates;
pub mod histogram;
pub mod json_stream;
pub mod ledger;
mod phases;
mod pool;
pub mod proto;
pub mod report;
pub mod rng;
mod scenario;
pub mod seq;
pub mod setup;
pub mod supervisor;
pub mod sys;
pub mod timeline;
pub mod tls;
mod worker;
mod ws;

pub use config::{Config, Scenario, SoakConfig};
pub use phases::mixed::Mix;
pub use report::{Report, SoakReport};

use std::fmt;

/// Why a run could not be carried out at all. A run that started but did
/// not succeed (for example, logins refused) is a [`Report`] whose `failed`
/// says why.
#[derive(Debug)]
pub enum BenchError {
    /// The configuration is inconsistent, or a state file is unusable.
    Config(String),
    /// The bench itself could not start threads, polls or write a file.
    Io(std::io::Error),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Config(why) => write!(f, "{why}"),
            BenchError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError::Io(e)
    }
}

/// Runs the scenario `config` describes against the server(s) in
/// `config.addrs` and returns what it measured.
///
/// Blocks until the run is over; every phase is bounded by
/// `config.timeout`, so it always returns.
///
/// # Errors
/// [`BenchError`] when the run cannot be carried out at all (bad
/// configuration, unusable state file, no threads).
pub fn run(config: &Config) -> Result<Report, BenchError> {
    scenario::run(config)
}
