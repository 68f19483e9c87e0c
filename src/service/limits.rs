//! The service's limits on what one client may ask for: how fast
//! (rate limits), how much at once (worker jobs in flight) and how much
//! it may keep (quotas).
//!
//! | limit | option | default | over it |
//! |---|---|---|---|
//! | worker jobs of one connection's requests | `--max-pending-requests` | 64 | errno 12 in the request's ack |
//! | worker jobs of all requests | `--worker-queue` | 65536 | errno 12 in the request's ack |
//! | chat messages (9, 13) per second, per connection | `--chat-rate`, `--chat-burst` | 1000/s, 2000 | errno 12, `retry_after` |
//! | other requests per second, per connection | `--request-rate`, `--request-burst` | 1000/s, 2000 | errno 12, `retry_after` |
//! | friends of one user | `--max-friends` | 1000 | errno 13 |
//! | groups one user created (and still exist) | `--max-groups-created` | 100 | errno 13 |
//! | groups one user is a member of | `--max-groups-joined` | 500 | errno 13 |
//! | members of one group | `--max-group-size` | 2000 | errno 13 |
//! | one-to-one messages waiting for one recipient | `--max-pending-per-recipient` | 100000 | errno 13 (see [`super::msglog`]'s quota) |
//!
//! 0 turns a limit or quota off (a rate of 0: no rate limit); the bursts
//! and `--worker-queue` are at least 1.
//!
//! # Refuse, or stop reading?
//!
//! A connection over its worker jobs could instead be left unread until
//! they drain (backpressure through TCP). Refusing was chosen: the
//! connection's other traffic (chat, pings, the answers to what it asked)
//! keeps flowing, a well-behaved client never reaches 64 requests without
//! an answer, and the refusal names the cause, where a stalled socket
//! would look like a slow server. The cost is that a client must handle
//! errno 12; the original's client shows it like any other error.
//!
//! # Threads
//!
//! The limits are atomics, written once at start
//! ([`Service::set_limits`](super::Service::set_limits)) and read with
//! relaxed loads: the I/O threads read them on every request without
//! sharing a written cache line. Rate checks run on the peer's own
//! thread, against the buckets in its session; quota checks run on the
//! user's worker, against the store.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::session::bucket::retry_after_secs;
use super::session::{Bucket, Rate};
use super::{Ctx, Service, Session};
use crate::protocol::{errno, reply};
use crate::runtime::workers::DEFAULT_MAX_REQUESTS;

/// The limits as configured; see the [module docs](self) for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// `--max-pending-requests`.
    pub max_pending_requests: u32,
    /// `--worker-queue`.
    pub worker_queue: usize,
    /// `--chat-rate`, `--chat-burst`.
    pub chat: Rate,
    /// `--request-rate`, `--request-burst`.
    pub request: Rate,
    /// `--max-friends`.
    pub max_friends: u32,
    /// `--max-groups-created`.
    pub max_groups_created: u32,
    /// `--max-groups-joined`.
    pub max_groups_joined: u32,
    /// `--max-group-size`.
    pub max_group_size: u32,
    /// `--max-pending-per-recipient`.
    pub max_pending_per_recipient: u64,
}

/// Default `--max-pending-requests`.
pub const DEFAULT_MAX_PENDING_REQUESTS: u32 = 64;
/// Default `--chat-rate` and `--request-rate`: far above what a person
/// types, and above the ~150 messages a second per user of the 1,000-user
/// benchmark.
pub const DEFAULT_RATE: u32 = 1_000;
/// Default `--chat-burst` and `--request-burst`.
pub const DEFAULT_BURST: u32 = 2_000;
/// Default `--max-friends`.
pub const DEFAULT_MAX_FRIENDS: u32 = 1_000;
/// Default `--max-groups-created`.
pub const DEFAULT_MAX_GROUPS_CREATED: u32 = 100;
/// Default `--max-groups-joined`.
pub const DEFAULT_MAX_GROUPS_JOINED: u32 = 500;
/// Default `--max-group-size`.
pub const DEFAULT_MAX_GROUP_SIZE: u32 = 2_000;
/// Default `--max-pending-per-recipient`.
pub const DEFAULT_MAX_PENDING_PER_RECIPIENT: u64 = 100_000;

impl Default for LimitSettings {
    fn default() -> Self {
        let rate = Rate {
            per_second: DEFAULT_RATE,
            burst: DEFAULT_BURST,
        };
        LimitSettings {
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            worker_queue: DEFAULT_MAX_REQUESTS,
            chat: rate,
            request: rate,
            max_friends: DEFAULT_MAX_FRIENDS,
            max_groups_created: DEFAULT_MAX_GROUPS_CREATED,
            max_groups_joined: DEFAULT_MAX_GROUPS_JOINED,
            max_group_size: DEFAULT_MAX_GROUP_SIZE,
            max_pending_per_recipient: DEFAULT_MAX_PENDING_PER_RECIPIENT,
        }
    }
}

/// The limits in force, readable from any thread without contention.
#[derive(Debug)]
pub struct Limits {
    max_pending_requests: AtomicU32,
    chat_rate: AtomicU32,
    chat_burst: AtomicU32,
    request_rate: AtomicU32,
    request_burst: AtomicU32,
    max_friends: AtomicU32,
    max_groups_created: AtomicU32,
    max_groups_joined: AtomicU32,
    max_group_size: AtomicU32,
    max_pending_per_recipient: AtomicU64,
}

