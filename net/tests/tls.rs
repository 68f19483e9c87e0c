//! TLS on TcpServer/TcpConnection over real loopback sockets, with
//! certificates made at test time (rcgen) and a blocking rustls client.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use common::*;
use net::tls::rustls::{self, crypto::ring, pki_types, ClientConfig, ServerConfig};
use net::TlsAcceptor;
use parking_lot::Mutex;
use pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

type Client = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A self-signed certificate for "localhost" and its key.
struct Identity {
    cert: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    key: Vec<u8>,
}

fn identity() -> Identity {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Identity {
        cert: ck.cert.der().clone(),
        cert_pem: ck.cert.pem(),
        key_pem: ck.key_pair.serialize_pem(),
        key: ck.key_pair.serialize_der(),
    }
}

fn server_config(id: &Identity) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone()));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![id.cert.clone()], key)
        .unwrap();
    Arc::new(config)
}

fn client_config(trusted: &Identity) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.cert.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, connect(addr))
}

fn tls_echo_server(acceptor: TlsAcceptor, threads: usize) -> TestServer {
    start_server(threads, move |s| {
        s.set_tls(acceptor);
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    })
}

fn echo_once(c: &mut Client, msg: &[u8]) -> io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut got = vec![0; msg.len()];
    c.read_exact(&mut got)?;
    Ok(got)
}

#[test]
fn handshake_and_echo() {
    let id = identity();
    let server = tls_echo_server(TlsAcceptor::new(server_config(&id)), 1);
    let mut c = tls_connect(server.addr, &client_config(&id));
    assert_eq!(
        echo_once(&mut c, b"hello over tls\n").unwrap(),
        b"hello over tls\n"
    );
    assert_eq!(
        echo_once(&mut c, &[7u8; 100_000]).unwrap(),
        vec![7u8; 100_000]
    );
}

/// The server sends 10 MB the moment the connection is up (during the
/// handshake: rustls holds it) and shuts down: every byte arrives, then
/// a clean end of stream (the client saw `close_notify`, or its read
/// would fail with `UnexpectedEof`).
#[test]
fn ten_megabytes_then_shutdown_arrive_whole_then_close_notify() {
    const LEN: usize = 10 << 20;
    let id = identity();
    let acceptor = TlsAcceptor::new(server_config(&id));
    let server = start_server(1, move |s| {
        s.set_tls(acceptor);
        s.set_connection_callback(|conn| {
            if conn.connected() {
                let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
                conn.send_vec(data);
                conn.shutdown();
            }
        });
    });
    let mut c = tls_connect(server.addr, &client_config(&id));
    let mut got = Vec::with_capacity(LEN);
    c.read_to_end(&mut got).expect("a clean TLS end of stream");
    assert_eq!(got.len(), LEN);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn high_water_mark_fires_on_a_tls_connection() {
    const MARK: usize = 256 * 1024;
    let id = identity();
    let acceptor = TlsAcceptor::new(server_config(&id));
    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_tls(acceptor);
        s.set_high_water_mark_callback(
            move |_conn, len| {
                let _ = tx.lock().send(len);
            },
            MARK,
        );
        // "go": flood a client that does not read.
        s.set_message_callback(|conn, buf, _| {
            buf.retrieve_all();
            for _ in 0..64 {
                conn.send(&[1u8; 64 * 1024]);
            }
        });
    });
    let mut c = tls_connect(server.addr, &client_config(&id));
    c.write_all(b"go").unwrap();
    c.flush().unwrap();
    let len = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the high-water mark callback");
    assert!(len >= MARK, "reported {len} bytes, mark {MARK}");
}

/// A client speaking plain text to the TLS port gets (at most) an alert
/// and a clean close: no reset, no hang.
#[test]
fn a_plain_text_client_on_the_tls_port_is_closed_cleanly() {
    let id = identity();
    let server = tls_echo_server(TlsAcceptor::new(server_config(&id)), 1);
    let mut c = connect(server.addr);
    c.write_all(b"{\"msgId\":1,\"id\":1,\"password\":\"x\"}\n")
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("EOF, not a reset or a timeout");
    // 0x15: a TLS alert record.
    assert!(got.is_empty() || got[0] == 0x15, "got {got:?}");
}

