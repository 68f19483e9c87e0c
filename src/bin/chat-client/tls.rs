//! `--tls`: the connection inside TLS (rustls), still one blocking socket
//! read by the reader thread and written by the input thread.
//!
//! ```text
//!   input thread ── send: lock, encrypt, write ──▶ socket
//!   reader thread ◀─ read ciphertext (no lock) ◀── socket;
//!                    then lock, decrypt, answer (alerts, key updates)
//! ```
//!
//! rustls's connection is one object for both directions, so it sits in a
//! mutex; the reader waits on the socket *without* it and takes it only to
//! decrypt what arrived, so a reader blocked on a quiet server never
//! blocks a send.
//!
//! Trust: `--ca FILE` (PEM) trusts that CA (or self-signed certificate)
//! only; without it the operating system's store is used, through
//! rustls-native-certs: that is where an administrator adds a company CA,
//! and it is updated with the system, where a compiled-in list (webpki-roots)
//! would be frozen at build time. The name checked is `--server-name`, else
//! the host part of the address. One transport per process: [`install`]
//! sets it at start and every (re)connect uses it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use net::tls::rustls::{
    self, crypto::ring, pki_types::pem::PemObject, pki_types::CertificateDer,
    pki_types::ServerName, ClientConfig, ClientConnection,
};
use parking_lot::Mutex;

/// What every TLS connection of this process uses.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

static TRANSPORT: OnceLock<TlsClient> = OnceLock::new();

/// Makes every connection of the process TLS with `client`. Once, at start.
pub fn install(client: TlsClient) {
    let _ = TRANSPORT.set(client);
}

/// The TLS settings, when [`install`]ed.
pub fn current() -> Option<&'static TlsClient> {
    TRANSPORT.get()
}

impl TlsClient {
    /// Trusts `ca` (a PEM file of one or more certificates), or the system
    /// store without it, and checks `server_name`, or the host of `addr`.
    ///
    /// # Errors
    /// An unreadable CA file, no usable root at all, or a bad name.
    pub fn new(ca: Option<&Path>, server_name: Option<&str>, addr: &str) -> io::Result<TlsClient> {
        let roots = match ca {
            Some(path) => roots_from_file(path)?,
            None => system_roots()?,
        };
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = server_name.map_or_else(|| host_of(addr), str::to_owned);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| invalid(format!("server name {host:?}: {e}")))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake on the connected `sock`: a refused certificate is
    /// this call's error.
    ///
    /// # Errors
    /// The handshake's error (`InvalidData` for a certificate).
    pub fn handshake(&self, sock: &mut TcpStream) -> io::Result<Arc<TlsChannel>> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(sock)?;
        }
        Ok(Arc::new(TlsChannel {
            conn: Mutex::new(conn),
        }))
    }
}

/// `HOST` of `HOST:PORT` (`[::1]:6000` gives `::1`).
fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

fn roots_from_file(path: &Path) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("--ca {}: {e:?}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| invalid(format!("--ca {}: {e:?}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("--ca {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!("--ca {}: no certificate", path.display())));
    }
    Ok(roots)
}

fn system_roots() -> io::Result<rustls::RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(invalid(format!(
            "no trusted certificates in the system store ({} errors); give --ca FILE",
            found.errors.len()
        )));
    }
    Ok(roots)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One connection's TLS state, shared by the input and the reader thread.
#[derive(Debug)]
pub struct TlsChannel {
    conn: Mutex<ClientConnection>,
}

impl TlsChannel {
    /// Encrypts `data` and writes it (blocking, under the lock).
    ///
    /// # Errors
    /// The socket's write error.
    pub fn send(&self, mut sock: &TcpStream, data: &[u8]) -> io::Result<()> {
        let mut conn = self.conn.lock();
        conn.writer().write_all(data)?;
        while conn.wants_write() {
            conn.write_tls(&mut sock)?;
        }
        Ok(())
    }

    /// Sends `close_notify` (best effort).
    pub fn close(&self, mut sock: &TcpStream) {
        let mut conn = self.conn.lock();
        conn.send_close_notify();
        while conn.wants_write() {
            if conn.write_tls(&mut sock).is_err() {
                break;
            }
        }
    }

    /// Blocks for the next ciphertext, decrypts it and appends the
    /// plaintext to `out`. `Ok(0)` with nothing appended: the server
    /// closed (its `close_notify`, or the TCP end of stream).
    ///
    /// # Errors
    /// The socket's error, or a TLS error (a bad record).
    pub fn read_some(&self, mut sock: &TcpStream, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = sock.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            let mut conn = self.conn.lock();
            let mut rest = &chunk[..n];
            let mut got = 0;
            let mut closed = false;
            while !rest.is_empty() {
                conn.read_tls(&mut rest)?;
                let state = conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                got += drain_plaintext(&mut conn, out, state.plaintext_bytes_to_read())?;
                closed |= state.peer_has_closed();
            }
            while conn.wants_write() {
                conn.write_tls(&mut sock)?;
            }
            if got > 0 || closed {
                return Ok(got);
            }
        }
    }
}

fn drain_plaintext(
    conn: &mut ClientConnection,
    out: &mut Vec<u8>,
    len: usize,
) -> io::Result<usize> {
    let start = out.len();
    out.resize(start + len, 0);
    let mut filled = 0;
    while filled < len {
        match conn.reader().read(&mut out[start + filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    out.truncate(start + filled);
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_an_address() {
        assert_eq!(host_of("localhost:6443"), "localhost");
        assert_eq!(host_of("[::1]:6443"), "::1");
        assert_eq!(host_of("10.0.0.1:1"), "10.0.0.1");
    }
}
