//! Harness for the `chat-client` tests: a real `chat-server` on a free port
//! with its own SQLite file, and `chat-client` processes driven through
//! their standard input and output. Every wait has a deadline, so a broken
//! server or client fails a test instead of hanging it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expectation may take.
pub const WAIT: Duration = Duration::from_secs(15);

pub const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");
pub const SERVER: &str = env!("CARGO_BIN_EXE_chat-server");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary folder, removed by its owner's `Drop`.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A `chat-server` process with its own database, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`, to give to the client.
    pub addr: String,
    dir: PathBuf,
}

impl Server {
    /// Starts a server on a free port and waits until it accepts
    /// connections. Retries on another port if the chosen one was taken in
    /// the meantime.
    pub fn start() -> Server {
        let dir = temp_dir("chat-client-test");
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let log = std::fs::File::create(dir.join("server.log")).expect("create the server log");
            let child = Command::new(SERVER)
                // Cheap argon2 costs at nice +10, as every other test
                // server has (tests/common's `base_args`): a loaded machine
                // must not push a register past the client's reply timeout.
                .args(["--argon2-memory", "64KiB", "--argon2-passes", "1"])
                .args(["--hash-priority", "10"])
                .args(["--listen", &addr, "--db"])
                .arg(format!("sqlite:{}", dir.join("chat.db").display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log file"))
                .stderr(log)
                .spawn()
                .expect("start chat-server");
            let mut server = Server {
                child,
                addr,
                dir: dir.clone(),
            };
            if server.wait_until_accepting() {
                return server;
            }
        }
        panic!("chat-server would not start; its log:\n{}", read_log(&dir));
    }

    /// `true` once the port accepts, `false` if the process died first.
    fn wait_until_accepting(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's output so far, for failure messages.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

fn read_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `chat-client` in non-interactive mode: commands in on standard input,
/// lines out on standard output.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// The thread collecting standard error; finished once the pipe closes.
    stderr_reader: thread::JoinHandle<()>,
}

impl Client {
    /// Starts `chat-client ADDR --linger-ms 200`.
    pub fn start(addr: &str) -> Client {
        Client::start_with(&[addr, "--linger-ms", "200"])
    }

    /// Starts `chat-client ARGS…` with piped standard streams.
    pub fn start_with(args: &[&str]) -> Client {
        let mut child = Command::new(CLIENT)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-client");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        let stderr_reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader,
        }
    }

    /// Types one command.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("standard input already closed");
        writeln!(stdin, "{line}").expect("write to chat-client");
        stdin.flush().expect("flush chat-client's input");
    }

    /// Reads lines until one contains `needle` and returns it; lines before
    /// it are skipped. Panics, showing everything seen, after [`WAIT`].
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_where(needle, |l| l.contains(needle))
    }

    /// Reads lines until one starts with `prefix` and returns it; fails at
    /// once on an `error:` line, so a refused request does not wait out
    /// the deadline.
    pub fn expect_ok(&mut self, prefix: &str) -> String {
        let line = self.expect_where(prefix, |l| l.starts_with(prefix) || l.starts_with("error:"));
        if line.starts_with("error:") {
            self.fail(&format!("expected {prefix:?}, got {line:?}"));
        }
        line
    }

    /// Like [`Client::expect`] with a predicate; `what` describes it.
    pub fn expect_where(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no line with {what:?} within {WAIT:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => self.fail(&format!(
                    "chat-client ended its output before a line with {what:?}"
                )),
            }
        }
    }

    /// The lines that arrive within `quiet` of each other, until a pause
    /// that long: what the client printed in one burst.
    pub fn drain(&mut self, quiet: Duration) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            self.seen.push(line.clone());
            got.push(line);
        }
        got
    }

    /// What the client wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (bounded) until standard error contains `needle`.
    pub fn expect_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let err = self.stderr();
            if err.contains(needle) {
                return err;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.fail(&format!("no {needle:?} on standard error within {WAIT:?}"))
    }

    /// Closes standard input (end of commands).
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Waits (bounded) for the process to exit, without closing its input,
    /// and for its standard error to be read to the end.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                while !self.stderr_reader.is_finished() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.fail("chat-client did not exit")
    }

    /// Closes standard input and waits for the exit status.
    pub fn finish(mut self) -> ExitStatus {
        self.close_input();
        self.wait_exit()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        panic!(
            "{why}\n--- lines seen:\n{}\n--- standard error:\n{}",
            self.seen.join("\n"),
            self.stderr()
        );
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `key` in `line`, e.g. `id_after("registered uid=5 …", "uid=")`.
pub fn id_after(line: &str, key: &str) -> i64 {
    line.split_once(key)
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

/// Registers `name` with `password` on `client` and returns the new id.
pub fn register(client: &mut Client, name: &str, password: &str) -> i64 {
    client.send(&format!("register:{name}:{password}"));
    let line = client.expect_ok("registered uid=");
    assert!(line.ends_with(&format!("name={name}")), "{line}");
    id_after(&line, "uid=")
}
