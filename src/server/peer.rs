//! The seam between net and the service: [`TcpPeer`], the service's
//! [`Peer`] for one of net's `TcpConnection`s.
//!
//! Everything the service does to a client goes through these methods, so
//! this file is the whole of what the service asks of net: a send that is
//! safe from any thread (`TcpConnection::send_vec`, a write under the
//! connection's output lock), a shutdown after the last send, and a hop
//! back onto the connection's own loop (`EventLoopHandle::queue_in_loop`,
//! muduo's `queueInLoop`). The silence clock is the server's own, in the
//! connection's [`Context`].

use std::sync::Arc;
use std::time::Duration;

use net::{CrossThreadSend, TcpConnectionPtr};

use super::context::Context;
use super::metrics;
use crate::service::{Peer, PeerRef, Task};

/// A [`Peer`] backed by a TCP connection of the server.
pub struct TcpPeer {
    conn: TcpConnectionPtr,
}

impl TcpPeer {
    /// The peer of `conn`, as the service holds it; any thread (the server
    /// makes one in the connection callback, on the connection's loop).
    pub fn new_ref(conn: &TcpConnectionPtr) -> PeerRef {
        // The service's ordering arguments need sends from any thread to
        // leave in the order of the calls, which only the direct write
        // gives (net/README.md, "Thread rules").
        debug_assert_eq!(conn.cross_thread_send(), CrossThreadSend::Direct);
        Arc::new(TcpPeer { conn: conn.clone() })
    }
}

impl Peer for TcpPeer {
    fn id(&self) -> u64 {
        self.conn.id()
    }

    fn name(&self) -> &str {
        self.conn.name()
    }

    fn connected(&self) -> bool {
        self.conn.connected()
    }

    fn send(&self, frame: Vec<u8>) {
        metrics::count_frame(&frame);
        self.conn.send_vec(frame);
    }

    fn send_counted(&self, frame: &[u8]) -> Option<u64> {
        metrics::count_frame(frame);
        self.conn.send_counted(frame)
    }

    fn written(&self) -> u64 {
        self.conn.bytes_written()
    }

    fn when_drained(&self, task: Task) {
        self.conn.when_drained(task);
    }

    fn idle_for(&self) -> Duration {
        // No context: the connection is going down, and its `disconnected`
        // removes it from the online map anyway. Count it as active.
        self.conn
            .context::<Context>()
            .map_or(Duration::ZERO, |cx| cx.idle_for())
    }

    fn close_with(&self, frame: Vec<u8>) {
        metrics::count_frame(&frame);
        self.conn.send_vec(frame);
        if let Some(cx) = self.conn.context::<Context>() {
            // As after a fatal decode error: the rest of the input is
            // ignored, so the replaced session can no longer act.
            cx.start_discarding();
        }
        // After the frame, which is queued or written already.
        self.conn.shutdown();
    }

    fn run_on_own_loop(&self, task: Task) {
        // The loop outlives its connections, so the task runs even when
        // the connection closes first, as the trait promises.
        self.conn.get_loop().queue_in_loop(move |_| task());
    }
}
