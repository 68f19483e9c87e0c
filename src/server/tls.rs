//! The TLS listener (`--tls-listen`): the same protocol, the same
//! callbacks, over TLS, beside the plain listener; the acceptor it shares
//! with the web listener over TLS (`--https`, web/); and the reload of
//! their certificate on SIGHUP.
//!
//! ```text
//!  start (main thread)            SIGHUP (signal thread)         I/O threads
//!  read --tls-cert/--tls-key  →   read them again; good: swap  → new handshakes use
//!  TcpServer + set_tls            bad: log, keep the old one      the new certificate
//! ```
//!
//! The files are read at start and on the signal thread only, never on an
//! I/O thread. A connection keeps the certificate it was made with, so a
//! reload drops nothing, and one reload serves both listeners. The TLS
//! chat server has I/O threads of its own (`--threads` of them), running
//! the same callbacks as the plain one.

use std::path::{Path, PathBuf};

use net::{EventLoop, ServerOption, TcpServer, TlsAcceptor};

use super::Error;
use crate::config::Config;

/// The one acceptor of both TLS listeners (`--tls-listen`, `--https`), so
/// one SIGHUP reloads both; `None` when neither is set. Reads the
/// certificate and key.
///
/// # Errors
/// The files cannot be read or do not make a key pair.
pub(super) fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, Error> {
    if config.tls_listen.is_none() && config.https.is_none() {
        return Ok(None);
    }
    let (cert, key) = files(config)?;
    let acceptor =
        TlsAcceptor::from_pem_files(cert, key).map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    Ok(Some(acceptor))
}

/// The TLS chat server, not yet started, on `acceptor`; `None` without
/// `--tls-listen`.
///
/// # Errors
/// The address cannot be bound.
pub(super) fn listener(
    lp: &EventLoop,
    config: &Config,
    acceptor: Option<&TlsAcceptor>,
) -> Result<Option<TcpServer>, Error> {
    let (Some(addr), Some(acceptor)) = (config.tls_listen, acceptor) else {
        return Ok(None);
    };
    let mut server = TcpServer::new(lp, addr, "ChatServerTLS", ServerOption::NoReusePort)?;
    server.set_thread_num(config.threads);
    server.set_tls(acceptor.clone());
    Ok(Some(server))
}

fn files(config: &Config) -> Result<(&Path, &Path), Error> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Ok((c, k)),
        _ => Err("--tls-listen and --https need --tls-cert and --tls-key".into()),
    }
}

/// What SIGHUP does: read the certificate and key again and, when they
/// make a key pair, use them for new handshakes; otherwise log the error
/// and keep the old ones. Runs on the signal thread.
pub(super) fn reloader(acceptor: TlsAcceptor, cert: PathBuf, key: PathBuf) -> impl Fn() + Send {
    move || match net::tls::server_config_from_pem(&cert, &key) {
        Ok(config) => {
            acceptor.reload(config);
            log::info!(
                "SIGHUP: TLS certificate reloaded from {} for new connections",
                cert.display()
            );
        }
        Err(e) => log::error!("SIGHUP: TLS certificate not reloaded, keeping the old one: {e}"),
    }
}
