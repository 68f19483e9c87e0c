//! The service's unit tests: its ordering logic, in milliseconds, without
//! sockets.
//!
//! Each test builds a real [`Service`](super::Service) (real worker and
//! hashing threads, cheap argon2 costs) over an in-memory SQLite store,
//! and talks to it through [`FakePeer`](fake::FakePeer)s instead of TCP
//! connections. A fake peer records every frame the service sends it, and
//! keeps the tasks the service queues on its "own thread" until the test
//! runs them: the test thread plays every peer's I/O thread, so it decides
//! exactly when a login's last step comes back (chat messages go through
//! the real log writer threads; `Client::chat` waits for them). A
//! [`GatedStore`](gated_store::GatedStore) in front of SQLite can hold
//! chosen calls (say, the offline-message read of a login's phase 2) until
//! the test releases them, which pins a login in the phase under test.
//!
//! | file | what it covers |
//! |---|---|
//! | `login.rs` | messages sent during each login phase; requests held behind a login; errno 2 races |
//! | `hold.rs` | requests held behind a login: bytes per session and in total, errno 4 beyond, given back on replay and disconnect |
//! | `disconnect.rs` | a disconnect during each login phase |
//! | `offline.rs` | offline storage, delivery in the login ack, deletion only after the ack, no second delivery when the delete failed |
//! | `hashing.rs` | the hashing pool: a closed connection's jobs are dropped unrun; pending hashes per connection bounded (errno 12) |
//! | `groups.rs` | group fan-out to online and offline members; posts behind a loading member list |
//! | `log.rs` | the message log: seq, acks after commit, cid retries, errors as 28, gap fills, cursors across logins, history permissions |
//! | `identity.rs` | a chat's sender id and name are the logged-in account's |
//! | `limits.rs` | worker jobs per connection and in total bounded (errno 12), a login never refused; the rate limit's `retry_after` |
//! | `takeover.rs` | a login replacing a silent connection: the order across the swap; recent activity, a login under way and `off` still get errno 2 |

mod fake;
mod gated_store;

mod disconnect;
mod gaps;
mod groups;
mod hashing;
mod hold;
mod identity;
mod limits;
mod log;
mod login;
mod offline;
mod sessions;
mod takeover;
