//! Client helpers for the message log (issue 11): chats with a client id
//! (`cid`) and their 28 SEND_ACKs, 29 SYNC pages, 31 CONVS, 33 READ.
//!
//! They extend [`Client`] with methods (an `impl` block of this module) and
//! add a few free functions over the values they return. Like the rest of
//! the client, every read has a deadline ([`TIMEOUT`](super::client::TIMEOUT)),
//! so a server that never answers fails the test instead of hanging it.
//!
//! The wire, in short:
//!
//! ```text
//! → {"msgId":9,"to":7,"msg":"hi","cid":"c1"}
//! ← {"msgId":28,"errno":0,"cid":"c1","conv":"…","seq":17,"ts":1733030000123}
//! → {"msgId":29,"conv":"…","after":0,"limit":500}
//! ← {"msgId":30,"errno":0,"conv":"…","msgs":[…],"more":true}
//! → {"msgId":31}                 ← {"msgId":32,"errno":0,"convs":[…]}
//! → {"msgId":33,"conv":"…","seq":5} ← {"msgId":34,"errno":0,"conv":"…","seq":5}
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value};

use super::Client;

/// How many chats [`Client::post_all`] keeps unacknowledged at once: small
/// enough that neither side's buffers come near a high-water mark, large
/// enough to keep the server's group commit busy.
pub const WINDOW: usize = 200;

/// The largest page SYNC returns (the server clamps `limit` to it).
pub const MAX_PAGE: usize = 500;

/// Upper bound on the pages [`Client::sync_all`] fetches: a server whose
/// `more` never turns false fails the test instead of looping.
const MAX_PAGES: usize = 2_000;

/// A successful 28 SEND_ACK: where the message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The client id it answers.
    pub cid: String,
    /// The conversation (opaque).
    pub conv: String,
    /// Its number in the conversation.
    pub seq: i64,
    /// Server time, ms since the epoch.
    pub ts: i64,
}

impl Ack {
    /// The ack in `v`, which must be a 28 with errno 0 and every field.
    pub fn from_value(v: &Value) -> Ack {
        assert_eq!(
            (v["msgId"].as_i64(), v["errno"].as_i64()),
            (Some(28), Some(0)),
            "not a successful SEND_ACK: {v}"
        );
        let field = |name: &str| v[name].clone();
        Ack {
            cid: field("cid").as_str().expect("ack cid").to_owned(),
            conv: field("conv").as_str().expect("ack conv").to_owned(),
            seq: field("seq").as_i64().expect("ack seq"),
            ts: field("ts").as_i64().expect("ack ts"),
        }
    }
}

/// Which side of a seq a SYNC reads.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// Messages with seq > N, oldest first.
    After(i64),
    /// The newest ones with seq < N, returned oldest first.
    Before(i64),
}

/// One 30 SYNC_ACK.
#[derive(Debug, Clone)]
pub struct Page {
    /// The messages, ascending by seq.
    pub msgs: Vec<Value>,
    /// Whether more exist in the direction read.
    pub more: bool,
}

impl Page {
    /// The seqs of the page's messages.
    pub fn seqs(&self) -> Vec<i64> {
        seqs(&self.msgs)
    }
}

/// The `seq` of each message (fails the test on one without).
pub fn seqs(msgs: &[Value]) -> Vec<i64> {
    msgs.iter()
        .map(|m| m["seq"].as_i64().unwrap_or_else(|| panic!("no seq: {m}")))
        .collect()
}

