//! `EventLoopThread`: a thread running one loop, as muduo's `EventLoopThread`.
//!
//! [`EventLoopThread::start_loop`] spawns the thread, which creates its
//! [`EventLoop`] (a loop must be created on the thread that runs it), runs
//! the optional init callback, reports the loop's handle back, then runs the
//! loop. Dropping the `EventLoopThread` quits the loop and joins the thread.

use std::io;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::event_loop::{EventLoop, EventLoopHandle};

/// Run on each new loop's thread before it starts looping (muduo's
/// `ThreadInitCallback`): a place to create per-loop state.
pub type ThreadInitCallback = Arc<dyn Fn(&mut EventLoop) + Send + Sync>;

/// A thread that runs an event loop.
pub struct EventLoopThread {
    name: String,
    init: Option<ThreadInitCallback>,
    handle: Option<EventLoopHandle>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoopThread {
    /// A thread named `name`, not started yet.
    pub fn new(name: impl Into<String>, init: Option<ThreadInitCallback>) -> Self {
        EventLoopThread {
            name: name.into(),
            init,
            handle: None,
            thread: None,
        }
    }

    /// Starts the thread and returns its loop's handle once the loop exists.
    ///
    /// # Errors
    /// If the thread cannot be spawned or its loop cannot be created.
    pub fn start_loop(&mut self) -> io::Result<EventLoopHandle> {
        if let Some(h) = &self.handle {
            return Ok(h.clone());
        }
        let (tx, rx) = mpsc::channel();
        let init = self.init.clone();
        let thread = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                let mut lp = match EventLoop::new() {
                    Ok(lp) => lp,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Some(init) = init {
                    init(&mut lp);
                }
                if tx.send(Ok(lp.handle())).is_ok() {
                    lp.run();
                }
            })?;
        let handle = rx
            .recv()
            .map_err(|_| io::Error::other("event loop thread died before starting"))??;
        self.thread = Some(thread);
        self.handle = Some(handle.clone());
        Ok(handle)
    }

    /// The loop's handle, once started.
    pub fn handle(&self) -> Option<&EventLoopHandle> {
        self.handle.as_ref()
    }
}

impl Drop for EventLoopThread {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.quit();
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("event loop thread {} panicked", self.name);
            }
        }
    }
}
