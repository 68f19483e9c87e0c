//! `Tick`: what one publisher tick sends — the calls drained from the queue
//! (at most `MAX_BATCH`), turned into one pipeline.
//!
//! ```text
//!   queue:  P(7) P(9) Claim(4) P(7) Many([7, 12, 30]) P(5)
//!   routes: 7 → [b]   9 → miss   12 → [c]   30 → []   5 → [b]
//!
//!   pipeline: EVALSHA route(9) · EVALSHA claim(4)
//!             · PUBLISH node:b ⟨user 7, user 7, group [7], user 5⟩
//!             · PUBLISH node:c ⟨group [12]⟩           (30: stored at once)
//! ```
//!
//! * A message whose recipient the route cache knows is appended to its
//!   destination node's [`Frame`]; each frame is one `PUBLISH` at the end of
//!   the tick, or earlier once it passes [`FRAME_BOUND`]. A negative entry
//!   (the user is on no live node) stores it at once, as the script's `-1`
//!   would.
//! * A miss goes through the `route` script, in queue order, and its
//!   answer fills the cache (with the generation read *now*, before the
//!   script is sent, so that a presence event in between refuses it).
//! * **Per recipient, one path per tick**: the first lookup of a uid is
//!   remembered for the rest of the tick, so all of a uid's messages in a
//!   tick go either into frames (in order) or through scripts (in order),
//!   never some each way, which could reorder them. Across ticks order
//!   holds because ticks are sequential on one connection.
//! * A confirmation of another node's barrier (`Seen`) joins that node's
//!   frame too: a burst of logins elsewhere costs one `PUBLISH` per node
//!   and tick here, not one per login.
//! * A claim arms a barrier (`barrier.rs`): its script's presence event
//!   tells every node to forget the user's route, and the claim's answer
//!   waits for every subscribed node's confirmation, this node's own
//!   subscriber included. A claim or release also forgets the route here
//!   at once: a fill planned before it in this tick is refused (its
//!   script's answer predates the change); one planned after it is not
//!   (its script runs after the claim's, in the same pipeline).
//! * While the subscriber is not subscribed the cache is neither read nor
//!   filled: this node would miss presence events, and the other nodes'
//!   claims would not wait for it.
//!
//! Nothing waits for more input: a tick is whatever was queued when the
//! publisher looked, so a lone message goes out at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::Call;
use crate::cluster::barrier::Done;
use crate::cluster::envelope::Frame;
use crate::cluster::routes::Nodes;
use crate::cluster::shared::{Counters, Shared};
use crate::cluster::Claim;

/// A frame this long (bytes) is published without waiting for the end of
/// the tick: Redis and the subscribers handle one value at a time.
pub(crate) const FRAME_BOUND: usize = 256 * 1024;

/// A claim's barrier: its token, and the answer the barrier delivers.
pub(crate) struct Armed {
    pub(crate) token: u64,
    pub(crate) answer: Arc<Mutex<Claim>>,
}

/// One command of the tick's pipeline, with what its reply answers.
pub(crate) enum Step {
    /// A call sent as its own command. `armed`: a claim's barrier;
    /// `fill`: a publish by script whose answer fills the route cache
    /// (the generation read before sending).
    Call {
        call: Call,
        armed: Option<Armed>,
        fill: Option<u64>,
    },
    /// One `PUBLISH` of a frame to `node`.
    Frame {
        node: String,
        frame: Vec<u8>,
        recipients: u64,
    },
}

/// The plan of one tick. See the [module docs](self).
pub(crate) struct Tick<'a> {
    shared: &'a Shared,
    pub(crate) steps: Vec<Step>,
    /// The route each uid of this tick took (`None`: the script).
    memo: HashMap<i64, Option<Nodes>>,
    /// Each destination node's frame (a cluster has few nodes: a list).
    frames: Vec<(String, Frame)>,
}

