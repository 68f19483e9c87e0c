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
//! # Busy time
//!
//! Not in muduo: each loop adds up the time it spends between a poll's
//! return and the next poll (handling events, timers and queued closures),
//! readable from any thread with [`EventLoopHandle::busy_time`]. Sampled
//! twice, it says what fraction of the interval the loop was working,
//! which lets background work (password hashing, say) stay out of the way
//! of a busy server. The iteration under way counts too, up to the moment
//! of reading, so a long iteration (or a loop thread the scheduler has
//! preempted in the middle of one) shows as busy at once, not only when it
//! ends.
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
    /// Nanoseconds spent handling finished iterations (see "Busy time").
    busy_nanos: AtomicU64,
    /// When the iteration under way began, in nanoseconds after `clock`
    /// plus one; 0 while the loop waits in poll.
    busy_since: AtomicU64,
    /// The origin of `busy_since`.
    clock: Instant,
}

/// A thread-safe reference to an [`EventLoop`].
///
/// Every method may be called from any thread.
#[derive(Clone)]
pub struct EventLoopHandle {
    shared: Arc<Shared>,
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
    iteration: u64,
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
                busy_nanos: AtomicU64::new(0),
                busy_since: AtomicU64::new(0),
                clock: Instant::now(),
            }),
            active: Vec::with_capacity(64),
            deferred: Vec::new(),
            iteration: 0,
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
            // Deferred work means "poll, but do not sleep".
            let timeout = if self.deferred.is_empty() {
                self.timers.next_timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            let mut active = std::mem::take(&mut self.active);
            active.clear();
            self.poll_return_time = match self.poller.poll(timeout, &mut active) {
                Ok(now) => now,
                Err(e) => {
                    log::error!("EventLoop {} poll: {}", self.shared.id, e);
                    Instant::now()
                }
            };
            self.begin_busy();
            self.iteration += 1;
            let deferred = std::mem::take(&mut self.deferred);
            for ev in active.iter().chain(deferred.iter()) {
                self.dispatch(ev.token, ev.ready);
            }
            self.active = active;
            let expired = self.timers.take_expired(Instant::now());
            expired.run(self);
            self.do_pending_functors();
            self.end_busy();
        }
        // Closures queued before the quit (a server closing its connections
        // as it stops, say) still run, so their callbacks are not lost.
        self.do_pending_functors();
        self.shared.quit.store(false, Ordering::Release);
        log::trace!("EventLoop {} stop looping", self.shared.id);
    }

    /// Marks the start of an iteration's work, for readers of the busy
    /// time on other threads.
    fn begin_busy(&self) {
        let since = self
            .poll_return_time
            .saturating_duration_since(self.shared.clock);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
        self.shared.busy_since.store(nanos + 1, Ordering::Release);
    }

    /// Ends an iteration's work: its time, since the poll returned, moves
    /// from "under way" to the total. A reader in between may see neither
    /// for a moment.
    fn end_busy(&self) {
        self.shared.busy_since.store(0, Ordering::Release);
        let spent = self.poll_return_time.elapsed();
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.shared.busy_nanos.fetch_add(nanos, Ordering::Release);
    }

    /// Asks the loop to return from [`EventLoop::run`] after this iteration.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
    }

    /// Runs `f` now: the caller is on the loop thread by construction.
    /// (muduo's `runInLoop` from inside the loop.)
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
        self.poller.add_channel(source, interest, handler)
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
        self.poller.remove_channel(source, token)
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
        self.iteration
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

    fn do_pending_functors(&mut self) {
        self.shared.calling_pending.store(true, Ordering::Release);
        let functors = std::mem::take(&mut *self.shared.pending.lock());
        for f in functors {
            f(self);
        }
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

impl EventLoopHandle {
    /// A number unique to this loop in the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// `true` on the thread that runs this loop.
    pub fn is_in_loop_thread(&self) -> bool {
        LOOP_IN_THIS_THREAD.with(Cell::get) == self.shared.id
    }

    /// Panics off the loop thread (muduo's `assertInLoopThread`).
    pub fn assert_in_loop_thread(&self) {
        assert!(
            self.is_in_loop_thread(),
            "EventLoop {} used from another thread",
            self.shared.id
        );
    }

    /// Queues `f` to run on the loop thread, waking the loop if needed.
    ///
    /// Closures run in the order they were queued. Unlike muduo's
    /// `runInLoop`, this never runs `f` before returning, even on the loop
    /// thread (it has no `&mut EventLoop` to give it); code that holds the
    /// loop calls [`EventLoop::run_in_loop`] instead.
    pub fn queue_in_loop<F: FnOnce(&mut EventLoop) + Send + 'static>(&self, f: F) {
        let was_empty = {
            let mut pending = self.shared.pending.lock();
            pending.push(Box::new(f));
            pending.len() == 1
        };
        let from_outside = !self.is_in_loop_thread();
        if (was_empty && from_outside) || self.shared.calling_pending.load(Ordering::Acquire) {
            self.wakeup();
        }
    }

    /// Same as [`EventLoopHandle::queue_in_loop`]; named after muduo's
    /// `runInLoop` for readers following the C++.
    pub fn run_in_loop<F: FnOnce(&mut EventLoop) + Send + 'static>(&self, f: F) {
        self.queue_in_loop(f)
    }

    /// Makes the loop return from `run` after its current iteration.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        if !self.is_in_loop_thread() {
            self.wakeup();
        }
    }

    /// Total time this loop has spent handling events, timers and queued
    /// closures, as opposed to waiting in poll, the iteration under way
    /// included. See the module's "Busy time".
    ///
    /// Read while an iteration ends, it can come out short by that
    /// iteration for a moment; the next read makes up for it.
    pub fn busy_time(&self) -> Duration {
        let shared = &self.shared;
        let done = shared.busy_nanos.load(Ordering::Acquire);
        let since = shared.busy_since.load(Ordering::Acquire);
        let under_way = match since {
            0 => 0,
            start => {
                let now = shared.clock.elapsed().as_nanos();
                u64::try_from(now.saturating_sub(u128::from(start - 1))).unwrap_or(u64::MAX)
            }
        };
        Duration::from_nanos(done.saturating_add(under_way))
    }

    /// Interrupts the loop's poll.
    pub fn wakeup(&self) {
        if let Err(e) = self.shared.waker.wake() {
            log::error!("EventLoop {} wakeup: {}", self.shared.id, e);
        }
    }

    /// Closures queued and not yet run.
    pub fn queue_size(&self) -> usize {
        self.shared.pending.lock().len()
    }

    /// Runs `cb` once at `when`, on the loop thread.
    pub fn run_at<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        when: Instant,
        cb: F,
    ) -> TimerId {
        let id = new_timer_id();
        self.queue_in_loop(move |lp| lp.timers.add(id, when, None, Box::new(cb)));
        id
    }

    /// Runs `cb` once after `delay`, on the loop thread.
    pub fn run_after<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        delay: Duration,
        cb: F,
    ) -> TimerId {
        self.run_at(Instant::now() + delay, cb)
    }

    /// Runs `cb` every `interval`, on the loop thread.
    pub fn run_every<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        interval: Duration,
        cb: F,
    ) -> TimerId {
        let id = new_timer_id();
        let first = Instant::now() + interval;
        self.queue_in_loop(move |lp| lp.timers.add(id, first, Some(interval), Box::new(cb)));
        id
    }

    /// Cancels a timer from any thread.
    pub fn cancel(&self, id: TimerId) {
        self.queue_in_loop(move |lp| lp.cancel(id));
    }
}

impl std::fmt::Debug for EventLoopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventLoopHandle({})", self.shared.id)
    }
}
