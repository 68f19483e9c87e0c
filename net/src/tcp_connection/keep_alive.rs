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
//!
//! Keepalive probes are only sent while nothing is in flight. A dead peer
//! that was *sent* data is left to the retransmission timer instead, which
//! gives up only after about 15 minutes on Linux. So on Linux the same
//! bound is also set as `TCP_USER_TIMEOUT`: data left unacknowledged that
//! long resets the connection too. This includes a peer that is alive but
//! has stopped reading: once its receive window has stayed closed that
//! long, the kernel gives up on it as well (a reader that slow would
//! reach a server's high-water mark soon anyway).

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
        #[cfg(any(target_os = "linux", target_os = "android"))]
        sock.set_tcp_user_timeout(None)?;
        return sock.set_keepalive(false);
    };
    let params = TcpKeepalive::new()
        .with_time(ka.idle)
        .with_interval(ka.interval)
        .with_retries(ka.probes);
    // Sets SO_KEEPALIVE too.
    sock.set_tcp_keepalive(&params)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    sock.set_tcp_user_timeout(Some(ka.give_up_after()))?;
    Ok(())
}

impl KeepAlive {
    /// How long a dead peer can go unnoticed: `idle + interval * probes`.
    /// On Linux also the longest data may stay unacknowledged
    /// (`TCP_USER_TIMEOUT`, see the [module docs](self)).
    pub fn give_up_after(&self) -> Duration {
        self.idle
            .saturating_add(self.interval.saturating_mul(self.probes))
    }
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

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn socket() -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        TcpStream::connect(listener.local_addr().unwrap()).unwrap()
    }

    #[test]
    fn on_sets_the_three_timers_and_off_clears_them() {
        let s = socket();
        let ka = KeepAlive {
            idle: Duration::from_secs(5),
            interval: Duration::from_secs(2),
            probes: 3,
        };
        apply(SockRef::from(&s), Some(ka)).unwrap();
        assert_eq!(read(SockRef::from(&s)).unwrap(), Some(ka));
        apply(SockRef::from(&s), None).unwrap();
        assert_eq!(read(SockRef::from(&s)).unwrap(), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn unacknowledged_data_gives_up_when_the_probes_would() {
        let s = socket();
        let ka = KeepAlive {
            idle: Duration::from_secs(5),
            interval: Duration::from_secs(2),
            probes: 3,
        };
        assert_eq!(ka.give_up_after(), Duration::from_secs(11));
        apply(SockRef::from(&s), Some(ka)).unwrap();
        let timeout = SockRef::from(&s).tcp_user_timeout().unwrap();
        assert_eq!(timeout, Some(Duration::from_secs(11)));
        apply(SockRef::from(&s), None).unwrap();
        assert_eq!(SockRef::from(&s).tcp_user_timeout().unwrap(), None);
    }
}
