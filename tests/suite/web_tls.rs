//! The web listener over TLS (`--https`): the same routes as `--http`,
//! `/ws` as `wss:` chatting with a plain TCP client, a plain-HTTP client
//! closed, and one SIGHUP reloading the certificate of both TLS listeners
//! (`--tls-listen` and `--https` share one acceptor). Certificates come
//! from a test CA made at run time (support/tls.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use net::tls::rustls::{self, pki_types::ServerName, ClientConfig, ClientConnection};

use crate::support::tls::{TestCa, TlsDir};
use crate::support::ws::WsClient;
use crate::support::{wait_until, Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![a_wss_user_and_a_tcp_user_chat];
    tests.extend(tests![
        https_serves_the_routes_and_closes_plain_http,
        one_sighup_reloads_both_tls_listeners,
    ]);
    tests
}

/// A server on `db` with `--https` (and `extra`) serving `dir`'s
/// cert.pem/key.pem.
fn https_server(db: &TestDb, dir: &TlsDir, pair: &(String, String), extra: &[&str]) -> Server {
    let (cert, key) = dir.pair(pair);
    let mut args = vec![
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    args.extend_from_slice(extra);
    Server::start(db, &args)
}

/// A TLS stream to `addr` for "localhost", handshaken.
fn tls_connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> std::io::Result<rustls::StreamOwned<ClientConnection, TcpStream>> {
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// `GET path` over TLS with `Connection: close`; the response as text.
fn https_get(addr: SocketAddr, config: &Arc<ClientConfig>, path: &str) -> String {
    let mut s = tls_connect(addr, config).expect("TLS handshake with the https listener");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    // Until the server closes (with or without close_notify) or times out.
    while let Ok(n @ 1..) = s.read(&mut chunk) {
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `/healthz` and the page over https with a client that trusts the test
/// CA; the plain `--http` listener stays as it was; an HTTP request in
/// plain text on the https port is closed (after a TLS alert at most),
/// and the listener goes on serving.
fn https_serves_the_routes_and_closes_plain_http() {
    let (ca, dir) = (TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let server = https_server(&db, &dir, &ca.issue(false), &["--http", "127.0.0.1:0"]);
    let https = server.web_tls.expect("a web client: https:// line");
    assert_ne!(Some(https), server.web);
    assert!(
        server.tls_addr.is_none(),
        "--https alone adds no chat TLS port"
    );
    let config = ca.client_config();

    let health = https_get(https, &config, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    let page = https_get(https, &config, "/");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(page.contains("<html"), "{page}");
    let inspect = https_get(https, &config, "/inspect");
    assert!(inspect.contains("web-tls-0"), "{inspect}");
    assert!(https_get(https, &config, "/nope").starts_with("HTTP/1.1 404 "));

    let mut plain = TcpStream::connect(https).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    plain
        .read_to_end(&mut got)
        .expect("a close, not a reset or a timeout");
    // 0x15: a TLS alert record, if anything; never an HTTP answer.
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");

    assert!(https_get(https, &config, "/healthz").starts_with("HTTP/1.1 200 "));
    let other = TestCa::new();
    assert!(
        tls_connect(https, &other.client_config()).is_err(),
        "a client that does not trust the CA refuses the certificate"
    );
}

/// A user on `wss:` and a user on the plain chat port: register, log in
/// and chat both ways, a large message crossing several TLS records.
fn a_wss_user_and_a_tcp_user_chat(db: TestDb) {
    let (ca, dir) = (TestCa::new(), TlsDir::new());
    let server = https_server(&db, &dir, &ca.issue(false), &[]);
    let https = server.web_tls.expect("an https listener");
    let mut alice = WsClient::connect_tls(https, &ca.client_config()).sign_up("alice");
    let mut bob = server.user("bob");

    alice.chat(bob.uid, "over wss");
    assert_eq!(bob.recv_chat(), (alice.uid, "over wss".to_owned()));
    bob.chat(alice.uid, "over plain tcp");
    let v = alice.expect(9);
    assert_eq!(
        (v["from"].as_i64(), v["msg"].as_str()),
        (Some(bob.uid), Some("over plain tcp"))
    );
    let big = "y".repeat(40_000);
    alice.chat(bob.uid, &big);
    assert_eq!(bob.recv_chat(), (alice.uid, big));
}

/// With `--tls-listen` and `--https` on one certificate, one SIGHUP
/// makes new handshakes on both see the new one; a WebSocket opened
/// before goes on working.
fn one_sighup_reloads_both_tls_listeners() {
    let (old_ca, new_ca, dir) = (TestCa::new(), TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let mut server = https_server(
        &db,
        &dir,
        &old_ca.issue(false),
        &["--tls-listen", "127.0.0.1:0"],
    );
    let (https, chat) = (
        server.web_tls.expect("an https listener"),
        server.tls_addr.expect("a chat TLS listener"),
    );
    let mut alice = WsClient::connect_tls(https, &old_ca.client_config()).sign_up("alice");

    dir.pair(&new_ca.issue(false));
    assert_eq!(server.signal_and_wait(libc::SIGHUP, Duration::ZERO), None);
    wait_until("new https handshakes see the new certificate", || {
        tls_connect(https, &new_ca.client_config()).is_ok()
    });
    assert!(tls_connect(https, &old_ca.client_config()).is_err());
    assert!(Client::connect_tls(chat, &old_ca.client_config()).is_err());
    let mut bob = Client::connect_tls(chat, &new_ca.client_config()).expect("the new certificate");
    bob.register("bob", "secret");
    bob.login_ok("secret");
    alice.chat(bob.uid, "made before the reload");
    assert_eq!(
        bob.recv_chat(),
        (alice.uid, "made before the reload".to_owned())
    );
}
