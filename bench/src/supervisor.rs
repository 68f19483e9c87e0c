//! The `soak` scenario's server: a `chat-server` process the bench starts
//! itself, kills with SIGKILL every `--restart-every` and starts again on
//! the same port and database, sampling its resident memory meanwhile.
//!
//! [`ServerProcess`] is one incarnation: spawned with the caller's
//! arguments plus `--listen` and `--db`, considered up once it prints
//! `chat-server listening on ADDR` on standard error. Its standard error is
//! read to the end by a thread of its own (a full pipe would stop the
//! server) and its last lines are kept for failure messages.
//!
//! [`Supervisor`] is the thread that owns the process during the traffic:
//! it wakes every `sample_every` to read `VmRSS` from `/proc/PID/status`
//! and, until sending stops, kills and restarts the server on schedule.
//! The books it keeps ([`Monitor`]) are read by the runner at the end;
//! [`rss_verdict`] decides whether memory stayed flat.
//!
//! Thread rule: only the supervisor thread touches the process while it
//! runs; the runner gets it back from [`Supervisor::finish`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of the server's standard error kept for failure messages.
const LOG_TAIL: usize = 40;
/// Longest a start may take until the server listens (MySQL schema, …).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts to restart on the old port (it may still be held briefly).
const START_TRIES: u32 = 20;
/// Most memory samples kept (30 minutes at one a second is 1,800).
const MAX_SAMPLES: usize = 100_000;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerCommand {
    /// The `chat-server` binary.
    pub program: PathBuf,
    /// Extra arguments, before the bench's `--listen` and `--db`.
    pub args: Vec<String>,
    /// The store, passed as `--db`.
    pub db: String,
}

