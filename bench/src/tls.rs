//! `--tls`: the client side of TLS on the workers' non-blocking
//! connections (rustls's sans-I/O `ClientConnection`, one per [`Conn`]).
//!
//! Nothing blocks and no thread is added: a connection queues plaintext
//! into rustls, [`Conn::flush`] moves the ciphertext rustls has (the
//! handshake first) into its output buffer and writes it, and a read feeds
//! ciphertext to rustls and the plaintext to the JSON reader. The worker
//! already flushes after every read, which sends handshake replies.
//!
//! Trust: `--ca FILE` (PEM), else the operating system's store. The name
//! checked is `--server-name`, else the address's IP (which the
//! certificate must then carry).
//!
//! [`Conn`]: crate::conn::Conn
//! [`Conn::flush`]: crate::conn::Conn::flush

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// What every TLS connection of a run uses.
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Tls {
    /// Trusts `ca` (PEM) or the system's store; checks `server_name`, or
    /// `addr`'s IP.
    ///
    /// # Errors
    /// An unreadable CA file, no trusted certificate, a bad name.
    pub fn new(ca: Option<&Path>, server_name: Option<&str>, addr: SocketAddr) -> io::Result<Tls> {
        let roots = match ca {
            Some(path) => roots_from_file(path)?,
            None => system_roots()?,
        };
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = server_name.map_or_else(|| addr.ip().to_string(), str::to_owned);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| invalid(format!("server name {host:?}: {e}")))?;
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }

    /// A client session for one new connection.
    ///
    /// # Errors
    /// rustls refusing the configuration.
    pub fn session(&self) -> io::Result<ClientConnection> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        // Requests queued during the handshake wait in rustls.
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

fn roots_from_file(path: &Path) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let bad = |e: String| invalid(format!("--ca {}: {e}", path.display()));
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(format!("{e:?}")))? {
        let cert = cert.map_err(|e| bad(format!("{e:?}")))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate".into()));
    }
    Ok(roots)
}

fn system_roots() -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err(invalid(
            "no trusted certificates in the system store; give --ca FILE".into(),
        ));
    }
    Ok(roots)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
