//! [`KeepAlive`]: TCP keepalive for a connection, muduo's
//! `Socket::setKeepAlive` with the three timers spelled out.
//!
//! A peer that vanishes without a FIN (its host lost power, a NAT dropped
//! the mapping, a cable was pulled) leaves a connection that looks open
//! forever: nothing is sent, so nothing fails. With keepalive on, the
//! kernel sends an empty probe after `idle` without traffic, repeats it
//! every `interval`, and after `probes` unanswered probes resets the
//! connection, which then reads as an error and closes like any other.
//!
//! ```text
//!  last byte        idle            interval   interval   interval
//!  ────┼──────────────────────────────┼──────────┼──────────┼──► reset
//!                                   probe 1    probe 2    probe 3
//! ```
//!
//! The worst case for noticing a dead peer is `idle + interval * probes`
//! (30 s + 3 × 10 s = 1 min with the chat server's defaults).

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// The keepalive timers of one socket (Linux's `TCP_KEEPIDLE`,
/// `TCP_KEEPINTVL` and `TCP_KEEPCNT`). See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Silence before the first probe. The kernel counts in whole seconds
    /// (at least one).
    pub idle: Duration,
    /// Time between unanswered probes (whole seconds, at least one).
    pub interval: Duration,
    /// Unanswered probes before the connection is reset (at least one).
    pub probes: u32,
}

/// Turns keepalive on with `ka`'s timers, or off with `None`.
pub(crate) fn apply(sock: SockRef<'_>, ka: Option<KeepAlive>) -> io::Result<()> {
    let Some(ka) = ka else {
        return sock.set_keepalive(false);
    };
    let params = TcpKeepalive::new()
        .with_time(ka.idle)
        .with_interval(ka.interval)
        .with_retries(ka.probes);
    // Sets SO_KEEPALIVE too.
    sock.set_tcp_keepalive(&params)
}

/// What the kernel has for the socket: `None` when keepalive is off.
pub(crate) fn read(sock: SockRef<'_>) -> io::Result<Option<KeepAlive>> {
    if !sock.keepalive()? {
        return Ok(None);
    }
    Ok(Some(KeepAlive {
        idle: sock.keepalive_time()?,
        interval: sock.keepalive_interval()?,
        probes: sock.keepalive_retries()?,
    }))
}