/// One running incarnation of the server.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// Starts the server listening on `listen` (port 0: any free port) and
    /// waits until it says it listens.
    ///
    /// # Errors
    /// It could not be spawned, exited, or did not listen in time; the
    /// message carries the end of its log.
    pub fn start(cmd: &ServerCommand, listen: SocketAddr) -> Result<ServerProcess, String> {
        let mut child = Command::new(&cmd.program)
            // No web listener unless the extra arguments ask for one: its
            // default port would be taken by the next server started.
            .args(["--http", "off"])
            .args(&cmd.args)
            .args(["--listen", &listen.to_string(), "--db", &cmd.db])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", cmd.program.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || read_log(stderr, &tail, &tx));
        }
        let addr = rx.recv_timeout(START_TIMEOUT);
        let mut server = ServerProcess {
            child,
            addr: listen,
            tail,
        };
        match addr {
            Ok(addr) => {
                server.addr = addr;
                Ok(server)
            }
            Err(_) => {
                server.kill9();
                Err(format!(
                    "the server did not start listening on {listen}:\n{}",
                    server.log_tail()
                ))
            }
        }
    }

    /// Starts the server on `addr` again, retrying while the port is not
    /// free yet.
    ///
    /// # Errors
    /// The last attempt's error.
    pub fn restart(cmd: &ServerCommand, addr: SocketAddr) -> Result<ServerProcess, String> {
        let mut last = String::new();
        for _ in 0..START_TRIES {
            match ServerProcess::start(cmd, addr) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(last)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        // Already gone is fine: the wait reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then up to `timeout` for it to exit; SIGKILL after that.
    /// Returns the exit code of a graceful stop.
    pub fn stop(&mut self, timeout: Duration) -> Option<i32> {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }

    /// The last lines the server wrote to standard error.
    pub fn log_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().map(|l| format!("  {l}\n")).collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads the server's standard error to the end, keeping the last lines
/// and sending the address of the `listening on` line.
fn read_log(
    stderr: std::process::ChildStderr,
    tail: &Mutex<VecDeque<String>>,
    tx: &mpsc::Sender<SocketAddr>,
) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(addr) = listen_address(&line) {
            // The starter may have given up already.
            let _ = tx.send(addr);
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == LOG_TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// The address in `chat-server listening on ADDR (store: …)`.
fn listen_address(line: &str) -> Option<SocketAddr> {
    let rest = line.split("chat-server listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// One memory reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RssSample {
    /// Seconds since the traffic started.
    pub at: f64,
    /// Which incarnation of the server (0 is the first).
    pub incarnation: usize,
    /// Seconds since this incarnation started.
    pub age: f64,
    /// `VmRSS` in KiB.
    pub kib: u64,
}

/// A kill and restart.
#[derive(Clone, Debug, PartialEq)]
pub struct Restart {
    /// Seconds since the traffic started, at the kill.
    pub at: f64,
    /// Milliseconds from the kill until the new server listened.
    pub down_ms: u64,
}

/// What the supervisor saw.
#[derive(Debug, Default)]
pub struct Monitor {
    /// Memory readings, oldest first.
    pub samples: Vec<RssSample>,
    /// Kills and restarts, in order.
    pub restarts: Vec<Restart>,
    /// A restart that failed: the server stayed down.
    pub failure: Option<String>,
}

/// When and how often the supervisor acts.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Between two kills (zero: never).
    pub restart_every: Duration,
    /// Between two memory readings.
    pub sample_every: Duration,
    /// No kill at or after this.
    pub send_until: Instant,
}

/// The thread that owns the server during the traffic; see the module docs.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    monitor: Arc<Mutex<Monitor>>,
    thread: JoinHandle<Option<ServerProcess>>,
}

impl Supervisor {
    /// Hands `server` to a new supervisor thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        server: ServerProcess,
        cmd: ServerCommand,
        schedule: Schedule,
    ) -> std::io::Result<Supervisor> {
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = Arc::new(Mutex::new(Monitor::default()));
        let thread = {
            let stop = Arc::clone(&stop);
            let monitor = Arc::clone(&monitor);
            std::thread::Builder::new()
                .name("soak-supervisor".into())
                .spawn(move || supervise(server, &cmd, schedule, &stop, &monitor))?
        };
        Ok(Supervisor {
            stop,
            monitor,
            thread,
        })
    }

    /// Stops the thread; returns the server (unless a restart failed) and
    /// the books.
    pub fn finish(self) -> (Option<ServerProcess>, Monitor) {
        self.stop.store(true, Ordering::Relaxed);
        let server = self.thread.join().ok().flatten();
        let monitor = std::mem::take(&mut *self.monitor.lock().unwrap_or_else(|e| e.into_inner()));
        (server, monitor)
    }
}

fn supervise(
    mut server: ServerProcess,
    cmd: &ServerCommand,
    schedule: Schedule,
    stop: &AtomicBool,
    monitor: &Mutex<Monitor>,
) -> Option<ServerProcess> {
    let started = Instant::now();
    let mut born = started;
    let mut incarnation = 0;
    let mut next_sample = started;
    let mut next_restart =
        (!schedule.restart_every.is_zero()).then(|| started + schedule.restart_every);
    let book = |f: &mut dyn FnMut(&mut Monitor)| {
        f(&mut monitor.lock().unwrap_or_else(|e| e.into_inner()));
    };
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_sample {
            next_sample += schedule.sample_every;
            if let Some(kib) = crate::sys::rss_kib(server.pid()) {
                let sample = RssSample {
                    at: (now - started).as_secs_f64(),
                    incarnation,
                    age: (now - born).as_secs_f64(),
                    kib,
                };
                book(&mut |m| {
                    if m.samples.len() < MAX_SAMPLES {
                        m.samples.push(sample);
                    }
                });
            }
        }
        if let Some(at) = next_restart.filter(|&at| now >= at) {
            if at >= schedule.send_until {
                next_restart = None;
                continue;
            }
            next_restart = Some(at + schedule.restart_every);
            let addr = server.addr;
            server.kill9();
            drop(server);
            let killed = Instant::now();
            match ServerProcess::restart(cmd, addr) {
                Ok(next) => server = next,
                Err(e) => {
                    book(&mut |m| m.failure = Some(format!("restart failed: {e}")));
                    return None;
                }
            }
            born = Instant::now();
            incarnation += 1;
            let restart = Restart {
                at: (killed - started).as_secs_f64(),
                down_ms: (born - killed).as_millis() as u64,
            };
            log::info!("soak: server restarted, pid {}", server.pid());
            book(&mut |m| m.restarts.push(restart.clone()));
            // The sample schedule goes on from the new server's start.
            next_sample = born;
        }
        let wake = next_restart
            .map_or(next_sample, |r| r.min(next_sample))
            .saturating_duration_since(Instant::now());
        std::thread::sleep(wake.min(Duration::from_millis(50)));
    }
    Some(server)
}

