//! The TLS listener (`--tls-listen`): the same protocol over TLS beside
//! the plain listener, certificates the client refuses, and SIGHUP
//! reloading the certificate while clients stay connected. Certificates
//! are made at run time by a test CA (support/tls.rs).

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use crate::support::cli::register;
use crate::support::tls::{TestCa, TlsDir};
use crate::support::{wait_until, CliClient, Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![a_tls_client_and_a_plain_client_chat];
    tests.extend(tests![
        a_client_refuses_a_wrong_or_expired_certificate,
        a_plain_text_client_on_the_tls_port_is_closed,
        sighup_reloads_the_certificate_and_keeps_connections,
        chat_client_over_tls_and_its_refusals,
        chat_bench_over_tls_loses_nothing,
        a_bad_certificate_or_a_missing_key_stops_the_start,
    ]);
    tests
}

/// A server on `db` with a TLS listener serving `dir`'s cert.pem/key.pem.
fn tls_server(db: &TestDb, dir: &TlsDir, pair: &(String, String)) -> Server {
    let (cert, key) = dir.pair(pair);
    Server::start(
        db,
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    )
}

/// Registers and logs in `name` on `c`.
fn sign_up(c: &mut Client, name: &str) {
    c.register(name, "secret");
    c.login_ok("secret");
}

/// Register, login and chat both ways between a client on the TLS port
/// and one on the plain port: one server, one protocol, two transports.
fn a_tls_client_and_a_plain_client_chat(db: TestDb) {
    let (ca, dir) = (TestCa::new(), TlsDir::new());
    let server = tls_server(&db, &dir, &ca.issue(false));
    let tls_addr = server.tls_addr.expect("a TLS listener");
    assert_ne!(tls_addr, server.addr);
    let mut alice = Client::connect_tls(tls_addr, &ca.client_config()).expect("handshake");
    sign_up(&mut alice, "alice");
    let mut bob = server.user("bob");

    alice.chat(bob.uid, "over tls");
    assert_eq!(bob.recv_chat(), (alice.uid, "over tls".to_owned()));
    bob.chat(alice.uid, "over plain tcp");
    assert_eq!(alice.recv_chat(), (bob.uid, "over plain tcp".to_owned()));
    // A large message crosses in several TLS records.
    let big = "x".repeat(40_000);
    alice.chat(bob.uid, &big);
    assert_eq!(bob.recv_chat(), (alice.uid, big));
}

