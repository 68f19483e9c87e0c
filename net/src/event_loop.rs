//! `EventLoop`: the reactor, one per thread, as muduo's `EventLoop`.
//!
//! A loop waits on its [`Poller`], dispatches each ready source to its
//! [`Channel`](crate::Channel), runs the timers that expired, then runs the
//! closures other threads queued for it; and again, until [`quit`].
//!
//! ```text
//!  run():  loop {
//!            timeout = earliest timer deadline
//!            poll(timeout)  ──► active events ──► channel.handle_event()
//!            run expired timers
//!            run pending functors (swapped out under the lock)
//!          }
//! ```
//!
//! # Threads
//!
//! "One loop per thread": an `EventLoop` is created on the thread that will
//! run it, and is neither `Send` nor `Sync`, so the compiler keeps it there
//! (muduo checks this at run time with `assertInLoopThread`). A second loop
//! on the same thread is refused.
//!
//! Other threads talk to the loop through an [`EventLoopHandle`] (cheap to
//! clone, `Send + Sync`): they queue closures with
//! [`EventLoopHandle::queue_in_loop`], add timers, or ask it to quit. A
//! queued closure receives `&mut EventLoop` when it runs, where muduo's
//! `std::bind` captured a raw `this`.
//!
//! # Wake-ups
//!
//! muduo wakes a sleeping loop by writing to an `eventfd`; here each loop
//! has one `mio::Waker` (an eventfd on Linux). A queued closure wakes the
//! loop only when needed: when it is the first one queued since the loop
//! last took the queue, or while the loop is running its queue (the new one
//! would otherwise wait for the next event).
//!
//! # `run_in_loop` and `queue_in_loop`
//!
//! As in muduo, [`EventLoopHandle::run_in_loop`] runs its closure at once
//! when called on the loop's own thread and queues it otherwise;
//! [`EventLoopHandle::queue_in_loop`] always queues, and its closure gets
//! `&mut EventLoop`. Code that already holds the loop calls
//! [`EventLoop::run_in_loop`], which runs at once with the loop.
//!
//! # Statistics
//!
//! Not in muduo: [`EventLoopHandle::stats`] tells, from any thread and
//! without a lock, how busy the loop has been, how many iterations,
//! wake-ups and closures it has had, and how many channels and timers it
//! holds (see [`LoopStats`]). The chat server samples the busy time to
//! hold password hashing back while its I/O loops work.
//!
//! [`quit`]: EventLoopHandle::quit

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{event::Source, Interest, Token, Waker};
use parking_lot::Mutex;

use crate::channel::{ChannelHandler, Ready};
use crate::poller::{ActiveEvent, Poller, WAKER_TOKEN};
use crate::timer_queue::{TimerId, TimerQueue};

mod handle;
mod stats;

pub use handle::EventLoopHandle;
use stats::Counters;
pub use stats::LoopStats;