/// Whether memory stayed flat, and the figures that say so.
#[derive(Clone, Debug, PartialEq)]
pub struct RssVerdict {
    /// `true`: flat; `false`: grew; `None`: too few samples to tell.
    pub flat: Option<bool>,
    /// One line per comparison made.
    pub details: Vec<String>,
}

/// Judges `samples`: after `warmup` seconds of each incarnation, the
/// highest reading of the last third of the time must be at most
/// `tolerance_pct` percent above the highest of the first third. Compared
/// over the whole run and within each incarnation that has at least six
/// readings after its warm-up (a restart sets memory back, so a leak shows
/// within incarnations; growth that restarts do not undo shows over the
/// run).
pub fn rss_verdict(samples: &[RssSample], warmup: f64, tolerance_pct: f64) -> RssVerdict {
    let steady: Vec<&RssSample> = samples.iter().filter(|s| s.age >= warmup).collect();
    let mut details = Vec::new();
    let mut flat = None;
    let mut judge = |label: String, part: &[&RssSample]| {
        let Some((first, last)) = thirds_max(part) else {
            return;
        };
        let limit = first as f64 * (1.0 + tolerance_pct / 100.0);
        let ok = last as f64 <= limit;
        details.push(format!(
            "{label}: first-third max {first} KiB, last-third max {last} KiB ({:+.1}%): {}",
            (last as f64 / first.max(1) as f64 - 1.0) * 100.0,
            if ok { "flat" } else { "GREW" }
        ));
        flat = Some(flat.unwrap_or(true) && ok);
    };
    judge("run".into(), &steady);
    let incarnations = steady
        .iter()
        .map(|s| s.incarnation)
        .max()
        .map_or(0, |n| n + 1);
    for k in 0..incarnations {
        let mine: Vec<&RssSample> = steady
            .iter()
            .copied()
            .filter(|s| s.incarnation == k)
            .collect();
        judge(format!("server {k}"), &mine);
    }
    RssVerdict { flat, details }
}

/// The highest reading of the first and of the last third of the time
/// `part` spans; `None` below six readings.
fn thirds_max(part: &[&RssSample]) -> Option<(u64, u64)> {
    if part.len() < 6 {
        return None;
    }
    let start = part.first()?.at;
    let end = part.last()?.at;
    let third = (end - start) / 3.0;
    let max_in = |from: f64, to: f64| {
        part.iter()
            .filter(|s| s.at >= from && s.at <= to)
            .map(|s| s.kib)
            .max()
    };
    Some((max_in(start, start + third)?, max_in(end - third, end)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(incarnation: usize, from: f64, kib: &[u64]) -> Vec<RssSample> {
        kib.iter()
            .enumerate()
            .map(|(i, &kib)| RssSample {
                at: from + i as f64,
                incarnation,
                age: i as f64,
                kib,
            })
            .collect()
    }

    #[test]
    fn the_listen_line_gives_the_address() {
        let line = "[2026 INFO] chat-server listening on 127.0.0.1:40123 (store: sqlite:x)";
        assert_eq!(listen_address(line), "127.0.0.1:40123".parse().ok());
        assert_eq!(listen_address("chat-server listening on nowhere"), None);
    }

    #[test]
    fn flat_memory_passes_after_the_warm_up() {
        // Growth during the 2 s warm-up does not count.
        let s = series(
            0,
            0.0,
            &[
                1_000, 5_000, 9_000, 9_100, 9_000, 9_200, 9_100, 9_050, 9_150,
            ],
        );
        let v = rss_verdict(&s, 2.0, 10.0);
        assert_eq!(v.flat, Some(true), "{:?}", v.details);
    }

    #[test]
    fn a_leak_within_one_server_is_found_though_restarts_hide_it_overall() {
        let mut s = series(0, 0.0, &[100, 110, 120, 130, 140, 150, 160, 170, 180]);
        s.extend(series(
            1,
            9.0,
            &[100, 110, 120, 130, 140, 150, 160, 170, 180],
        ));
        let v = rss_verdict(&s, 0.0, 20.0);
        assert_eq!(v.flat, Some(false), "{:?}", v.details);
        assert!(v
            .details
            .iter()
            .any(|d| d.starts_with("server 1") && d.ends_with("GREW")));
    }

    #[test]
    fn too_few_samples_say_nothing() {
        let v = rss_verdict(&series(0, 0.0, &[1, 2, 3, 4, 5, 6]), 3.0, 10.0);
        assert_eq!(v.flat, None);
        assert!(v.details.is_empty());
    }
}
