//! [`Checkpointer`]: copies a SQLite store's write-ahead log back into the
//! database file on a thread of its own, so that the log writers never do.
//!
//! In WAL mode a commit only appends pages to the `-wal` file; a
//! *checkpoint* copies them into the database and lets the WAL start over.
//! By default the commit that crosses `wal_autocheckpoint` pages does it,
//! inline: with the message log that commit is a chat batch, and every
//! message in flight waits for tens of megabytes to be copied and synced.
//! Here a second connection runs a `PASSIVE` checkpoint every
//! [`INTERVAL`] instead: it copies what no reader still needs, takes no
//! lock a writer waits for, and the writers' commits stay short.
//! (`wal_autocheckpoint` stays on, much higher, as a bound should this
//! thread fall behind.)

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use rusqlite::Connection;

/// How often the WAL is copied back.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The thread, stopped and joined on drop.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode)
    /// through a connection of its own.
    ///
    /// # Errors
    /// When the connection cannot be opened or the thread not started.
    pub fn start(path: &Path, busy_timeout: Duration) -> std::io::Result<Checkpointer> {
        let conn = Connection::open(path)
            .and_then(|c| c.busy_timeout(busy_timeout).map(|()| c))
            .map_err(std::io::Error::other)?;
        let (stop, stopped) = bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("chat-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    match done {
                        Ok((log, copied)) => log::trace!("checkpoint: {copied} of {log} pages"),
                        Err(e) => log::warn!("checkpoint: {e}"),
                    }
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the checkpoint thread panicked");
            }
        }
    }
}
