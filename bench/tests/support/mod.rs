//! A tiny in-process chat server for testing the bench itself.
//!
//! It speaks just enough of the protocol for every scenario, one thread per
//! connection, everything under one lock (which also keeps each stream in
//! order). In legacy mode it behaves like the C++ original where the bench
//! must care: no acks for friend and group requests, no newline after
//! replies, and it counts every read that held more than one request, which
//! the original cannot survive. The smoke tests against the real
//! `chat-server` live beside these once it exists.
//!
//! It keeps a message log for one-to-one chats, as our server does since
//! issue 11: every chat gets `conv` (`dA-B`), a gapless `seq` and `ts`; a
//! chat with a `cid` is answered with 28 SEND_ACK; 29 SYNC (after) and 31
//! CONVS answer from the log.

use chat_bench::json_stream::JsonReader;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    users: Vec<(String, String)>,
    /// Each user's logged-in connections (id, stream): at most `sessions`.
    online: HashMap<i64, Vec<(u64, TcpStream)>>,
    /// Connections one user may be logged in on (1: a second login gets
    /// errno 2); with more, each gets self-copies of the others' chats.
    sessions: usize,
    groups: Vec<(String, Vec<i64>)>,
    friends: HashSet<(i64, i64)>,
    offline: HashMap<i64, Vec<String>>,
    /// The one-to-one message log: conv → messages, seq = index + 1.
    log: HashMap<String, Vec<Value>>,
    /// Every this many logged chats one is stored and acked but never
    /// handed to its recipient (0: none): a server that loses messages.
    lose_every: u64,
    logged: u64,
    /// Refuse each user's first login with errno 2, as a server does that
    /// has not yet seen the user's previous connection close.
    slow_to_see_closes: bool,
    refused_once: HashSet<i64>,
    /// Every this many chats with a cid is refused with errno 12 (the
    /// server busy), neither stored nor delivered (0: none).
    refuse_every: u64,
    chats_with_cid: u64,
}

/// A one-to-one conversation's name, the same for both participants.
fn conv_of(a: i64, b: i64) -> String {
    format!("d{}-{}", a.min(b), a.max(b))
}

/// A running mock server; it lives until the test process ends.
pub struct MockServer {
    /// Where it listens.
    pub addr: SocketAddr,
    coalesced: Arc<AtomicU64>,
    state: Arc<Mutex<State>>,
}

impl MockServer {
    /// Starts a server on an ephemeral loopback port.
    pub fn start(legacy: bool) -> MockServer {
        MockServer::start_with(legacy, 0, 1)
    }

    /// A server (our dialect) that lets each user log in on `sessions`
    /// connections at once, as `chat-server --sessions-per-user`.
    pub fn with_sessions(sessions: usize) -> MockServer {
        MockServer::start_with(false, 0, sessions)
    }

    /// A server that stores and acks every chat but never delivers one in
    /// `lose_every`, for testing that the bench notices.
    pub fn lossy(lose_every: u64) -> MockServer {
        MockServer::start_with(false, lose_every, 1)
    }

    /// A server that refuses every user's first login as already online
    /// (errno 2), as if it had not yet seen an earlier connection close.
    pub fn slow_to_see_closes() -> MockServer {
        MockServer::start_state(
            false,
            State {
                slow_to_see_closes: true,
                sessions: 1,
                ..State::default()
            },
        )
    }

    /// A server that refuses every `n`-th chat with a cid (errno 12), as
    /// ours does when its log's queues are full.
    pub fn refusing(n: u64) -> MockServer {
        MockServer::start_state(
            false,
            State {
                refuse_every: n,
                sessions: 1,
                ..State::default()
            },
        )
    }

    fn start_with(legacy: bool, lose_every: u64, sessions: usize) -> MockServer {
        let state = State {
            lose_every,
            sessions,
            ..State::default()
        };
        MockServer::start_state(legacy, state)
    }

