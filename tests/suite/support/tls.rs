//! TLS material made at test time (rcgen; no key is committed): a test CA,
//! certificates it issues for "localhost" (valid or expired), PEM files
//! for `--tls-cert`/`--tls-key`/`--ca`, and a rustls client configuration
//! that trusts the CA.

use std::path::PathBuf;
use std::sync::Arc;

use net::tls::rustls::{self, crypto::ring, ClientConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use super::unique;

/// A certificate authority of the test's own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new CA.
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "chat test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// A certificate for "localhost" and 127.0.0.1 and its key, as PEM;
    /// `expired` makes one that ran out in 2021.
    pub fn issue(&self, expired: bool) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// The CA's certificate, PEM (for `chat-client --ca`).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("CA root");
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A directory of PEM files, removed on drop.
pub struct TlsDir {
    pub dir: PathBuf,
}

impl TlsDir {
    /// A new, empty directory.
    pub fn new() -> TlsDir {
        let dir = std::env::temp_dir().join(unique("chat-tls"));
        std::fs::create_dir_all(&dir).expect("TLS dir");
        TlsDir { dir }
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    }

    /// Writes a certificate and key as `cert.pem` and `key.pem`; returns
    /// the two paths as strings, for the server's flags.
    pub fn pair(&self, (cert, key): &(String, String)) -> (String, String) {
        let c = self.write("cert.pem", cert);
        let k = self.write("key.pem", key);
        (c.display().to_string(), k.display().to_string())
    }
}

impl Drop for TlsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
