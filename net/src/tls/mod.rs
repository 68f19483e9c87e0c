//! TLS on a [`TcpConnection`](crate::TcpConnection): where the port goes
//! beyond muduo, which has none.
//!
//! The layer is rustls's sans-I/O connection, driven by the connection's
//! own loop and senders; no thread, no blocking call is added:
//!
//! ```text
//!   socket ──read_tls──► rustls ──plaintext──► input Buffer ──► message callback
//!   send(data) ──writer()──► rustls ──write_tls──► socket, or the output Buffer
//!                                                    (ciphertext, flushed by the loop)
//! ```
//!
//! * [`TlsAcceptor`] holds the server's `rustls::ServerConfig` behind a
//!   lock that is taken once per accept; [`TlsAcceptor::reload`] swaps it,
//!   so new handshakes see a new certificate while open connections keep
//!   the one they were made with. [`server_config_from_pem`] reads a
//!   certificate chain and key: file I/O, so call it at start or on a
//!   thread of your own, never on a loop.
//! * [`TlsSession`] is one connection's rustls state. It sits in a mutex
//!   beside the output buffer and is always locked *after* it, so the
//!   order of the bytes is the order of the sends, as on a plain
//!   connection.
//!
//! A server is told "TLS with this config" by
//! [`TcpServer::set_tls`](crate::TcpServer::set_tls). A plain connection
//! has no session: its paths test one `Option` and take no extra lock.

mod acceptor;
pub(crate) mod session;

pub use acceptor::{server_config_from_pem, TlsAcceptor};
pub use session::TlsSession;

/// rustls, re-exported so users name the same version as net.
pub use rustls;