    fn start_state(legacy: bool, state: State) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(state));
        let coalesced = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&coalesced);
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(stream, state, legacy, counter));
            }
        });
        MockServer {
            addr,
            coalesced,
            state: shared,
        }
    }

    /// One-to-one conversations with a message in the log.
    pub fn conversations(&self) -> usize {
        self.state.lock().expect("lock").log.len()
    }

    /// Reads that held more than one request (legacy mode counts them).
    pub fn coalesced_reads(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>, legacy: bool, coalesced: Arc<AtomicU64>) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut reader = stream.try_clone().expect("clone");
    let mut me: Option<i64> = None;
    let mut json = JsonReader::new(1 << 20);
    let mut buf = vec![0u8; 64 << 10];
    let mut values = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if json.feed(&buf[..n], &mut values).is_err() {
            break;
        }
        if values.len() > 1 || json.pending_len() > 0 {
            coalesced.fetch_add(1, Ordering::Relaxed);
        }
        let mut st = state.lock().expect("lock");
        for req in values.drain(..) {
            handle(&mut st, (id, &stream), &mut me, &req, legacy);
        }
    }
    if let Some(uid) = me {
        let mut st = state.lock().expect("lock");
        // Only this connection's login: the user may be back on a new one.
        log_out(&mut st, uid, id);
    }
}

/// Ends the session of `uid` on connection `id`, if it has one.
fn log_out(st: &mut State, uid: i64, id: u64) {
    if let Some(sessions) = st.online.get_mut(&uid) {
        sessions.retain(|(owner, _)| *owner != id);
        if sessions.is_empty() {
            st.online.remove(&uid);
        }
    }
}

fn send(mut to: &TcpStream, v: &Value, legacy: bool) {
    let mut text = v.to_string();
    if !legacy {
        text.push('\n');
    }
    let _ = to.write_all(text.as_bytes());
}

fn groups_of(st: &State, uid: i64) -> Vec<String> {
    st.groups
        .iter()
        .enumerate()
        .filter(|(_, (_, m))| m.contains(&uid))
        .map(|(i, (name, _))| json!({"gid": i as i64 + 1, "groupname": name}).to_string())
        .collect()
}

/// Sends `msg` to every session of `to` but the connection `except` (the
/// sender's, for a self-copy), or stores it when `to` has none.
fn deliver_but(st: &mut State, to: i64, msg: &Value, legacy: bool, except: Option<u64>) {
    match st.online.get(&to) {
        Some(sessions) => {
            for (_, stream) in sessions.iter().filter(|(id, _)| Some(*id) != except) {
                send(stream, msg, legacy);
            }
        }
        None if except.is_none() => st.offline.entry(to).or_default().push(msg.to_string()),
        None => {}
    }
}

fn deliver(st: &mut State, to: i64, msg: &Value, legacy: bool) {
    deliver_but(st, to, msg, legacy, None);
}