/// The client checks the server: a certificate from a CA it does not
/// trust, or one that has expired, fails the handshake.
fn a_client_refuses_a_wrong_or_expired_certificate() {
    let (ca, other, dir) = (TestCa::new(), TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let server = tls_server(&db, &dir, &ca.issue(false));
    let addr = server.tls_addr.expect("a TLS listener");
    let err = Client::connect_tls(addr, &other.client_config())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(Client::connect_tls(addr, &ca.client_config()).is_ok());
    drop(server);

    let expired_dir = TlsDir::new();
    let server = tls_server(&db, &expired_dir, &ca.issue(true));
    let addr = server.tls_addr.expect("a TLS listener");
    let err = Client::connect_tls(addr, &ca.client_config())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
}

/// The original client's login, in plain text on the TLS port: the
/// connection is closed (after a TLS alert), and the server goes on.
fn a_plain_text_client_on_the_tls_port_is_closed() {
    let (ca, dir) = (TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let server = tls_server(&db, &dir, &ca.issue(false));
    // A raw socket: the alert's bytes are not JSON lines.
    let mut c = std::net::TcpStream::connect(server.tls_addr.expect("a TLS listener")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(br#"{"msgId":1,"id":1,"password":"secret"}"#)
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("a close, not a reset or a timeout");
    // 0x15: a TLS alert record, if anything.
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    let mut ok = Client::connect_tls(server.tls_addr.unwrap(), &ca.client_config()).unwrap();
    sign_up(&mut ok, "carol");
}

/// SIGHUP: new handshakes get the new certificate, a connection made
/// before keeps working; a bad new certificate is logged and the last
/// good one stays.
fn sighup_reloads_the_certificate_and_keeps_connections() {
    let (old_ca, new_ca, dir) = (TestCa::new(), TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let mut server = tls_server(&db, &dir, &old_ca.issue(false));
    let addr = server.tls_addr.expect("a TLS listener");
    let mut alice = Client::connect_tls(addr, &old_ca.client_config()).unwrap();
    sign_up(&mut alice, "alice");

    dir.pair(&new_ca.issue(false));
    // Still running afterwards: SIGHUP does not stop the server.
    assert_eq!(server.signal_and_wait(libc::SIGHUP, Duration::ZERO), None);
    wait_until("new handshakes see the new certificate", || {
        Client::connect_tls(addr, &new_ca.client_config()).is_ok()
    });
    assert!(Client::connect_tls(addr, &old_ca.client_config()).is_err());
    let mut bob = Client::connect_tls(addr, &new_ca.client_config()).unwrap();
    sign_up(&mut bob, "bob");
    alice.chat(bob.uid, "still here");
    assert_eq!(bob.recv_chat(), (alice.uid, "still here".to_owned()));
    bob.chat(alice.uid, "welcome");
    assert_eq!(alice.recv_chat(), (bob.uid, "welcome".to_owned()));

    dir.write("cert.pem", "not a certificate\n");
    assert_eq!(server.signal_and_wait(libc::SIGHUP, Duration::ZERO), None);
    wait_until("the bad certificate is logged", || {
        server.log().contains("TLS certificate not reloaded")
    });
    assert!(Client::connect_tls(addr, &new_ca.client_config()).is_ok());
    alice.chat(bob.uid, "after the bad reload");
    assert_eq!(
        bob.recv_chat(),
        (alice.uid, "after the bad reload".to_owned())
    );
}

/// `chat-client --tls --ca FILE`: registers, logs in and chats with a
/// plain client; a CA it does not trust, or a certificate that expired,
/// makes it exit 1 with the reason.
fn chat_client_over_tls_and_its_refusals() {
    let (ca, other, dir) = (TestCa::new(), TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let server = tls_server(&db, &dir, &ca.issue(false));
    let tls_addr = server.tls_addr.expect("a TLS listener").to_string();
    let ca_file = dir.write("ca.pem", &ca.pem());
    let ca_file = ca_file.display().to_string();
    let name = format!("localhost:{}", server.tls_addr.unwrap().port());
    let mut alice =
        CliClient::start_with(&["--tls", "--ca", &ca_file, &name, "--linger-ms", "200"]);
    let alice_id = register(&mut alice, "alice", "pw-alice");
    alice.send(&format!("login:{alice_id}:pw-alice"));
    alice.expect_ok(&format!("logged in uid={alice_id} name=alice"));
    let mut bob = server.user("bob");
    alice.send(&format!("chat:{}:hello over tls", bob.uid));
    assert_eq!(bob.recv_chat(), (alice_id, "hello over tls".to_owned()));
    bob.chat(alice_id, "hello over tcp");
    alice.expect(&format!("message from {} (bob)", bob.uid));

    // By IP (the certificate's other name), trusting another CA: refused.
    let other_file = dir.write("other-ca.pem", &other.pem());
    let other_file = other_file.display().to_string();
    let mut refused = CliClient::start_with(&["--tls", "--ca", &other_file, &tls_addr]);
    assert_eq!(refused.wait_exit().code(), Some(1));
    refused.expect_stderr("cannot connect");
    drop(server);

    let expired_dir = TlsDir::new();
    let server = tls_server(&db, &expired_dir, &ca.issue(true));
    let addr = server.tls_addr.unwrap().to_string();
    let mut refused = CliClient::start_with(&[
        "--tls",
        "--ca",
        &ca_file,
        "--server-name",
        "localhost",
        &addr,
    ]);
    assert_eq!(refused.wait_exit().code(), Some(1));
    let why = refused.expect_stderr("cannot connect").to_lowercase();
    assert!(why.contains("expired"), "{why}");
}

/// `chat-bench --tls --ca FILE --server-name localhost`: setup (register,
/// login) and the chat scenario over TLS, every message delivered once and
/// in order; a bench trusting another CA fails its run.
fn chat_bench_over_tls_loses_nothing() {
    use chat_bench::{Config, Scenario};
    let (ca, other, dir) = (TestCa::new(), TestCa::new(), TlsDir::new());
    let db = TestDb::sqlite();
    let server = tls_server(&db, &dir, &ca.issue(false));
    let ca_file = dir.write("ca.pem", &ca.pem());
    let config = |ca_file: std::path::PathBuf| Config {
        scenario: Scenario::Chat,
        addrs: vec![server.tls_addr.expect("a TLS listener")],
        users: 20,
        threads: 2,
        messages: Some(50),
        window: 4,
        timeout: Duration::from_secs(60),
        drain: Duration::from_secs(5),
        progress: false,
        tls: true,
        ca: Some(ca_file),
        server_name: Some("localhost".into()),
        ..Config::default()
    };
    let report = chat_bench::run(&config(ca_file)).expect("bench run");
    assert!(report.failed.is_none(), "{:?}", report.failed);
    assert!(report.delivered.unwrap_or(0) > 0, "{report:?}");
    assert_eq!(report.delivered, report.expected, "{report:?}");
    for n in [report.lost, report.duplicated, report.reordered] {
        assert_eq!(n.unwrap_or(0), 0, "{report:?}");
    }

    let other_file = dir.write("other-ca.pem", &other.pem());
    let mut refused = config(other_file);
    refused.timeout = Duration::from_secs(10);
    let failed = match chat_bench::run(&refused) {
        Ok(report) => report.failed,
        Err(e) => Some(e.to_string()),
    };
    assert!(failed.is_some(), "a bench trusting another CA must fail");
}

/// A certificate that does not load, at start, is a clear error (exit 1);
/// `--tls-listen` without a key is a usage error (exit 2).
fn a_bad_certificate_or_a_missing_key_stops_the_start() {
    let ca = TestCa::new();
    let files = TlsDir::new();
    let (_, key) = files.pair(&ca.issue(false));
    let garbage = files.write("garbage.pem", "not a certificate\n");
    let db = TestDb::sqlite();
    let start = |extra: &[&str]| {
        let mut args = crate::support::server::base_args(&db);
        args.extend(extra.iter().map(|s| s.to_string()));
        std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(&args)
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run chat-server")
    };
    let out = start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &garbage.display().to_string(),
        "--tls-key",
        &key,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("garbage.pem"),
        "{err}"
    );
    let out = start(&["--tls-listen", "127.0.0.1:0", "--tls-cert", &key]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--tls-key"), "{err}");
}