#[test]
fn a_thousand_tls_clients_at_once() {
    const CLIENTS: usize = 1000;
    const THREADS: usize = 4;
    let id = identity();
    let server = tls_echo_server(TlsAcceptor::new(server_config(&id)), 2);
    let config = client_config(&id);
    let barrier = Arc::new(Barrier::new(THREADS));
    let addr = server.addr;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (config, barrier) = (config.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut clients: Vec<Client> = (0..CLIENTS / THREADS)
                    .map(|_| tls_connect(addr, &config))
                    .collect();
                for (i, c) in clients.iter_mut().enumerate() {
                    let msg = format!("client {t}/{i:04} says hello\n");
                    assert_eq!(echo_once(c, msg.as_bytes()).unwrap(), msg.as_bytes());
                }
                // Every client of every thread is open here at once.
                barrier.wait();
                for (i, c) in clients.iter_mut().enumerate() {
                    let msg = format!("again {t}/{i:04}\n");
                    assert_eq!(echo_once(c, msg.as_bytes()).unwrap(), msg.as_bytes());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// `reload` changes the certificate for new handshakes; a connection made
/// before keeps working.
#[test]
fn reload_serves_new_handshakes_and_keeps_old_connections() {
    let (old, new) = (identity(), identity());
    let acceptor = TlsAcceptor::new(server_config(&old));
    let server = tls_echo_server(acceptor.clone(), 1);
    let mut before = tls_connect(server.addr, &client_config(&old));
    assert_eq!(echo_once(&mut before, b"one\n").unwrap(), b"one\n");

    acceptor.reload(server_config(&new));
    let mut trusting_new = tls_connect(server.addr, &client_config(&new));
    assert_eq!(echo_once(&mut trusting_new, b"two\n").unwrap(), b"two\n");
    let mut trusting_old = tls_connect(server.addr, &client_config(&old));
    let err = echo_once(&mut trusting_old, b"three\n").expect_err("the old cert is gone");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert_eq!(echo_once(&mut before, b"four\n").unwrap(), b"four\n");
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn pem_files_load_and_bad_ones_are_refused() {
    let (id, other) = (identity(), identity());
    let cert = temp_file("cert.pem", &id.cert_pem);
    let key = temp_file("key.pem", &id.key_pem);
    let acceptor = TlsAcceptor::from_pem_files(&cert, &key).unwrap();
    let server = tls_echo_server(acceptor, 1);
    let mut c = tls_connect(server.addr, &client_config(&id));
    assert_eq!(echo_once(&mut c, b"pem\n").unwrap(), b"pem\n");

    let wrong_key = temp_file("other-key.pem", &other.key_pem);
    let garbage = temp_file("garbage.pem", "not a pem file\n");
    let missing = std::env::temp_dir().join("net-tls-no-such-file.pem");
    for (c, k) in [(&cert, &wrong_key), (&garbage, &key), (&cert, &garbage)] {
        let err = net::tls::server_config_from_pem(c, k).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
    let err = net::tls::server_config_from_pem(&missing, &key).expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn plain_connections_are_not_tls() {
    let (tx, rx) = mpsc::channel::<bool>();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            let _ = tx.lock().send(conn.is_tls());
        });
    });
    let _c = connect(server.addr);
    assert!(!rx.recv_timeout(Duration::from_secs(10)).unwrap());
}

/// `send` from another thread on a TLS connection: under the output lock
/// and the session's, the records leave in the order of the sends, and
/// every byte arrives (some sends race with the handshake).
#[test]
fn sends_from_other_threads_keep_their_order_over_tls() {
    const N: u32 = 20_000;
    let id = identity();
    let acceptor = TlsAcceptor::new(server_config(&id));
    let server = start_server(1, move |s| {
        s.set_tls(acceptor);
        s.set_connection_callback(|conn| {
            if conn.connected() {
                let conn = conn.clone();
                std::thread::spawn(move || {
                    for i in 0..N {
                        conn.send(&i.to_be_bytes());
                    }
                });
            }
        });
    });
    let mut c = tls_connect(server.addr, &client_config(&id));
    let mut data = vec![0; 4 * N as usize];
    c.read_exact(&mut data).unwrap();
    for (i, chunk) in data.chunks(4).enumerate() {
        let got = u32::from_be_bytes(chunk.try_into().unwrap());
        assert_eq!(got, i as u32, "message {i} out of order");
    }
}
