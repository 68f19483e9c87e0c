//! The runtime: how the server's work is spread over threads, and how the
//! expensive part, password hashing, is kept from slowing the chat.
//!
//! Nothing here knows about chat, sockets or the database. The service
//! builds on it (its worker pools, its maps), the server configures it at
//! start (the allocator, the gate's busy-time sources), and it imports
//! neither of them, nor `net`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`workers`] | [`WorkerPool`]: N threads, one FIFO queue each, a job's key picks its thread |
//! | [`delay`] | [`Delay`]: a short job run a little later, on one thread (a held gap's fill) |
//! | [`priority`] | [`Priority`]: a pool thread's nice value or `SCHED_IDLE` class |
//! | [`hash_gate`] | [`HashGate`]: a hash waits while the I/O loops are busy |
//! | [`hash_queue`] | [`HashQueue`]: the hashing threads, their queue fair between addresses and connections |
//! | [`throttle`] | [`Throttle`](throttle::Throttle): at most N per window per key, a doubling cool-down, bounded keys |
//! | [`password`] | [`PasswordHasher`]: argon2id in per-thread reused memory |
//! | [`allocator`] | [`return_large_allocations_to_the_os`]: glibc's mmap threshold |
//! | [`token`] | [`TokenKey`]: resume tokens, HMAC-signed, and their key file |
//! | [`sharded_map`] | [`ShardedMap`]: a hash map in independently locked shards |
//! | [`histogram`] | [`Histogram`]: latency buckets in atomics, for `/metrics` |
//! | [`word_hash`] | [`WordHash`]: a keyed hasher for small integer keys, cheaper than SipHash |
//!
//! # Password hashing, protected in one place
//!
//! An argon2id hash at the default cost takes tens of milliseconds of CPU
//! and writes and reads back 19 MiB. A login storm is hundreds of them. An
//! I/O thread never hashes (it would stop every connection on its loop),
//! but hashing on other threads still competes with the I/O threads for
//! the cores, the caches and the allocator. Four measures keep a storm of
//! logins from slowing the chat of the users already logged in, or from
//! growing the process (docs/benchmarks.md: sections 7 and 10 for the
//! chat's latency, section 8 for the memory):
//!
//! 1. **Own threads, low priority, a fair queue** ([`hash_queue`],
//!    [`priority`]). Hashes run on threads of their own (`--hash-threads`),
//!    apart from the database workers so a login's later phases never
//!    queue behind other hashes, from a queue that serves source addresses
//!    and connections in turn (one client's backlog delays nobody else),
//!    at [`Priority::Idle`] by default (`--hash-priority`): the scheduler
//!    gives them only CPU nothing else wants. On a host that other
//!    programs keep busy the idle class starves, and a nice increment
//!    ([`Priority::Nice`]) still gets a share.
//! 2. **A gate** ([`hash_gate`]). The idle class still fills the short
//!    gaps between the I/O threads' events, and each hash then pushes
//!    their data out of the caches. So before each hash the hashing thread
//!    waits while the I/O loops were more than a quarter busy, for at most
//!    `--hash-max-wait`. The server gives the gate one busy-time source
//!    per I/O loop.
//! 3. **Reused memory** ([`password`]). Each hashing thread keeps its
//!    19 MiB working area instead of mapping and unmapping it per hash,
//!    which cost thousands of page faults and, on `munmap`, a TLB flush
//!    that interrupted every core, the I/O threads' included.
//! 4. **An allocator threshold** ([`allocator`]). glibc served the hashes'
//!    large aligned blocks from the heap and reused them poorly: the
//!    process grew by a hash's size per login. Blocks of 1 MiB or more now
//!    get their own mapping, returned when freed. The server sets this
//!    once, first thing at start.
//!
//! The service uses all four through two calls: `Ctx::on_hasher` submits
//! a job to the hashing pool, whose thread first waits at the gate, and
//! the job hashes with the service's [`PasswordHasher`].

pub mod allocator;
pub mod delay;
pub mod hash_gate;
pub mod hash_queue;
pub mod histogram;
pub mod password;
pub mod priority;
pub mod sharded_map;
pub mod throttle;
pub mod token;
pub mod word_hash;
pub mod workers;

pub use allocator::return_large_allocations_to_the_os;
pub use delay::Delay;
pub use hash_gate::{BusyTime, HashGate};
pub use hash_queue::HashQueue;
pub use histogram::Histogram;
pub use password::PasswordHasher;
pub use priority::Priority;
pub use sharded_map::{Shard, ShardKey, ShardedMap};
pub use token::TokenKey;
pub use word_hash::WordHash;
pub use workers::WorkerPool;