impl<'a> Tick<'a> {
    /// Plans `calls`, in order.
    pub(crate) fn plan(shared: &'a Shared, calls: Vec<Call>) -> Tick<'a> {
        let mut t = Tick {
            shared,
            steps: Vec::with_capacity(calls.len()),
            memo: HashMap::new(),
            frames: Vec::new(),
        };
        for call in calls {
            t.add(call);
        }
        let frames = std::mem::take(&mut t.frames);
        for (node, frame) in frames {
            t.emit(node, frame);
        }
        t
    }

    fn add(&mut self, call: Call) {
        match call {
            Call::Publish {
                uid,
                payload,
                others,
                forwarded: false,
            } => match self.route(uid) {
                Some(nodes) => self.cached(uid, &payload, others, &nodes),
                None => self.by_script(uid, payload, others),
            },
            Call::PublishMany { uids, payload } => self.many(uids, payload),
            // A confirmation joins the node's frame like a message.
            Call::Seen { node, token } => self.frame(&node).seen(token),
            Call::Claim { uid, mut reply } => {
                self.shared.routes.forget(uid);
                let answer = Arc::new(Mutex::new(Claim::Unavailable));
                let (a, callback) = (answer.clone(), reply.take());
                let done = Done::new(move || {
                    let claim = a.lock().clone();
                    callback.send(claim);
                });
                // One io_timeout for the reply, one for the confirmations.
                let deadline = Instant::now() + self.shared.cfg.io_timeout * 2;
                let token = self.shared.barriers.register(done, deadline);
                let call = Call::Claim { uid, reply }; // its callback is the barrier's now
                let armed = Some(Armed { token, answer });
                self.steps.push(Step::Call {
                    call,
                    armed,
                    fill: None,
                });
            }
            call => {
                if let Call::Release { uid, .. } = call {
                    self.shared.routes.forget(uid);
                }
                self.steps.push(Step::Call {
                    call,
                    armed: None,
                    fill: None,
                });
            }
        }
    }

    /// The route of `uid` for this tick: the cache's answer at the first
    /// lookup, kept for the rest of the tick. Without a subscription the
    /// cache is not used at all: presence events would be missed, and the
    /// other nodes' claims would not wait for this node.
    fn route(&mut self, uid: i64) -> Option<Nodes> {
        let routes = &self.shared.routes;
        let cache = self.shared.subscribed.load(Ordering::Acquire);
        let found =
            (self.memo.entry(uid)).or_insert_with(|| cache.then(|| routes.get(uid)).flatten());
        let counter = match found {
            Some(_) => &self.shared.counters.route_hits,
            None => &self.shared.counters.route_misses,
        };
        Counters::bump(counter);
        found.clone()
    }

    /// A publish whose route is cached: into each destination's frame.
    fn cached(&mut self, uid: i64, payload: &[u8], others: bool, nodes: &Nodes) {
        let own = self.shared.keys.node_id();
        let mut any = false;
        for node in nodes.iter().filter(|n| !(others && *n == own)) {
            any = true;
            self.frame(node).user(uid, payload, others);
            self.bound(node);
        }
        if !any && !others {
            self.shared.store_by_sender(uid, payload.to_vec());
        }
    }

    /// A publish through the script; its answer fills the cache.
    fn by_script(&mut self, uid: i64, payload: Vec<u8>, others: bool) {
        let cache = self.shared.subscribed.load(Ordering::Acquire);
        let fill = cache.then(|| self.shared.routes.generation(uid));
        let call = Call::Publish {
            uid,
            payload,
            others,
            forwarded: false,
        };
        self.steps.push(Step::Call {
            call,
            armed: None,
            fill,
        });
    }

    /// A group post's remote members: one group item per node for the
    /// cached ones, the script for each of the others.
    fn many(&mut self, uids: Vec<i64>, payload: Vec<u8>) {
        let mut per_node: HashMap<String, Vec<i64>> = HashMap::new();
        for uid in uids {
            match self.route(uid) {
                Some(nodes) if nodes.is_empty() => {
                    self.shared.store_by_sender(uid, payload.clone());
                }
                Some(nodes) => {
                    for node in nodes.iter() {
                        per_node.entry(node.clone()).or_default().push(uid);
                    }
                }
                None => self.by_script(uid, payload.clone(), false),
            }
        }
        for (node, uids) in per_node {
            self.frame(&node).group(&uids, &payload);
            self.bound(&node);
        }
    }

    /// `node`'s frame of this tick.
    fn frame(&mut self, node: &str) -> &mut Frame {
        let at = match self.frames.iter().position(|(n, _)| n == node) {
            Some(at) => at,
            None => {
                self.frames.push((node.to_owned(), Frame::default()));
                self.frames.len() - 1
            }
        };
        &mut self.frames[at].1
    }

    /// Publishes `node`'s frame now if it passed [`FRAME_BOUND`].
    fn bound(&mut self, node: &str) {
        let full = (self.frames.iter()).position(|(n, f)| n == node && f.len() >= FRAME_BOUND);
        if let Some(at) = full {
            let (node, frame) = self.frames.swap_remove(at);
            self.emit(node, frame);
        }
    }

    fn emit(&mut self, node: String, frame: Frame) {
        let recipients = frame.recipients();
        self.steps.push(Step::Frame {
            node,
            frame: frame.into_bytes(),
            recipients,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::{Step, Tick};
    use crate::cluster::barrier::Barriers;
    use crate::cluster::envelope::{self, Item};
    use crate::cluster::keys::Keys;
    use crate::cluster::publisher::{Call, ClaimReply};
    use crate::cluster::routes::{nodes, Routes};
    use crate::cluster::shared::{Counters, Shared};
    use crate::cluster::{ClusterConfig, LocalNode};

    /// Records what the sender stores.
    #[derive(Default)]
    struct Stored(Mutex<Vec<i64>>);

    impl LocalNode for Stored {
        fn deliver(&self, _: i64, _: &[u8]) -> bool {
            false
        }
        fn store_offline(&self, uid: i64, _: Vec<u8>) {
            self.0.lock().push(uid);
        }
        fn local_users(&self) -> Vec<(i64, usize)> {
            Vec::new()
        }
    }

    /// A node "a", subscribed, that never connects (planning needs no Redis).
    fn shared() -> (Shared, Arc<Stored>) {
        let cfg = ClusterConfig::new("redis://127.0.0.1:1", "a");
        let stored = Arc::new(Stored::default());
        let shared = Shared {
            keys: Keys::new("t", "a"),
            client: redis::Client::open(cfg.redis_url.as_str()).expect("a valid URL"),
            routes: Routes::new(1000),
            cfg,
            node: stored.clone(),
            token: "x".into(),
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            connected: AtomicBool::new(true),
            subscribed: AtomicBool::new(true),
            counters: Counters::default(),
            barriers: Barriers::default(),
            queued_publishes: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
        };
        (shared, stored)
    }

    fn publish(uid: i64, text: &str) -> Call {
        Call::Publish {
            uid,
            payload: text.as_bytes().to_vec(),
            others: false,
            forwarded: false,
        }
    }

    /// One item: its uids and its payload as text.
    type Sent = (Vec<i64>, String);

    /// The frames of a plan: node → its items, by node.
    fn frames(steps: &[Step]) -> Vec<(String, Vec<Sent>)> {
        let mut out: Vec<_> = (steps.iter())
            .filter_map(|s| match s {
                Step::Frame { node, frame, .. } => Some((node.clone(), items(frame))),
                Step::Call { .. } => None,
            })
            .collect();
        out.sort();
        out
    }

    fn items(frame: &[u8]) -> Vec<Sent> {
        let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        (envelope::items(frame).flatten())
            .map(|i| match i {
                Item::User { uid, payload, .. } => (vec![uid], text(payload)),
                Item::Group { uids, payload } => {
                    (envelope::group_uids(uids).collect(), text(payload))
                }
            })
            .collect()
    }

    #[test]
    fn cached_routes_make_one_frame_per_node_and_misses_scripts() {
        let (s, stored) = shared();
        let fill =
            |uid, ns: &[&str]| assert!(s.routes.fill(uid, s.routes.generation(uid), nodes(ns)));
        fill(7, &["b"]);
        fill(8, &["b", "c"]);
        fill(30, &[]);
        let calls = vec![
            publish(7, "1"),
            publish(9, "miss"),
            publish(8, "2"),
            publish(30, "nobody"),
            Call::PublishMany {
                uids: vec![7, 8, 9, 30],
                payload: b"g".to_vec(),
            },
            publish(7, "3"),
        ];
        let steps = Tick::plan(&s, calls).steps;
        let scripts: Vec<(i64, bool)> = (steps.iter())
            .filter_map(|st| match st {
                Step::Call {
                    call: Call::Publish { uid, .. },
                    fill,
                    ..
                } => Some((*uid, fill.is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(scripts, [(9, true), (9, true)], "the misses, each filling");
        let b = vec![
            (vec![7], "1".to_owned()),
            (vec![8], "2".to_owned()),
            (vec![7, 8], "g".to_owned()),
            (vec![7], "3".to_owned()),
        ];
        let c = vec![(vec![8], "2".to_owned()), (vec![8], "g".to_owned())];
        assert_eq!(frames(&steps), [("b".to_owned(), b), ("c".to_owned(), c)]);
        assert_eq!(
            *stored.0.lock(),
            [30, 30],
            "negative entries: stored at once"
        );
        let n = s.counters.snapshot();
        assert_eq!((n.route_hits, n.route_misses), (7, 2), "per recipient");
    }

    #[test]
    fn a_uid_keeps_its_path_for_the_whole_tick() {
        let (s, _) = shared();
        assert!(s.routes.fill(7, s.routes.generation(7), nodes(&["b"])));
        // The claim forgets 7's route mid-tick; the later message still
        // joins the frame, behind the first one.
        let claim = Call::Claim {
            uid: 7,
            reply: ClaimReply::new(|_| {}),
        };
        let seen = Call::Seen {
            node: "b".into(),
            token: 5,
        };
        let calls = vec![publish(7, "1"), claim, seen, publish(7, "2")];
        let steps = Tick::plan(&s, calls).steps;
        let token = String::from_utf8_lossy(&5u64.to_be_bytes()).into_owned();
        let b = vec![
            (vec![7], "1".to_owned()),
            (vec![i64::MIN], token),
            (vec![7], "2".to_owned()),
        ];
        assert_eq!(frames(&steps), [("b".to_owned(), b)]);
        assert_eq!(s.routes.get(7), None, "forgotten for the next tick");
        let armed = steps
            .iter()
            .any(|st| matches!(st, Step::Call { armed: Some(_), .. }));
        assert!(armed, "the claim waits for a barrier");
    }

    #[test]
    fn a_frame_past_the_bound_is_published_at_once_in_order() {
        let (s, _) = shared();
        assert!(s.routes.fill(7, s.routes.generation(7), nodes(&["b"])));
        let big = "x".repeat(1024);
        let calls = (0..300)
            .map(|i| publish(7, &format!("{i:04}{big}")))
            .collect();
        let steps = Tick::plan(&s, calls).steps;
        let sizes: Vec<usize> = (steps.iter())
            .map(|st| match st {
                Step::Frame { frame, .. } => items(frame).len(),
                Step::Call { .. } => 0,
            })
            .collect();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 300);
        let first = sizes.first().copied().unwrap_or(0);
        assert!((250..=256).contains(&first), "{sizes:?}");
        let order: Vec<String> = (steps.iter())
            .flat_map(|st| match st {
                Step::Frame { frame, .. } => items(frame),
                Step::Call { .. } => Vec::new(),
            })
            .map(|(_, p)| p[..4].to_owned())
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("{i:04}")).collect();
        assert_eq!(order, want);
    }

    #[test]
    fn without_a_subscription_the_cache_is_not_used() {
        let (s, _) = shared();
        assert!(s.routes.fill(7, s.routes.generation(7), nodes(&["b"])));
        s.subscribed
            .store(false, std::sync::atomic::Ordering::Release);
        let steps = Tick::plan(&s, vec![publish(7, "1")]).steps;
        assert!(frames(&steps).is_empty());
        assert!(matches!(steps.as_slice(), [Step::Call { fill: None, .. }]));
    }
}
