//! `Priority`: how a pool's threads compete with the I/O threads for the
//! CPU.
//!
//! Linux schedules threads, not processes: a thread's nice value and its
//! scheduling class belong to that thread alone. So a pool can set its own
//! threads' priority when they start ([`WorkerPool`](super::WorkerPool)
//! does, through `Priority::apply`) and leave the I/O threads at the
//! process's normal priority. `chat-server` runs its database workers at
//! nice +5 and its password hashers at `--hash-priority` (`idle` by
//! default).

/// How a pool's threads compete with the I/O threads for the CPU. Both
/// settings belong to the thread on Linux, so they leave the I/O threads
/// alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The process's nice value plus this much (0 keeps it). Under the
    /// fair scheduler nice 5 weighs a third of nice 0, nice 19 a
    /// seventieth: the thread still gets that share of a busy core.
    Nice(i32),
    /// `SCHED_IDLE`: the thread runs only on a core that nothing else
    /// wants, and gives it up the moment another thread wakes there. Its
    /// work waits as long as the machine is saturated.
    Idle,
}

impl Priority {
    /// Applies the priority to the calling thread; a pool's thread calls it
    /// once, on itself, before its first job. A failure is logged: the
    /// thread then runs at the normal priority, which is slower for other
    /// threads but not wrong.
    pub(crate) fn apply(self) {
        // SAFETY: plain system calls on the calling thread (id 0 or its own
        // tid); the only memory passed is a local `sched_param`.
        let failed = unsafe {
            match self {
                Priority::Nice(0) => false,
                Priority::Nice(nice) => {
                    let tid = libc::gettid() as libc::id_t;
                    let current = libc::getpriority(libc::PRIO_PROCESS, tid);
                    libc::setpriority(libc::PRIO_PROCESS, tid, current + nice) != 0
                }
                Priority::Idle => {
                    let param = libc::sched_param { sched_priority: 0 };
                    libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0
                }
            }
        };
        if failed {
            log::warn!(
                "worker priority {self:?}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
