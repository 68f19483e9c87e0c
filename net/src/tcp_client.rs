//! `TcpClient`: one outgoing connection, with optional reconnect, as muduo's
//! `TcpClient`.
//!
//! A [`Connector`] makes the connection; the client then wraps the socket
//! in a [`TcpConnection`] on its loop, exactly as `TcpServer` does for an
//! accepted one, so the same callbacks and `send` work on both sides. With
//! [`TcpClient::enable_retry`] a lost connection is re-established.
//!
//! The connector's and the connection's callbacks refer back to the client
//! through a `Weak` pointer, so dropping the client frees everything (muduo
//! uses a `weak_ptr` to the connector for the same reason).
//!
//! Threads: every public method may be called from any thread; callbacks
//! run on the client's loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use mio::net::TcpStream;
use parking_lot::Mutex;

use crate::buffer::Buffer;
use crate::callbacks::{CloseCallback, ConnectionCallbacks};
use crate::connector::Connector;
use crate::event_loop::{EventLoop, EventLoopHandle};
use crate::tcp_connection::{CrossThreadSend, TcpConnection, TcpConnectionPtr};
use crate::tcp_server::NEXT_CONN_ID;

struct ClientInner {
    owner: EventLoopHandle,
    name: String,
    connector: Arc<Connector>,
    callbacks: Mutex<ConnectionCallbacks>,
    retry: AtomicBool,
    connect: AtomicBool,
    connection: Mutex<Option<TcpConnectionPtr>>,
}

/// A TCP client. See the [module documentation](self).
pub struct TcpClient {
    inner: Arc<ClientInner>,
}

impl TcpClient {
    /// A client of `server_addr` whose connection lives on `owner`.
    pub fn new(owner: &EventLoopHandle, server_addr: SocketAddr, name: impl Into<String>) -> Self {
        let connector = Connector::new(owner.clone(), server_addr);
        let inner = Arc::new(ClientInner {
            owner: owner.clone(),
            name: name.into(),
            connector: connector.clone(),
            callbacks: Mutex::new(ConnectionCallbacks::default()),
            retry: AtomicBool::new(false),
            connect: AtomicBool::new(false),
            connection: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        connector.set_new_connection_callback(Arc::new(move |lp: &mut EventLoop, stream| {
            if let Some(inner) = weak.upgrade() {
                new_connection(&inner, lp, stream);
            }
        }));
        TcpClient { inner }
    }

    /// The client's name, the prefix of its connections' names.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Reconnect after the connection is lost.
    pub fn enable_retry(&self) {
        self.inner.retry.store(true, Ordering::Release);
    }

    /// The connection went up or down. Before `connect`.
    pub fn set_connection_callback<F>(&self, cb: F)
    where
        F: Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    {
        self.inner.callbacks.lock().connection = Arc::new(cb);
    }

    /// Bytes arrived. Before `connect`.
    pub fn set_message_callback<F>(&self, cb: F)
    where
        F: Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync + 'static,
    {
        self.inner.callbacks.lock().message = Arc::new(cb);
    }

    /// The output buffer drained. Before `connect`.
    pub fn set_write_complete_callback<F>(&self, cb: F)
    where
        F: Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    {
        self.inner.callbacks.lock().write_complete = Some(Arc::new(cb));
    }

    /// Starts connecting.
    pub fn connect(&self) {
        log::debug!(
            "TcpClient {} connecting to {}",
            self.inner.name,
            self.inner.connector.server_addr()
        );
        self.inner.connect.store(true, Ordering::Release);
        self.inner.connector.start();
    }

    /// Shuts the connection down gracefully (after pending output).
    pub fn disconnect(&self) {
        self.inner.connect.store(false, Ordering::Release);
        if let Some(conn) = self.connection() {
            conn.shutdown();
        }
    }

    /// Stops connecting or retrying.
    pub fn stop(&self) {
        self.inner.connect.store(false, Ordering::Release);
        self.inner.connector.stop();
    }

    /// The current connection, if any.
    pub fn connection(&self) -> Option<TcpConnectionPtr> {
        self.inner.connection.lock().clone()
    }

    /// The loop the connection lives on.
    pub fn get_loop(&self) -> &EventLoopHandle {
        &self.inner.owner
    }
}

impl Drop for TcpClient {
    /// Stops the connector and closes the connection.
    fn drop(&mut self) {
        self.inner.connect.store(false, Ordering::Release);
        self.inner.connector.stop();
        if let Some(conn) = self.inner.connection.lock().take() {
            conn.force_close();
        }
    }
}

fn new_connection(inner: &Arc<ClientInner>, lp: &mut EventLoop, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else {
        return; // the peer vanished between connect and now
    };
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let conn = TcpConnection::new(
        inner.owner.clone(),
        id,
        format!("{}:{}#{}", inner.name, peer, id),
        stream,
        peer,
        inner.callbacks.lock().clone(),
        CrossThreadSend::Direct,
        remove_connection_callback(Arc::downgrade(inner)),
        None,
    );
    *inner.connection.lock() = Some(conn.clone());
    conn.connect_established(lp);
}

/// Forgets the closed connection and, with retry on, reconnects.
fn remove_connection_callback(weak: Weak<ClientInner>) -> CloseCallback {
    Arc::new(move |conn: &TcpConnectionPtr| {
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut current = inner.connection.lock();
            if current.as_ref().map(|c| c.id()) == Some(conn.id()) {
                *current = None;
            }
        }
        if inner.retry.load(Ordering::Acquire) && inner.connect.load(Ordering::Acquire) {
            log::info!(
                "TcpClient {} reconnecting to {}",
                inner.name,
                inner.connector.server_addr()
            );
            let connector = inner.connector.clone();
            inner.owner.queue_in_loop(move |lp| connector.restart(lp));
        }
    })
}
