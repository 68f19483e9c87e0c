//! `EventLoopThreadPool`: the sub-reactors, as muduo's `EventLoopThreadPool`.
//!
//! A server's main loop accepts; its pool of `N` loop threads does the I/O
//! of the accepted connections, handed out round-robin by
//! [`EventLoopThreadPool::get_next_loop`]. With `N = 0` there is no pool
//! and the base loop does everything, as in muduo.
//!
//! Thread affinity: `start` and `get_next_loop` are called on the base
//! loop's thread (the pool is part of the server's main-loop state).

use std::io;

use crate::event_loop::EventLoopHandle;
use crate::event_loop_thread::{EventLoopThread, ThreadInitCallback};

/// N loop threads behind a base loop.
pub struct EventLoopThreadPool {
    base: EventLoopHandle,
    name: String,
    num_threads: usize,
    threads: Vec<EventLoopThread>,
    loops: Vec<EventLoopHandle>,
    next: usize,
}

impl EventLoopThreadPool {
    /// A pool on top of `base`, with no threads yet.
    pub fn new(base: EventLoopHandle, name: impl Into<String>) -> Self {
        EventLoopThreadPool {
            base,
            name: name.into(),
            num_threads: 0,
            threads: Vec::new(),
            loops: Vec::new(),
            next: 0,
        }
    }

    /// How many threads `start` spawns.
    pub fn set_thread_num(&mut self, n: usize) {
        self.num_threads = n;
    }

    /// Spawns the threads, named `<name><i>`. With no threads, `init` runs on
    /// the base loop (the caller passes it the loop, see `TcpServer::start`).
    ///
    /// # Errors
    /// If a thread or its loop cannot be created.
    pub fn start(&mut self, init: Option<ThreadInitCallback>) -> io::Result<()> {
        for i in 0..self.num_threads {
            let mut t = EventLoopThread::new(format!("{}{}", self.name, i), init.clone());
            self.loops.push(t.start_loop()?);
            self.threads.push(t);
        }
        Ok(())
    }

    /// The next loop, round-robin; the base loop when there are no threads.
    pub fn get_next_loop(&mut self) -> EventLoopHandle {
        self.base.assert_in_loop_thread();
        if self.loops.is_empty() {
            return self.base.clone();
        }
        let lp = self.loops[self.next].clone();
        self.next = (self.next + 1) % self.loops.len();
        lp
    }

    /// Every loop that serves connections.
    pub fn get_all_loops(&self) -> Vec<EventLoopHandle> {
        if self.loops.is_empty() {
            vec![self.base.clone()]
        } else {
            self.loops.clone()
        }
    }
}

impl EventLoopThreadPool {
    /// Quits and joins every thread; afterwards `get_next_loop` returns the
    /// base loop.
    pub fn stop(&mut self) {
        self.loops.clear();
        self.threads.clear(); // each EventLoopThread quits and joins on drop
        self.next = 0;
    }
}