fn handle(
    st: &mut State,
    (id, conn): (u64, &TcpStream),
    me: &mut Option<i64>,
    req: &Value,
    legacy: bool,
) {
    let int = |k: &str| req.get(k).and_then(Value::as_i64).unwrap_or(0);
    let text = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let reply = |v: Value| send(conn, &v, legacy);
    match int("msgId") {
        5 => {
            let name = text("username");
            if st.users.iter().any(|(n, _)| *n == name) {
                reply(json!({"msgId": 6, "errno": 1, "errmsg": "name taken"}));
            } else {
                st.users.push((name, text("password")));
                reply(json!({"msgId": 6, "errno": 0, "uid": st.users.len()}));
            }
        }
        1 => {
            let uid = int("uid");
            let known = (uid as usize)
                .checked_sub(1)
                .and_then(|i| st.users.get(i))
                .filter(|(_, p)| *p == text("password"));
            if known.is_none() {
                reply(json!({"msgId": 2, "errno": 1, "errmsg": "bad login"}));
                return;
            }
            if st.slow_to_see_closes && st.refused_once.insert(uid) {
                reply(json!({"msgId": 2, "errno": 2, "errmsg": "online"}));
                return;
            }
            let limit = st.sessions;
            let sessions = st.online.entry(uid).or_default();
            if sessions.len() >= limit {
                reply(json!({"msgId": 2, "errno": 2, "errmsg": "online"}));
                return;
            }
            sessions.push((id, conn.try_clone().expect("clone")));
            *me = Some(uid);
            let offline = st.offline.remove(&uid).unwrap_or_default();
            let groups = groups_of(st, uid);
            let ack = json!({"msgId": 2, "errno": 0, "uid": uid, "offlinemsgs": offline, "groups": groups});
            reply(ack);
        }
        3 => {
            if let Some(uid) = me.take() {
                log_out(st, uid, id);
            }
        }
        7 => reply(json!({"msgId": 8, "errno": 0, "groups": groups_of(st, int("uid"))})),
        9 if legacy => deliver(st, int("to"), req, legacy),
        9 => {
            if req.get("cid").is_some() {
                st.chats_with_cid += 1;
                if st.refuse_every > 0 && st.chats_with_cid.is_multiple_of(st.refuse_every) {
                    let cid = req.get("cid").cloned().unwrap_or(Value::Null);
                    reply(json!({"msgId": 28, "errno": 12, "errmsg": "busy", "cid": cid}));
                    return;
                }
            }
            let conv = conv_of(int("from"), int("to"));
            let log = st.log.entry(conv.clone()).or_default();
            let mut msg = req.clone();
            msg["conv"] = json!(conv);
            msg["seq"] = json!(log.len() + 1);
            msg["ts"] = json!(1_733_030_000_000_i64 + log.len() as i64);
            if let Some(cid) = msg.as_object_mut().and_then(|m| m.remove("cid")) {
                reply(
                    json!({"msgId": 28, "errno": 0, "cid": cid, "conv": conv, "seq": msg["seq"], "ts": msg["ts"]}),
                );
            }
            log.push(msg.clone());
            st.logged += 1;
            if st.lose_every == 0 || !st.logged.is_multiple_of(st.lose_every) {
                deliver(st, int("to"), &msg, legacy);
                if st.sessions > 1 && int("to") != int("from") {
                    deliver_but(st, int("from"), &msg, legacy, Some(id));
                }
            }
        }
        29 => {
            let conv = text("conv");
            let after = int("after").max(0) as usize;
            let limit = int("limit").clamp(1, 500) as usize;
            let log = st.log.get(&conv).map(Vec::as_slice).unwrap_or(&[]);
            let msgs: Vec<Value> = log.iter().skip(after).take(limit).cloned().collect();
            let more = log.len() > after + msgs.len();
            reply(json!({"msgId": 30, "errno": 0, "conv": conv, "msgs": msgs, "more": more}));
        }
        31 => {
            let uid = me.unwrap_or(0);
            let convs: Vec<Value> = st
                .log
                .iter()
                .filter(|(_, msgs)| {
                    msgs.first().is_some_and(|m| {
                        m["from"].as_i64() == Some(uid) || m["to"].as_i64() == Some(uid)
                    })
                })
                .map(|(conv, msgs)| json!({"conv": conv, "kind": "user", "last_seq": msgs.len(), "read_seq": 0}))
                .collect();
            reply(json!({"msgId": 32, "errno": 0, "convs": convs}));
        }
        10 | 14 => {
            let pair = (int("uid").min(int("fid")), int("uid").max(int("fid")));
            let ok = if int("msgId") == 10 {
                st.friends.insert(pair)
            } else {
                st.friends.remove(&pair)
            };
            if !legacy {
                let ack = if int("msgId") == 10 { 16 } else { 15 };
                reply(json!({"msgId": ack, "errno": if ok { 0 } else { 8 }}));
            }
        }
        11 => {
            st.groups.push((text("groupname"), vec![int("uid")]));
            if !legacy {
                reply(json!({"msgId": 17, "errno": 0, "gid": st.groups.len()}));
            }
        }
        12 => {
            let index = (int("gid") as usize).checked_sub(1);
            if let Some((_, members)) = index.and_then(|i| st.groups.get_mut(i)) {
                members.push(int("uid"));
            }
            if !legacy {
                reply(json!({"msgId": 18, "errno": 0}));
            }
        }
        13 => {
            let index = (int("gid") as usize).checked_sub(1);
            let members = index.and_then(|i| st.groups.get(i)).map(|g| g.1.clone());
            for m in members.unwrap_or_default() {
                if m != int("uid") {
                    deliver(st, m, req, legacy);
                } else if st.sessions > 1 {
                    deliver_but(st, m, req, legacy, Some(id));
                }
            }
        }
        _ => reply(json!({"msgId": 27, "errno": 5, "errmsg": "unknown"})),
    }
}
