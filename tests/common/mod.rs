//! Test harness shared by the chat-server integration tests.
//!
//! * [`TestDb`]: a private store per test: a SQLite file in a fresh temporary
//!   folder, or (when `CHAT_TEST_MYSQL` names a server, e.g.
//!   `mysql://root@127.0.0.1:3306`) a freshly created MySQL database. Both
//!   are removed on drop.
//! * [`Server`]: a real `chat-server` process on an ephemeral port (it prints
//!   the port it bound), killed on drop.
//! * [`Client`](client::Client): a blocking client where every read has a
//!   deadline, so a broken server fails a test instead of hanging it.
//!
//! [`both_stores!`] turns a `fn(TestDb)` into a `sqlite` and a `mysql` test.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use client::Client;

/// Runs a scenario against SQLite always, and against MySQL when
/// `CHAT_TEST_MYSQL` is set (otherwise it prints that it was skipped).
#[macro_export]
macro_rules! both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(super::common::TestDb::sqlite());
            }
            #[test]
            fn mysql() {
                match super::common::TestDb::mysql() {
                    Some(db) => super::$scenario(db),
                    None => eprintln!("skipped: CHAT_TEST_MYSQL not set"),
                }
            }
        }
    )*};
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (in this or another process) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store of one test, removed on drop.
pub struct TestDb {
    /// What to pass to `--db`.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Mysql { admin: String, name: String },
}

impl TestDb {
    /// A SQLite file in a new temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(unique("chat-test"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TestDb {
            url: format!("sqlite:{}", dir.join("chat.db").display()),
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new MySQL database on the `CHAT_TEST_MYSQL` server, or `None`.
    pub fn mysql() -> Option<TestDb> {
        let admin = std::env::var("CHAT_TEST_MYSQL").ok()?;
        let admin = admin.trim_end_matches('/').to_owned();
        let name = unique("chat_test");
        mysql_exec(
            &admin,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        );
        Some(TestDb {
            url: format!("{admin}/{name}"),
            cleanup: Cleanup::Mysql { admin, name },
        })
    }

    /// `true` for the MySQL store.
    pub fn is_mysql(&self) -> bool {
        matches!(self.cleanup, Cleanup::Mysql { .. })
    }

    /// Runs a query returning one integer, straight on the database.
    pub fn query_i64(&self, sql: &str) -> i64 {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let conn = rusqlite::Connection::open(dir.join("chat.db")).expect("open sqlite");
                conn.query_row(sql, [], |r| r.get(0)).expect("query")
            }
            Cleanup::Mysql { .. } => {
                use mysql::prelude::Queryable;
                let pool = mysql::Pool::new(self.url.as_str()).expect("mysql pool");
                let mut conn = pool.get_conn().expect("mysql conn");
                conn.query_first::<i64, _>(sql).expect("query").unwrap_or(0)
            }
        }
    }

    /// Users whose `state` column says online.
    pub fn online_users(&self) -> i64 {
        self.query_i64("SELECT COUNT(*) FROM user WHERE state = 'online'")
    }
}

fn mysql_exec(admin: &str, sql: &str) {
    use mysql::prelude::Queryable;
    let pool = mysql::Pool::new(admin).expect("CHAT_TEST_MYSQL: cannot connect");
    let mut conn = pool.get_conn().expect("mysql conn");
    conn.query_drop(sql).expect(sql);
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Mysql { admin, name } => {
                mysql_exec(admin, &format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    }
}

/// A running `chat-server`, killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

/// The flags every test server gets: an ephemeral port, small argon2 costs
/// (hashing stays argon2id, only cheaper), two I/O threads, four workers,
/// and hashing at nice +10 instead of the idle class. On a machine that
/// other work keeps saturated (a busy CI box), the idle class gets almost no
/// CPU and registrations would time out (docs/benchmarks.md, section 10); the
/// idle class itself is tested in accounts.rs.
pub fn base_args(db: &TestDb) -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
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
                    let _ = tx.send(addr);
                }
                let mut log = log2.lock().unwrap();
                if log.len() < 1 << 20 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `true` while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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

/// Raises this process's open-file soft limit to its hard limit (children
/// inherit it) and returns the new limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
