//! The end-to-end suite: real `chat-server` (and `chat-client`, `nginx`,
//! `redis-server`) processes on loopback, one binary for every area.
//!
//! ```text
//! cargo test --workspace                    # everything this machine can run
//! cargo test --test suite -- cluster        # the tests whose name has "cluster"
//! cargo test --test suite -- '[mysql]'      # the ones that need MySQL and nothing else
//! cargo test --test suite -- --ignored      # the measurements
//! ```
//!
//! A test that needs MariaDB, Redis, nginx or tmux runs when the service
//! answers (on its default local address, or where `CHAT_TEST_MYSQL` /
//! `CHAT_TEST_REDIS` say) and is reported ignored, with the reason,
//! otherwise; under CI it fails instead ([`support::require`]). The
//! harness is `libtest_mimic` (`harness = false` in Cargo.toml); the list
//! of tests is each module's `tests()`.

#[macro_use]
mod support;

mod accounts;
mod bench_smoke;
mod chat;
mod client;
mod client_tty;
mod cluster;
mod cluster_batch;
mod cluster_failures;
mod cluster_groups;
mod cluster_load;
mod cluster_redis;
mod cluster_sessions;
mod data_ops;
mod deploy;
mod groups;
mod half_open;
mod hashing;
mod load;
mod log;
mod metrics;
mod operations;
mod prelogin;
mod protocol;
mod quotas;
mod reliability;
mod restart;
mod sessions;
mod storage;
mod tls;
mod tokens;
mod web;
mod web_browser;
mod web_tls;

use std::process::ExitCode;

use libtest_mimic::Arguments;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // libtest reads RUST_TEST_THREADS when --test-threads is not given;
    // libtest_mimic does not, so do it here.
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    // Every area's tests, in the order they start; the ones that run alone
    // (load, cluster_load) wait for their turn.
    let tests: Vec<support::Test> = [
        accounts::tests(),
        chat::tests(),
        groups::tests(),
        half_open::tests(),
        hashing::tests(),
        protocol::tests(),
        prelogin::tests(),
        quotas::tests(),
        reliability::tests(),
        restart::tests(),
        sessions::tests(),
        web::tests(),
        metrics::tests(),
        operations::tests(),
        data_ops::tests(),
        deploy::tests(),
        web_tls::tests(),
        log::tests(),
        storage::tests(),
        tls::tests(),
        tokens::tests(),
        client::tests(),
        client_tty::tests(),
        bench_smoke::tests(),
        load::tests(),
        cluster::tests(),
        cluster_batch::tests(),
        cluster_failures::tests(),
        cluster_load::tests(),
        cluster_redis::tests(),
        cluster_groups::tests(),
        cluster_sessions::tests(),
        web_browser::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let needs: Vec<Vec<support::Need>> = tests.iter().map(|t| t.needs_of().to_vec()).collect();
    let trials: Vec<_> = tests.into_iter().map(support::Test::into_trial).collect();
    if !args.list {
        // What the selected tests need, probed once and said before they run.
        let selected = trials
            .iter()
            .zip(&needs)
            .filter(|(t, _)| !args.is_filtered_out(t) && !args.is_ignored(t))
            .map(|(_, n)| n.as_slice());
        support::require::announce(selected);
    }
    libtest_mimic::run(&args, trials).exit_code()
}
