//! The chat port's callbacks: `net::TcpServer` → codec → [`Service`].
//!
//! The same three callbacks serve the plain listener (`--listen`) and the
//! TLS one (`--tls-listen`): the connection callback admits a connection
//! ([`Admission`], shared with the web listener's `/ws`) and gives it its
//! [`Context`]; the message callback decodes every complete request and
//! hands it to the service; the high-water mark drops a slow reader. All
//! three run on the connection's I/O thread.

use std::sync::Arc;
use std::time::Instant;

use net::{Buffer, EventLoop, KeepAlive, TcpConnectionPtr, TcpServer};

use super::admission::Admission;
use super::context::Context;
use super::idle;
use super::metrics::{self, Transport};
use super::peer::TcpPeer;
use crate::config::Config;
use crate::protocol::codec::Flat;
use crate::protocol::{chat_frame, encode, reply};
use crate::service::{Incoming, Service};

/// The chat port's callbacks, on the plain listener and on the TLS one;
/// `admission` is shared by every listener (the web one's too).
pub(super) fn install_callbacks(
    server: &mut TcpServer,
    service: &Arc<Service>,
    config: &Config,
    admission: &Admission,
) {
    set_connection_bounds(server, config);
    let sweep_rules = admission.rules.clone();
    server.set_thread_init_callback(move |lp: &mut EventLoop| {
        idle::install(lp, sweep_rules.clone());
    });

    let svc = service.clone();
    let admits = admission.clone();
    server.set_connection_callback(move |conn: &TcpConnectionPtr| {
        if conn.connected() {
            metrics::count_connection(Transport::Tcp, 1);
            connection_up(conn, &admits);
        } else {
            log::debug!("{} down", conn.name());
            metrics::count_connection(Transport::Tcp, -1);
            idle::untrack(conn);
            if let Some(cx) = conn.context::<Context>() {
                svc.disconnected(&cx.peer, &cx.session);
            }
            // Breaks the cycle connection → context → peer → connection;
            // gives back the address slot with the context.
            conn.clear_context();
        }
    });

    let svc = service.clone();
    let max_message = config.max_message;
    server.set_message_callback(
        move |conn: &TcpConnectionPtr, buf: &mut Buffer, received: Instant| {
            on_message(&svc, conn, buf, max_message, received);
        },
    );
}

/// What every listener's connections share, the web listener's too: TCP
/// keepalive (peers gone without a FIN are reset by the kernel, then close
/// as any connection does and leave the online map) and the high-water
/// mark that drops a slow reader.
pub(super) fn set_connection_bounds(server: &mut TcpServer, config: &Config) {
    if let Some(ka) = config.keepalive {
        server.set_keep_alive(KeepAlive {
            idle: ka.idle,
            interval: ka.interval,
            probes: ka.probes,
        });
    }
    server.set_high_water_mark_callback(
        |conn: &TcpConnectionPtr, queued: usize| {
            log::warn!(
                "{}: {queued} bytes unsent (slow reader), closing",
                conn.name()
            );
            conn.force_close();
        },
        config.high_water_mark,
    );
}

/// A new connection: its context ([`Admission::admit`]); one refused is
/// told why, shut down, and closed by a sweep. Its loop thread.
fn connection_up(conn: &TcpConnectionPtr, admission: &Admission) {
    log::debug!("{} up from {}", conn.name(), conn.peer_addr());
    if let Err(e) = conn.set_tcp_no_delay(true) {
        log::debug!("{}: TCP_NODELAY: {e}", conn.name());
    }
    let ip = conn.peer_addr().ip();
    let (cx, refusal) = admission.admit(TcpPeer::new_ref(conn), ip);
    conn.set_context(cx.clone());
    idle::track(conn);
    if let Some((errno, what, why)) = refusal {
        log::info!("{}: {what} ({ip}), refusing", conn.name());
        conn.send_vec(encode(&reply::failure(None, errno, why)));
        cx.close_by_sweep();
        conn.shutdown();
    }
}

/// Decodes every complete message in `buf` and hands it to the service.
/// A message with a number out of range gets an error reply and is
/// skipped. Bytes that can never be a message get an error reply; then
/// the connection is shut down and the rest of its input ignored.
fn on_message(
    svc: &Arc<Service>,
    conn: &TcpConnectionPtr,
    buf: &mut Buffer,
    max_message: usize,
    received: Instant,
) {
    // The loop's wake-up time, already read: the delivery latency's start.
    let received = (!metrics::off()).then_some(received);
    let Some(cx) = conn.context::<Context>() else {
        buf.retrieve_all();
        return;
    };
    if cx.discarding() {
        buf.retrieve_all();
        return;
    }
    cx.touch();
    // Every complete object, in order; a partial one waits for more bytes.
    loop {
        // Again before each object: a takeover may close the connection
        // (from a worker) while this read is being handled.
        if cx.discarding() {
            buf.retrieve_all();
            return;
        }
        // The lock is the connection's own, held for one frame's search
        // (and the fast path's read of it, when that finds it). A
        // chat in the common form takes the fast path (no `Map`), read
        // straight from the buffer, mostly without a scan (`codec::Flat`);
        // every other object, and every error, the general one.
        let scanned = cx
            .decoder
            .lock()
            .next_frame_or(buf.peek(), max_message, chat_frame::read);
        let decoded = scanned.and_then(|found| {
            let Some((frame, flat)) = found else {
                return Ok(None);
            };
            let chat = match flat {
                Flat::Read(chat) => Some(chat),
                Flat::Refused => None,
                Flat::NotTried => chat_frame::read(frame.bytes(buf.peek())),
            };
            match chat {
                Some(chat) => {
                    metrics::count_msg_id(chat.request().msg_id());
                    svc.handle_incoming(&cx.peer, &cx.session, Incoming::Chat(&chat), received);
                    Ok(Some(frame.consumed))
                }
                None => frame.parse(buf.peek()).map(|(obj, consumed)| {
                    metrics::count_request(&obj);
                    svc.handle_at(&cx.peer, &cx.session, obj, received);
                    Some(consumed)
                }),
            }
        });
        match decoded {
            Ok(Some(consumed)) => buf.retrieve(consumed),
            Ok(None) => return,
            Err(e) => {
                // One bad message (a number out of range): refuse it, go on.
                if let Some(consumed) = e.skip() {
                    log::debug!("{}: {e}", conn.name());
                    buf.retrieve(consumed);
                    cx.peer.send(encode(&e.reply()));
                    continue;
                }
                log::info!("{}: {e}; closing", conn.name());
                cx.peer.send(encode(&e.reply()));
                cx.start_discarding();
                buf.retrieve_all();
                conn.shutdown();
                return;
            }
        }
    }
}
