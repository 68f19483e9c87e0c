//! The reactor's dispatch benchmark: muduo's `examples/pingpong/bench.cc`
//! (itself after libevent's `test/bench.c`).
//!
//! What it teaches: what one trip through the loop costs, with no TCP and
//! no user code in the way. PIPES socket pairs are registered with one
//! loop; ACTIVE of them get a byte. Each read callback takes its byte and
//! writes one to the next pair, so the bytes chase each other round the
//! ring until WRITES writes have been made. Every write is a poll, a
//! dispatch and a read on the next iteration. The loop stops when every
//! byte written has been read. Each of RUNS rounds prints two times in
//! microseconds: with the registration of the channels, and the loop alone.
//!
//! ```text
//! pingpong_bench [PIPES] [ACTIVE] [WRITES] [RUNS]     # default 100 1 100 25
//! ```

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Instant;

use mio::{unix::SourceFd, Interest, Token};
use net::{ChannelHandler, EventLoop};

/// The ring and the round's counters, shared by every channel of the loop
/// (one thread only, hence `Rc` and `Cell`).
struct Ring {
    /// `(read end, write end)` of each socket pair.
    pipes: Vec<(UnixStream, UnixStream)>,
    /// Writes still to make this round.
    writes: Cell<usize>,
    /// Bytes written this round (the first ACTIVE included).
    fired: Cell<usize>,
    /// Bytes read this round.
    reads: Cell<usize>,
}

/// The read callback of pipe `index` (muduo's `readCallback`).
struct PipeReader {
    ring: Rc<Ring>,
    index: usize,
}

impl ChannelHandler for PipeReader {
    fn handle_read(&mut self, lp: &mut EventLoop, _token: Token, _t: Instant) {
        let ring = &self.ring;
        let Some((mut reader, _)) = ring.pipes.get(self.index).map(|(r, w)| (r, w)) else {
            return;
        };
        // Edge-triggered: take every byte waiting, not just one.
        let mut bytes = [0u8; 64];
        while let Ok(n @ 1..) = reader.read(&mut bytes) {
            for _ in 0..n {
                ring.reads.set(ring.reads.get() + 1);
                if ring.writes.get() > 0 {
                    let next = (self.index + 1) % ring.pipes.len();
                    if let Some((_, mut writer)) = ring.pipes.get(next).map(|(r, w)| (r, w)) {
                        let _ = writer.write(b"m");
                    }
                    ring.writes.set(ring.writes.get() - 1);
                    ring.fired.set(ring.fired.get() + 1);
                }
            }
        }
        if ring.fired.get() == ring.reads.get() {
            lp.quit(); // every byte in flight has landed
        }
    }
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> std::io::Result<()> {
    let (pipes, active, writes, runs) = (
        arg(1, 100).max(1),
        arg(2, 1).max(1),
        arg(3, 100),
        arg(4, 25),
    );
    let active = active.min(pipes);
    let mut all = Vec::with_capacity(pipes);
    for _ in 0..pipes {
        let (r, w) = UnixStream::pair()?;
        r.set_nonblocking(true)?;
        all.push((r, w));
    }
    let ring = Rc::new(Ring {
        pipes: all,
        writes: Cell::new(0),
        fired: Cell::new(0),
        reads: Cell::new(0),
    });
    let mut lp = EventLoop::new()?;
    println!(
        "{:>10} {:>10}   (us: with registration, loop alone)",
        "total", "loop"
    );
    for _ in 0..runs {
        let (total, looped) = run_once(&mut lp, &ring, active, writes)?;
        println!("{total:>10} {looped:>10}");
    }
    Ok(())
}

/// One round: register every pipe, start ACTIVE bytes, run the loop until
/// they have all landed, deregister. Returns both times in microseconds.
fn run_once(
    lp: &mut EventLoop,
    ring: &Rc<Ring>,
    active: usize,
    writes: usize,
) -> std::io::Result<(u128, u128)> {
    let before_init = Instant::now();
    let mut tokens = Vec::with_capacity(ring.pipes.len());
    for (index, (reader, _)) in ring.pipes.iter().enumerate() {
        let fd: RawFd = reader.as_raw_fd();
        let handler = Box::new(PipeReader {
            ring: ring.clone(),
            index,
        });
        tokens.push((
            fd,
            lp.add_channel(&mut SourceFd(&fd), Interest::READABLE, handler)?,
        ));
    }
    // Spread the first bytes evenly round the ring.
    let space = ring.pipes.len() / active;
    for i in 0..active {
        if let Some((_, mut writer)) = ring.pipes.get(i * space).map(|(r, w)| (r, w)) {
            writer.write_all(b"m")?;
        }
    }
    ring.fired.set(active);
    ring.reads.set(0);
    ring.writes.set(writes);
    let before_loop = Instant::now();
    lp.run();
    let end = Instant::now();
    for (fd, token) in tokens {
        lp.remove_channel(&mut SourceFd(&fd), token);
    }
    Ok((
        (end - before_init).as_micros(),
        (end - before_loop).as_micros(),
    ))
}
