//! [`Server`]: a real `chat-server` process on `127.0.0.1:0`. It prints
//! the address it bound (`chat-server listening on ADDR …`) on standard
//! error; the launcher reads that line, keeps the rest of the log for
//! failure messages, and kills the process on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Client, TestDb};

/// Which start-up line of the server's log an address came from.
enum Line {
    Main,
    Tls,
    Web,
    WebTls,
}

/// A running `chat-server`, killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it listens for TLS (`--tls-listen`), from its
    /// `chat-server TLS listening on ADDR` line.
    pub tls_addr: Option<SocketAddr>,
    /// Where its web listener listens, when it has one.
    pub web: Option<SocketAddr>,
    /// Where its web listener over TLS (`--https`) listens, when it has one.
    pub web_tls: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    /// The store of a server started with [`Server::fresh`], removed after
    /// the process is killed.
    own_db: Option<TestDb>,
}

/// The flags every test server gets: an ephemeral port, small argon2 costs
/// (hashing stays argon2id, only cheaper), two I/O threads, four workers,
/// and hashing at nice +10 instead of the idle class. On a machine that
/// other work keeps saturated (a busy CI box), the idle class gets almost no
/// CPU and registrations would time out (docs/benchmarks.md, section 10); the
/// idle class itself is tested in accounts.rs. Every test connects from
/// 127.0.0.1, some with a thousand connections at once, so the limit on
/// anonymous connections per address is off (prelogin.rs tests it), and
/// so are the other limits per address and the failed-login throttles
/// (hashing.rs, accounts.rs and prelogin.rs test them). The resume
/// tokens' key is the store's ([`TestDb::token_key_file`]). The web
/// listener is off (its default port would be shared by every server);
/// [`Server::start_web`] turns it on, on a port of its own.
pub fn base_args(db: &TestDb) -> Vec<String> {
    let key = db.token_key_file().display().to_string();
    [
        "--listen",
        "127.0.0.1:0",
        "--http",
        "off",
        "--db",
        &db.url,
        "--argon2-memory",
        "64KiB",
        "--argon2-passes",
        "1",
        "--hash-priority",
        "10",
        "--threads",
        "2",
        "--workers",
        "4",
        "--max-anonymous-per-address",
        "0",
        "--max-connections-per-address",
        "0",
        "--max-pending-hashes-per-address",
        "0",
        "--login-failures-per-account",
        "0",
        "--login-failures-per-address",
        "0",
        "--registrations-per-address",
        "0",
        "--accounts-per-address",
        "0",
        "--token-key-file",
        &key,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Server {
    /// Starts a server on `db` with the [`base_args`] plus `extra` (later
    /// flags win), and waits until it listens.
    pub fn start(db: &TestDb, extra: &[&str]) -> Server {
        let mut args = base_args(db);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(&args)
            .env(
                "RUST_LOG",
                std::env::var("CHAT_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat-server");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("chat-server listening on ") {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send((Line::Main, addr));
                } else if let Some(rest) = line.strip_prefix("chat-server TLS listening on ") {
                    let _ = tx.send((Line::Tls, rest.trim().to_owned()));
                } else if let Some(rest) = line.strip_prefix("web client: http://") {
                    let _ = tx.send((Line::Web, rest.trim_end_matches('/').to_owned()));
                } else if let Some(rest) = line.strip_prefix("web client: https://") {
                    let _ = tx.send((Line::WebTls, rest.trim_end_matches('/').to_owned()));
                }
                let mut log = log2.lock().unwrap();
                if log.len() < 1 << 20 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        // The TLS and web listeners' lines, when there are any, come first.
        let mut tls_addr = None;
        let mut web = None;
        let mut web_tls = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((Line::Tls, a)) => tls_addr = Some(a.parse().expect("TLS listen address")),
                Ok((Line::Web, a)) => web = Some(a.parse().expect("web address")),
                Ok((Line::WebTls, a)) => web_tls = Some(a.parse().expect("https address")),
                Ok((Line::Main, a)) => break a.parse().expect("listen address"),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start:\n{}", log.lock().unwrap());
                }
            }
        };
        Server {
            child,
            addr,
            tls_addr,
            web,
            web_tls,
            log,
            own_db: None,
        }
    }

    /// As [`Server::start`], with the web listener on a free port
    /// ([`Server::web`]).
    pub fn start_web(db: &TestDb, extra: &[&str]) -> Server {
        let mut args = vec!["--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::start(db, &args)
    }

    /// A server on a new SQLite file of its own, removed with it.
    pub fn fresh() -> Server {
        Server::fresh_with(&[])
    }

    /// [`Server::fresh`] with `extra` flags.
    pub fn fresh_with(extra: &[&str]) -> Server {
        let db = TestDb::sqlite();
        let mut server = Server::start(&db, extra);
        server.own_db = Some(db);
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` and waits (at most `timeout`) for the exit code.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory of the server, in KiB (from `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new account, registered and logged in on a new connection.
    pub fn user(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.register(name, "secret");
        c.login_ok("secret");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
