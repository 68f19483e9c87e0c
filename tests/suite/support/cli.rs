//! [`CliClient`]: a `chat-client` process in non-interactive mode, driven
//! through its standard input and output. Every wait has a deadline
//! ([`WAIT`]), so a broken server or client fails a test instead of hanging
//! it. The server side is [`Server`](super::Server), as everywhere.

use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expectation may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The `chat-client` binary that cargo built for this test.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");

/// A `chat-client` in non-interactive mode: commands in on standard input,
/// lines out on standard output.
pub struct CliClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// The thread collecting standard error; finished once the pipe closes.
    stderr_reader: thread::JoinHandle<()>,
}

impl CliClient {
    /// Starts `chat-client ADDR --linger-ms 200`.
    pub fn start(addr: impl Display) -> CliClient {
        CliClient::start_with(&[&addr.to_string(), "--linger-ms", "200"])
    }

    /// Starts `chat-client ARGS…` with piped standard streams.
    pub fn start_with(args: &[&str]) -> CliClient {
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
        CliClient {
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

    /// Like [`CliClient::expect`] with a predicate; `what` describes it.
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

impl Drop for CliClient {
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
pub fn register(client: &mut CliClient, name: &str, password: &str) -> i64 {
    client.send(&format!("register:{name}:{password}"));
    let line = client.expect_ok("registered uid=");
    assert!(line.ends_with(&format!("name={name}")), "{line}");
    id_after(&line, "uid=")
}
