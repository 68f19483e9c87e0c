//! The user's callbacks, as muduo's `Callbacks.h`.
//!
//! muduo copies a `std::function` into every connection. Here each callback
//! is an `Arc<dyn Fn>` shared by all connections of a server and by all its
//! I/O threads, so every callback must be `Send + Sync`. A callback runs on
//! the loop thread of the connection it is given.

use std::sync::Arc;
use std::time::Instant;

use crate::buffer::Buffer;
use crate::tcp_connection::TcpConnectionPtr;

/// A connection went up or down; check [`TcpConnection::connected`](crate::TcpConnection::connected).
pub type ConnectionCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;
/// Bytes arrived. Consume what forms whole messages from the buffer and
/// leave the rest for the next call.
pub type MessageCallback = Arc<dyn Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync>;
/// The output buffer has been fully handed to the kernel.
pub type WriteCompleteCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;
/// The output buffer grew past the high-water mark; gets its size.
pub type HighWaterMarkCallback = Arc<dyn Fn(&TcpConnectionPtr, usize) + Send + Sync>;
/// Internal: tells the owner (server or client) to forget the connection.
pub(crate) type CloseCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;

/// muduo's `defaultConnectionCallback`: logs the transition.
pub fn default_connection_callback() -> ConnectionCallback {
    Arc::new(|conn: &TcpConnectionPtr| {
        log::trace!(
            "{} -> {} is {}",
            conn.local_addr(),
            conn.peer_addr(),
            if conn.connected() { "UP" } else { "DOWN" }
        );
    })
}

/// muduo's `defaultMessageCallback`: discards the bytes.
pub fn default_message_callback() -> MessageCallback {
    Arc::new(|_conn: &TcpConnectionPtr, buf: &mut Buffer, _t: Instant| buf.retrieve_all())
}

/// The callbacks every connection of one server (or client) shares.
#[derive(Clone)]
pub(crate) struct ConnectionCallbacks {
    pub(crate) connection: ConnectionCallback,
    pub(crate) message: MessageCallback,
    pub(crate) write_complete: Option<WriteCompleteCallback>,
    pub(crate) high_water_mark: Option<(HighWaterMarkCallback, usize)>,
}

impl Default for ConnectionCallbacks {
    fn default() -> Self {
        ConnectionCallbacks {
            connection: default_connection_callback(),
            message: default_message_callback(),
            write_complete: None,
            high_water_mark: None,
        }
    }
}