/// The `msg` text of each message.
pub fn texts(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["msg"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `1..=n` as a vector, to compare seqs with.
pub fn one_to(n: i64) -> Vec<i64> {
    (1..=n).collect()
}

/// A one-to-one chat with a client id.
pub fn chat_with_cid(to: i64, msg: &str, cid: &str) -> Value {
    json!({"msgId": 9, "to": to, "msg": msg, "cid": cid, "time": "2026-12-01 12:00:00"})
}

/// A group chat with a client id.
pub fn group_with_cid(gid: i64, msg: &str, cid: &str) -> Value {
    json!({"msgId": 13, "gid": gid, "msg": msg, "cid": cid, "time": "2026-12-01 12:00:00"})
}

/// A SYNC request.
pub fn sync_request(conv: &str, from: Side, limit: Option<i64>) -> Value {
    let mut v = match from {
        Side::After(n) => json!({"msgId": 29, "conv": conv, "after": n}),
        Side::Before(n) => json!({"msgId": 29, "conv": conv, "before": n}),
    };
    if let Some(l) = limit {
        v["limit"] = json!(l);
    }
    v
}

/// Logs `uid` (password "secret") in on a new connection to `addr`;
/// returns the client and its login ack, which must be a success.
pub fn login_as(addr: SocketAddr, uid: i64, name: &str) -> (Client, Value) {
    let mut c = Client::connect(addr);
    c.uid = uid;
    c.name = name.to_owned();
    let ack = c.login_ok("secret");
    (c, ack)
}

/// Logs `uid` (password "secret") in on a new connection to `addr`,
/// trying again while the server still counts an old connection of
/// theirs (errno 2: its close not yet seen, or in a cluster its claim not
/// yet released); at most [`PATIENCE`](super::PATIENCE).
pub fn login_again(addr: SocketAddr, uid: i64, name: &str) -> Client {
    let mut done = None;
    super::wait_until("the old connection is gone", || {
        let mut c = Client::connect(addr);
        c.uid = uid;
        c.name = name.to_owned();
        let v = c.request(json!({"msgId": 1, "uid": uid, "password": "secret"}));
        assert!(v["errno"] == 0 || v["errno"] == 2, "{v}");
        if v["errno"] == 0 {
            done = Some(c);
        }
        done.is_some()
    });
    done.expect("logged in")
}

/// `acks` (as they arrived) in the order of the requests `msgs` they
/// answer, matched by cid; fails the test if an ack answers no request,
/// two answer one, or one conversation's acks came out of request order.
fn in_request_order(who: &str, msgs: &[Value], acks: Vec<Ack>) -> Vec<Ack> {
    let index: HashMap<&str, usize> = msgs
        .iter()
        .enumerate()
        .map(|(k, m)| (m["cid"].as_str().unwrap_or(""), k))
        .collect();
    assert_eq!(
        index.len(),
        msgs.len(),
        "{who}: cids repeat within one call"
    );
    let mut slots: Vec<Option<Ack>> = vec![None; msgs.len()];
    let mut last_of_conv: HashMap<String, usize> = HashMap::new();
    for ack in acks {
        let k = *index
            .get(ack.cid.as_str())
            .unwrap_or_else(|| panic!("{who}: an ack for no request: {ack:?}"));
        if let Some(prev) = last_of_conv.insert(ack.conv.clone(), k) {
            assert!(prev < k, "{who}: acks of {} out of request order", ack.conv);
        }
        assert!(
            slots[k].replace(ack).is_none(),
            "{who}: two acks for one request"
        );
    }
    slots.into_iter().flatten().collect()
}

/// What a connection received while it waited for its acks.
#[derive(Debug, Default)]
pub struct Received {
    /// The 28 SEND_ACKs, in arrival order.
    pub acks: Vec<Ack>,
    /// The chats (9) and group chats (13) delivered to it, in arrival order.
    pub live: Vec<Value>,
}

impl Client {
    /// Reads one message and files it in `into`: a successful 28 as an ack,
    /// a 9 or 13 as a delivered message; anything else fails the test.
    pub fn pump(&mut self, into: &mut Received) {
        let v = self.recv();
        match v["msgId"].as_i64() {
            Some(28) => into.acks.push(Ack::from_value(&v)),
            Some(9 | 13) => into.live.push(v),
            _ => panic!("{} (uid {}): unexpected {v}", self.name, self.uid),
        }
    }

    /// Sends `msgs` (each with a `cid` of its own), at most [`WINDOW`]
    /// unacknowledged, and files every reply in `into` until each has its
    /// ack. Within one conversation the acks must come in the order of the
    /// requests (across conversations the order is not promised); they are
    /// filed in request order, so that `into.acks[k]` answers `msgs[k]`.
    pub fn post_all(&mut self, msgs: &[Value], into: &mut Received) {
        self.post_window(msgs, WINDOW, into);
    }

    /// [`post_all`](Client::post_all) with at most `window` (≥ 1)
    /// unacknowledged: a small window makes several posters' messages
    /// alternate in a conversation instead of coming in large batches.
    pub fn post_window(&mut self, msgs: &[Value], window: usize, into: &mut Received) {
        let window = window.max(1);
        let first = into.acks.len();
        let mut sent = 0;
        while into.acks.len() - first < msgs.len() {
            while sent < msgs.len() && sent - (into.acks.len() - first) < window {
                self.send(&msgs[sent]);
                sent += 1;
            }
            self.pump(into);
        }
        let arrived = into.acks.split_off(first);
        into.acks
            .extend(in_request_order(&self.name, msgs, arrived));
    }

    /// Sends `msgs` with [`post_all`](Client::post_all) on a connection that
    /// receives nothing else meanwhile; returns the acks.
    pub fn post_acked(&mut self, msgs: &[Value]) -> Vec<Ack> {
        let mut got = Received::default();
        self.post_all(msgs, &mut got);
        assert!(
            got.live.is_empty(),
            "{}: unexpected deliveries {:?}",
            self.name,
            got.live
        );
        got.acks
    }

    /// Sends one chat with a cid and returns its ack (nothing else may
    /// arrive first).
    pub fn send_acked(&mut self, msg: &Value) -> Ack {
        self.send(msg);
        let ack = Ack::from_value(&self.expect(28));
        assert_eq!(Some(ack.cid.as_str()), msg["cid"].as_str(), "{ack:?}");
        ack
    }

    /// Reads messages until `n` chats or group chats have come; fails the
    /// test on anything else (or on a timeout between two of them).
    pub fn recv_live(&mut self, n: usize) -> Vec<Value> {
        let mut got = Received::default();
        while got.live.len() < n {
            self.pump(&mut got);
        }
        assert!(
            got.acks.is_empty(),
            "{}: stray acks {:?}",
            self.name,
            got.acks
        );
        got.live
    }

    /// Reads until the reply `msg_id` comes, which must have errno 0;
    /// the chats and group chats delivered meanwhile go to `live` (a
    /// backlog following a login ack, messages of others).
    pub fn reply_amid(&mut self, msg_id: i64, live: &mut Vec<Value>) -> Value {
        loop {
            let v = self.recv();
            match v["msgId"].as_i64() {
                Some(9 | 13) => live.push(v),
                Some(id) if id == msg_id => {
                    assert_eq!(v["errno"], 0, "{}: {v}", self.name);
                    return v;
                }
                _ => panic!("{} expected msgId {msg_id}, got {v}", self.name),
            }
        }
    }

    /// One SYNC, which must succeed and name `conv`; deliveries that come
    /// before its reply go to `live`.
    pub fn sync_amid(
        &mut self,
        conv: &str,
        from: Side,
        limit: Option<i64>,
        live: &mut Vec<Value>,
    ) -> Page {
        self.send(&sync_request(conv, from, limit));
        let v = self.reply_amid(30, live);
        assert_eq!(v["conv"], conv, "{v}");
        let msgs = v["msgs"].as_array().expect("msgs").clone();
        let more = v["more"].as_bool().expect("more");
        let page = Page { msgs, more };
        let s = page.seqs();
        assert!(s.windows(2).all(|w| w[0] < w[1]), "not ascending: {s:?}");
        page
    }

    /// One SYNC, which must succeed and name `conv`; nothing else may
    /// arrive first.
    pub fn sync(&mut self, conv: &str, from: Side, limit: Option<i64>) -> Page {
        let mut live = Vec::new();
        let page = self.sync_amid(conv, from, limit, &mut live);
        assert!(
            live.is_empty(),
            "{}: deliveries before the SYNC_ACK: {live:?}",
            self.name
        );
        page
    }

    /// Every message of `conv` after `after`, paged with the largest limit
    /// until `more` is false; deliveries meanwhile go to `live`.
    pub fn sync_all_amid(&mut self, conv: &str, after: i64, live: &mut Vec<Value>) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        let mut last = after;
        for _ in 0..MAX_PAGES {
            let page = self.sync_amid(conv, Side::After(last), Some(MAX_PAGE as i64), live);
            if let Some(&s) = page.seqs().last() {
                last = s;
            }
            let more = page.more;
            let empty = page.msgs.is_empty();
            all.extend(page.msgs);
            if !more {
                return all;
            }
            assert!(!empty, "an empty page with more = true");
        }
        panic!("{}: more than {MAX_PAGES} pages of {conv}", self.name);
    }

    /// Every message of `conv` after `after` (nothing else may arrive).
    pub fn sync_all_after(&mut self, conv: &str, after: i64) -> Vec<Value> {
        let mut live = Vec::new();
        let all = self.sync_all_amid(conv, after, &mut live);
        assert!(
            live.is_empty(),
            "{}: deliveries amid the SYNC: {live:?}",
            self.name
        );
        all
    }

    /// Every message of `conv` this user may read.
    pub fn sync_all(&mut self, conv: &str) -> Vec<Value> {
        self.sync_all_after(conv, 0)
    }

    /// A SYNC that must fail with `errno`.
    pub fn sync_refused(&mut self, request: Value, errno: i64) -> Value {
        self.send(&request);
        self.expect_errno(30, errno)
    }

    /// 31 CONVS: the user's conversations, sorted by name; deliveries that
    /// come before its reply go to `live`.
    pub fn convs_amid(&mut self, live: &mut Vec<Value>) -> Vec<Value> {
        self.send(&json!({"msgId": 31}));
        let v = self.reply_amid(32, live);
        let mut convs = v["convs"].as_array().expect("convs").clone();
        convs.sort_by_key(|c| c["conv"].as_str().unwrap_or("").to_owned());
        convs
    }

    /// 31 CONVS (nothing else may arrive first).
    pub fn convs(&mut self) -> Vec<Value> {
        let mut live = Vec::new();
        let convs = self.convs_amid(&mut live);
        assert!(
            live.is_empty(),
            "{}: deliveries before the CONVS_ACK: {live:?}",
            self.name
        );
        convs
    }

    /// The CONVS entry of `conv`, which must exist.
    pub fn conv_entry(&mut self, conv: &str) -> Value {
        self.convs()
            .into_iter()
            .find(|c| c["conv"] == conv)
            .unwrap_or_else(|| panic!("{}: {conv} not in CONVS", self.name))
    }

    /// 33 READ: moves the read position; returns the new one.
    pub fn read_up_to(&mut self, conv: &str, seq: i64) -> i64 {
        self.send(&json!({"msgId": 33, "conv": conv, "seq": seq}));
        let v = self.expect_errno(34, 0);
        assert_eq!(v["conv"], conv, "{v}");
        v["seq"].as_i64().expect("read seq")
    }
}