/// A closure queued for a loop; it runs on the loop's thread.
pub type Functor = Box<dyn FnOnce(&mut EventLoop) + Send>;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_TIMER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Id of the loop created on this thread, 0 if none (muduo's
    /// `t_loopInThisThread`).
    static LOOP_IN_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// The part of a loop other threads may touch.
struct Shared {
    id: u64,
    waker: Waker,
    pending: Mutex<Vec<Functor>>,
    calling_pending: AtomicBool,
    quit: AtomicBool,
    /// What [`EventLoopHandle::stats`] reports.
    counters: Counters,
}

/// The reactor. See the [module documentation](self).
pub struct EventLoop {
    poller: Poller,
    timers: TimerQueue,
    shared: Arc<Shared>,
    active: Vec<ActiveEvent>,
    /// Events handlers asked to have dispatched again next iteration
    /// (see [`EventLoop::defer_event`]).
    deferred: Vec<ActiveEvent>,
    poll_return_time: Instant,
    /// Neither `Send` nor `Sync`: a loop stays on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl EventLoop {
    /// Creates the loop of the current thread.
    ///
    /// # Errors
    /// If this thread already has a loop, or the poller cannot be created.
    pub fn new() -> io::Result<EventLoop> {
        if LOOP_IN_THIS_THREAD.with(Cell::get) != 0 {
            return Err(io::Error::other(
                "another EventLoop already exists in this thread",
            ));
        }
        let poller = Poller::new()?;
        let waker = Waker::new(poller.registry(), WAKER_TOKEN)?;
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        LOOP_IN_THIS_THREAD.with(|c| c.set(id));
        log::debug!(
            "EventLoop {} created in thread {:?}",
            id,
            std::thread::current().name()
        );
        Ok(EventLoop {
            poller,
            timers: TimerQueue::default(),
            shared: Arc::new(Shared {
                id,
                waker,
                pending: Mutex::new(Vec::new()),
                calling_pending: AtomicBool::new(false),
                quit: AtomicBool::new(false),
                counters: Counters::new(),
            }),
            active: Vec::with_capacity(64),
            deferred: Vec::new(),
            poll_return_time: Instant::now(),
            _not_send: PhantomData,
        })
    }

    /// A number unique to this loop in the process (see [`EventLoopHandle::id`]).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// A handle other threads can use to reach this loop.
    pub fn handle(&self) -> EventLoopHandle {
        EventLoopHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs the loop until [`EventLoop::quit`] or [`EventLoopHandle::quit`].
    ///
    /// Closures queued before `run` run first. After `run` returns the loop
    /// can be run again.
    pub fn run(&mut self) {
        log::trace!("EventLoop {} start looping", self.shared.id);
        self.do_pending_functors();
        while !self.shared.quit.load(Ordering::Acquire) {
            // Sleep until the earliest timer is due, or until an event or a
            // wake-up comes. Deferred work means "poll, but do not sleep".
            let timeout = if self.deferred.is_empty() {
                self.timers.next_timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            // The event list is reused across iterations: no allocation.
            let mut active = std::mem::take(&mut self.active);
            active.clear();
            self.poll_return_time = match self.poller.poll(timeout, &mut active) {
                Ok(now) => now,
                Err(e) => {
                    log::error!("EventLoop {} poll: {}", self.shared.id, e);
                    Instant::now()
                }
            };
            // From here to the end of the iteration the loop counts as busy.
            self.shared.counters.begin_iteration(self.poll_return_time);
            // muduo's `activeChannels_`: hand each ready source to its
            // channel, then the events handlers deferred last time (a
            // connection that stopped reading to let the others have a turn).
            let deferred = std::mem::take(&mut self.deferred);
            for ev in active.iter().chain(deferred.iter()) {
                self.dispatch(ev.token, ev.ready);
            }
            self.active = active;
            // Timers that came due while we slept or worked.
            let expired = self.timers.take_expired(Instant::now());
            expired.run(self);
            // Last, what other threads (or this iteration's handlers) queued.
            self.do_pending_functors();
            let timers = self.timers.len();
            self.shared
                .counters
                .end_iteration(self.poll_return_time, timers);
        }
        // Closures queued before the quit (a server closing its connections
        // as it stops, say) still run, so their callbacks are not lost.
        self.do_pending_functors();
        self.shared.quit.store(false, Ordering::Release);
        log::trace!("EventLoop {} stop looping", self.shared.id);
    }

    /// Asks the loop to return from [`EventLoop::run`] after this iteration.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
    }

    /// Runs `f` now, with the loop: the caller is on the loop thread by
    /// construction (muduo's `runInLoop` from inside the loop).
    pub fn run_in_loop<F: FnOnce(&mut EventLoop)>(&mut self, f: F) {
        f(self)
    }

    /// Queues `f` to run after the current iteration's events and timers.
    pub fn queue_in_loop<F: FnOnce(&mut EventLoop) + Send + 'static>(&self, f: F) {
        self.handle().queue_in_loop(f)
    }

    /// Always `true`: an `EventLoop` cannot leave its thread. Provided so
    /// code reads like muduo's.
    pub fn is_in_loop_thread(&self) -> bool {
        LOOP_IN_THIS_THREAD.with(Cell::get) == self.shared.id
    }

    /// Panics if called off the loop thread (cannot happen for `&EventLoop`,
    /// but documents the rule where muduo calls `assertInLoopThread`).
    pub fn assert_in_loop_thread(&self) {
        assert!(
            self.is_in_loop_thread(),
            "EventLoop used outside its thread"
        );
    }

    /// Runs `cb` once at `when`.
    pub fn run_at<F: FnMut(&mut EventLoop) + 'static>(&mut self, when: Instant, cb: F) -> TimerId {
        let id = new_timer_id();
        self.timers.add(id, when, None, Box::new(cb));
        id
    }

    /// Runs `cb` once after `delay`.
    pub fn run_after<F: FnMut(&mut EventLoop) + 'static>(
        &mut self,
        delay: Duration,
        cb: F,
    ) -> TimerId {
        self.run_at(Instant::now() + delay, cb)
    }

    /// Runs `cb` every `interval`, the first time after one interval.
    pub fn run_every<F: FnMut(&mut EventLoop) + 'static>(
        &mut self,
        interval: Duration,
        cb: F,
    ) -> TimerId {
        let id = new_timer_id();
        self.timers
            .add(id, Instant::now() + interval, Some(interval), Box::new(cb));
        id
    }

    /// Cancels a timer; a timer that already fired (once) is ignored.
    pub fn cancel(&mut self, id: TimerId) {
        self.timers.cancel(id)
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Registers `source` with this loop's poller (see [`Poller::add_channel`]).
    ///
    /// # Errors
    /// The `epoll_ctl` error.
    pub fn add_channel<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
        handler: Box<dyn ChannelHandler>,
    ) -> io::Result<Token> {
        let token = self.poller.add_channel(source, interest, handler)?;
        self.count_channels();
        Ok(token)
    }

    /// Changes the interest of a registered source.
    ///
    /// # Errors
    /// The `epoll_ctl` error.
    pub fn update_channel<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.poller.update_channel(source, token, interest)
    }

    /// Deregisters `source` and drops its channel (after the current dispatch
    /// if the channel is the one running).
    pub fn remove_channel<S: Source + ?Sized>(&mut self, source: &mut S, token: Token) {
        self.poller.remove_channel(source, token);
        self.count_channels();
    }

    /// Publishes the channel count for [`EventLoopHandle::stats`].
    fn count_channels(&self) {
        let n = self.poller.channel_count();
        self.shared.counters.channels.store(n, Ordering::Relaxed);
    }

    /// `true` while a channel is registered under `token`.
    pub fn has_channel(&self, token: Token) -> bool {
        self.poller.has_channel(token)
    }

    /// Number of registered channels (connections, listeners, connectors).
    pub fn channel_count(&self) -> usize {
        self.poller.channel_count()
    }

    /// Dispatches `ready` to the channel under `token` as if the poller had
    /// reported it. Used to retry work an edge-triggered poller will not
    /// report again (the acceptor after `EMFILE`).
    pub fn fire_channel(&mut self, token: Token, ready: Ready) {
        self.dispatch(token, ready);
    }

    /// Asks for `ready` to be dispatched to the channel under `token` again
    /// in the next iteration, after that iteration's (non-blocking) poll.
    ///
    /// An edge-triggered poller reports a socket once per edge, so a handler
    /// that stops before draining it — to give other channels their turn —
    /// must ask to be called again. `TcpConnection` does so after reading
    /// a bounded amount from one busy peer.
    pub fn defer_event(&mut self, token: Token, ready: Ready) {
        self.deferred.push(ActiveEvent { token, ready });
    }

    /// How many times the loop has polled.
    pub fn iteration(&self) -> u64 {
        self.shared.counters.iterations()
    }

    /// When the last poll returned (muduo's `pollReturnTime`).
    pub fn poll_return_time(&self) -> Instant {
        self.poll_return_time
    }

    pub(crate) fn timer_queue_mut(&mut self) -> &mut TimerQueue {
        &mut self.timers
    }

    fn dispatch(&mut self, token: Token, ready: Ready) {
        if token == WAKER_TOKEN {
            return; // the wake-up only ends the poll; the queue runs below
        }
        // A stale event for a channel removed earlier in this iteration.
        let Some(mut taken) = self.poller.take_channel(token) else {
            return;
        };
        let now = self.poll_return_time;
        taken.channel.handle_event(self, ready, now);
        self.poller.restore_channel(taken);
    }

    /// Runs the queued closures, as muduo's `doPendingFunctors`: the queue
    /// is swapped out under the lock and run with the lock released, so a
    /// closure may queue more (they run in the next iteration) and other
    /// threads are never held up by a slow closure.
    fn do_pending_functors(&mut self) {
        // While this flag is up, queueing wakes the loop: what is queued
        // now would otherwise wait for the next event.
        self.shared.calling_pending.store(true, Ordering::Release);
        let functors = {
            let mut pending = self.shared.pending.lock();
            self.shared.counters.pending.store(0, Ordering::Relaxed);
            std::mem::take(&mut *pending)
        };
        let n = functors.len() as u64;
        for f in functors {
            f(self);
        }
        let counters = &self.shared.counters;
        counters.functors_run.fetch_add(n, Ordering::Relaxed);
        self.shared.calling_pending.store(false, Ordering::Release);
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        LOOP_IN_THIS_THREAD.with(|c| c.set(0));
    }
}

fn new_timer_id() -> TimerId {
    TimerId(NEXT_TIMER_ID.fetch_add(1, Ordering::Relaxed))
}