impl Default for Limits {
    fn default() -> Self {
        let l = Limits {
            max_pending_requests: AtomicU32::new(0),
            chat_rate: AtomicU32::new(0),
            chat_burst: AtomicU32::new(0),
            request_rate: AtomicU32::new(0),
            request_burst: AtomicU32::new(0),
            max_friends: AtomicU32::new(0),
            max_groups_created: AtomicU32::new(0),
            max_groups_joined: AtomicU32::new(0),
            max_group_size: AtomicU32::new(0),
            max_pending_per_recipient: AtomicU64::new(0),
        };
        l.set(&LimitSettings::default());
        l
    }
}

/// A stored amount a quota bounds, for [`Limits::quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Friends of one user.
    Friends,
    /// Groups one user created.
    GroupsCreated,
    /// Groups one user is a member of.
    GroupsJoined,
    /// Members of one group.
    GroupSize,
}

impl Limits {
    /// Puts `s` in force; any thread (the server calls it once, at start).
    pub fn set(&self, s: &LimitSettings) {
        let r = Ordering::Relaxed;
        self.max_pending_requests.store(s.max_pending_requests, r);
        self.chat_rate.store(s.chat.per_second, r);
        self.chat_burst.store(s.chat.burst, r);
        self.request_rate.store(s.request.per_second, r);
        self.request_burst.store(s.request.burst, r);
        self.max_friends.store(s.max_friends, r);
        self.max_groups_created.store(s.max_groups_created, r);
        self.max_groups_joined.store(s.max_groups_joined, r);
        self.max_group_size.store(s.max_group_size, r);
        self.max_pending_per_recipient
            .store(s.max_pending_per_recipient, r);
    }

    /// The rate of `bucket`; any thread.
    pub fn rate(&self, bucket: Bucket) -> Rate {
        let r = Ordering::Relaxed;
        match bucket {
            Bucket::Chat => Rate {
                per_second: self.chat_rate.load(r),
                burst: self.chat_burst.load(r),
            },
            Bucket::Request => Rate {
                per_second: self.request_rate.load(r),
                burst: self.request_burst.load(r),
            },
        }
    }

    /// `--max-pending-requests` (0: none); any thread.
    pub fn max_pending_requests(&self) -> u32 {
        self.max_pending_requests.load(Ordering::Relaxed)
    }

    /// The maximum of `q` (0: none); any thread.
    pub fn quota(&self, q: Quota) -> u32 {
        let r = Ordering::Relaxed;
        match q {
            Quota::Friends => self.max_friends.load(r),
            Quota::GroupsCreated => self.max_groups_created.load(r),
            Quota::GroupsJoined => self.max_groups_joined.load(r),
            Quota::GroupSize => self.max_group_size.load(r),
        }
    }

    /// `--max-pending-per-recipient` (0: none); any thread.
    pub fn max_pending_per_recipient(&self) -> u64 {
        self.max_pending_per_recipient.load(Ordering::Relaxed)
    }
}

/// `true` when `count` already fills a quota of `max` (0: no quota).
pub fn is_full(count: u64, max: u32) -> bool {
    max > 0 && count >= u64::from(max)
}

/// Takes a token from the session's `bucket`; when there is none, answers
/// the request with [`throttled`] and returns `true`: the request must not
/// be handled. The peer's own thread; O(1).
pub fn rate_limited(ctx: &Ctx, bucket: Bucket, cid: Option<&str>) -> bool {
    let Some(wait) = over_rate(&ctx.svc, &ctx.session, bucket) else {
        return false;
    };
    ctx.send(&throttled(Some(ctx.req), cid, bucket, wait));
    true
}

/// Takes a token from `session`'s `bucket`: `None` when there was one,
/// else how long until there is. The peer's own thread; O(1).
pub fn over_rate(svc: &Service, session: &Session, bucket: Bucket) -> Option<Duration> {
    let rate = svc.limits.rate(bucket);
    session.take_token(bucket, rate, Instant::now()).err()
}

/// The refusal of a request over its rate: its ack (or 27 naming `req`;
/// 28 for a chat message with a cid, as
/// [`msglog::refuse`](super::msglog::refuse) answers) with errno 12 and
/// `retry_after`, the seconds until a token is there (fractional, see
/// [`retry_after_secs`]).
pub fn throttled(req: Option<i64>, cid: Option<&str>, bucket: Bucket, wait: Duration) -> Value {
    let what = match bucket {
        Bucket::Chat => "too many chat messages; slow down and send again later",
        Bucket::Request => "too many requests; slow down and try again later",
    };
    let mut v = reply::failure_for(req, cid, errno::TOO_MANY, what);
    v["retry_after"] = retry_after_secs(wait).into();
    v
}

/// Answers a request refused by quota `q` (errno 13); any thread.
pub fn refuse_quota(ctx: &Ctx, q: Quota, max: u32) {
    let what = match q {
        Quota::Friends => format!("you have {max} friends, the most allowed; remove one first"),
        Quota::GroupsCreated => {
            format!("you created {max} groups, the most allowed; dismiss one first")
        }
        Quota::GroupsJoined => {
            format!("you are in {max} groups, the most allowed; quit one first")
        }
        Quota::GroupSize => format!("the group has {max} members, the most allowed"),
    };
    ctx.fail(errno::QUOTA, &what);
}
