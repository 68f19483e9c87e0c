//! [`Admission`]: the slots a new connection takes, whichever listener
//! accepted it (the chat port or the web listener's `/ws`), so that the
//! per-address limits count a client's connections on both.

use std::net::IpAddr;
use std::sync::Arc;

use super::context::Context;
use super::idle;
use super::prelogin::AddressSlots;
use crate::protocol::errno;
use crate::service::PeerRef;

/// What admits a connection: the sweep's rules (with the anonymous slots)
/// and the connections' slots per address; one for both listeners. The
/// web listeners' connections that still speak plain HTTP (pages,
/// `/metrics`, a WebSocket before its upgrade) have slots of their own,
/// as many per address as `--max-connections-per-address`: a WebSocket
/// gives its HTTP slot back when it upgrades and takes a connection slot,
/// so the browser client is counted as the TCP client is, and a client
/// that opens HTTP connections by the thousand cannot use up the
/// process's descriptors.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(super) rules: Arc<idle::Rules>,
    pub(super) connections: Arc<AddressSlots>,
    http: Arc<AddressSlots>,
}

/// A refusal at accept: the errno and the log and reply texts.
pub(super) type Refusal = (i64, &'static str, &'static str);

impl Admission {
    /// The listeners' one admission, from the per-address limits and the
    /// idle and login timeouts of `config`.
    pub(super) fn new(config: &crate::config::Config) -> Admission {
        Admission {
            rules: Arc::new(idle::Rules {
                idle_timeout: config.idle_timeout,
                login_timeout: config.login_timeout,
                slots: AddressSlots::new(config.max_anonymous_per_address),
            }),
            connections: AddressSlots::new(config.max_connections_per_address),
            http: AddressSlots::new(config.max_connections_per_address),
        }
    }

    /// A slot among the plain-HTTP connections of `ip`, or `None` when its
    /// address has them all. Any thread.
    pub(super) fn admit_http(&self, ip: IpAddr) -> Option<super::prelogin::Slot> {
        self.http.try_take(ip)
    }

    /// The context of a new connection from `ip` served by `peer`, with a
    /// slot among its address's connections and one among its anonymous
    /// connections, and the refusal to send when one is missing: over the
    /// address's connections (`--max-connections-per-address`) errno 13,
    /// `QUOTA`; over its anonymous connections errno 12. Any thread.
    pub(super) fn admit(&self, peer: PeerRef, ip: IpAddr) -> (Arc<Context>, Option<Refusal>) {
        let connection_slot = self.connections.try_take(ip);
        // Over the connections' quota: no anonymous slot is taken either.
        let slot = connection_slot
            .as_ref()
            .and_then(|_| self.rules.slots.try_take(ip));
        let refusal = match (&connection_slot, &slot) {
            (None, _) => Some((
                errno::QUOTA,
                "too many connections from your address",
                "too many connections from your address; close one first",
            )),
            (Some(_), None) => Some((
                errno::TOO_MANY,
                "too many connections not logged in from your address",
                "too many connections not logged in from your address; try again later",
            )),
            _ => None,
        };
        let cx = Arc::new(Context::new(peer, ip, slot, connection_slot));
        (cx, refusal)
    }
}
