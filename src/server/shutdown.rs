//! Graceful shutdown on SIGINT and SIGTERM.
//!
//! A signal handler may do almost nothing safely, so, as mini-redis does with
//! its shutdown channel, the signal only *wakes* something: a thread (from
//! `signal-hook`'s iterator) asks the main loop to quit. [`super::run`] then
//! carries out the steps, in this order:
//!
//! 1. stop accepting (the listening socket closes);
//! 2. close every connection and join the I/O threads: nothing new reaches
//!    the workers after this;
//! 3. in cluster mode, wait until the workers have run what is queued
//!    (the closed sessions' cursor writes, each followed by its claim's
//!    release), then leave the cluster: the publisher routes what is
//!    queued (or stores it offline through the workers), releases this
//!    node's claims and deletes its alive key;
//! 4. let the workers finish every queued job, including the jobs those
//!    jobs submit (offline messages, "mark offline" after each disconnect);
//! 5. mark the users still in the online map offline;
//! 6. return, and the process exits with status 0.
//!
//! A second signal during this exits at once with status 130.
//!
//! With a TLS listener the same thread also answers SIGHUP: it re-reads
//! the certificate and key (file I/O, kept off the I/O threads) and swaps
//! them in for new handshakes (see `super::tls`).

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use net::EventLoopHandle;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// The signal thread; [`SignalGuard::close`] ends it.
pub struct SignalGuard {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalGuard {
    /// Stops listening for signals and joins the thread.
    pub fn close(mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// On the first SIGINT or SIGTERM calls `first` (which turns the web
/// listener's `/readyz` to 503) and quits `main_loop` `grace` later
/// (`--drain-grace`: a load balancer sees the 503 and stops sending new
/// clients while the listeners still accept); exits the process on the
/// second. With `reload`, SIGHUP runs it (on the signal thread) and the
/// server goes on; without, SIGHUP keeps its default action.
///
/// # Errors
/// If the signal handlers cannot be installed or the thread cannot start.
pub fn on_signals<R>(
    main_loop: EventLoopHandle,
    grace: Duration,
    first: impl Fn() + Send + 'static,
    reload: Option<R>,
) -> io::Result<SignalGuard>
where
    R: Fn() + Send + 'static,
{
    let mut signals = if reload.is_some() {
        Signals::new([SIGINT, SIGTERM, SIGHUP])?
    } else {
        Signals::new([SIGINT, SIGTERM])?
    };
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("chat-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    if let Some(reload) = &reload {
                        reload();
                    }
                    continue;
                }
                seen += 1;
                if seen == 1 {
                    log::info!("signal {signal}: shutting down (again to exit at once)");
                    first();
                    if grace.is_zero() {
                        main_loop.quit();
                    } else {
                        main_loop.run_after(grace, |lp| lp.quit());
                    }
                } else {
                    log::warn!("signal {signal} again: exiting now");
                    std::process::exit(130);
                }
            }
        })?;
    Ok(SignalGuard {
        handle,
        thread: Some(thread),
    })
}
