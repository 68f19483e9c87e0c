//! `TlsAcceptor`: the server's TLS configuration, shared by every accept
//! and reloadable while the server runs.
//!
//! # Threads
//! A `TlsAcceptor` is a cheap clone of one shared holder. The server's
//! accept callback (main loop) reads the current config under a short lock
//! and clones its `Arc`; [`TlsAcceptor::reload`] may be called from any
//! thread. Loading PEM files ([`server_config_from_pem`]) reads the disk:
//! never do it on a loop thread.

use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::TlsSession;

/// The server side's TLS settings. See the [module documentation](self).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<Mutex<Arc<ServerConfig>>>,
}

impl TlsAcceptor {
    /// An acceptor that hands out sessions made with `config`.
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config: Arc::new(Mutex::new(config)),
        }
    }

    /// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private
    /// key) into a new acceptor. Reads files: not on a loop thread.
    ///
    /// # Errors
    /// See [`server_config_from_pem`].
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::new(server_config_from_pem(cert, key)?))
    }

    /// Replaces the configuration for handshakes that start from now on;
    /// open connections keep theirs. Any thread.
    pub fn reload(&self, config: Arc<ServerConfig>) {
        *self.config.lock() = config;
    }

    /// The configuration new handshakes use; any thread.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.lock().clone()
    }

    /// A server session for one accepted connection. No I/O, no crypto
    /// beyond setting up state: safe on a loop thread.
    ///
    /// # Errors
    /// rustls refusing the configuration.
    pub fn new_session(&self) -> io::Result<TlsSession> {
        TlsSession::server(self.config())
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, no
/// client certificates) from a PEM certificate chain and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1). Reads both files: call it at start or on a
/// thread of your own.
///
/// # Errors
/// `NotFound` and friends for the files, `InvalidData` for a file with no
/// certificate or key, or a key that does not match the certificate.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(invalid(format!("{}: no certificate", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| invalid(format!("{} / {}: {e}", cert.display(), key.display())))?;
    Ok(Arc::new(config))
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> io::Error {
    match e {
        rustls::pki_types::pem::Error::Io(e) => {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        }
        other => invalid(format!("{}: {other:?}", path.display())),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
