//! A blocking test client: writes JSON, reads newline-delimited replies,
//! and never waits longer than a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::tls::rustls::{self, pki_types::ServerName, ClientConfig, ClientConnection};

use serde_json::{json, Value};

/// How long a reply may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Why [`Client::try_recv`] returned no message.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing within the time given.
    Timeout,
    /// The server closed the connection (EOF or reset).
    Closed,
}

/// The client's byte stream: plain TCP, or TLS over it.
enum Wire {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Wire {
    fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => &s.sock,
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}

/// One connection to the server.
pub struct Client {
    stream: Wire,
    pending: Vec<u8>,
    /// The account registered or logged in on this connection (0: none).
    pub uid: i64,
    /// Its name.
    pub name: String,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects to `addr` from `source`, another address of this host: on
    /// Linux every 127.x.y.z is the loopback, so tests can play clients at
    /// different addresses (chat-bench's `--per-source` binds the same way).
    pub fn connect_from(addr: SocketAddr, source: std::net::Ipv4Addr) -> Client {
        use socket2::{Domain, Protocol, Socket, Type};
        let connected = || -> std::io::Result<TcpStream> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.bind(&SocketAddr::new(source.into(), 0).into())?;
            socket.connect(&addr.into())?;
            Ok(socket.into())
        };
        match connected() {
            Ok(stream) => Client::over(stream),
            Err(e) => panic!("connect from {source} to {addr}: {e}"),
        }
    }

    /// Connects to a TLS listener at `addr` as "localhost", trusting what
    /// `config` trusts, and completes the handshake (so a refused
    /// certificate is this call's error, `InvalidData`).
    ///
    /// # Errors
    /// The connect or handshake error.
    pub fn connect_tls(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<Client> {
        let mut sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let mut conn =
            ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        let mut client =
            Client::over_wire(Wire::Tls(Box::new(rustls::StreamOwned::new(conn, sock))));
        client.name = format!("tls client of {addr}");
        Ok(client)
    }

    /// A client on a connected stream.
    fn over(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("nodelay");
        Client::over_wire(Wire::Plain(stream))
    }

    fn over_wire(stream: Wire) -> Client {
        Client {
            stream,
            pending: Vec::new(),
            uid: 0,
            name: String::new(),
        }
    }

    /// Sends one JSON value (no delimiter, as the original client does).
    pub fn send(&mut self, v: &Value) {
        self.send_raw(v.to_string().as_bytes());
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends raw bytes; `false` if the server has closed the connection.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next message, or why there is none within `timeout`.
    pub fn try_recv(&mut self, timeout: Duration) -> Result<Value, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return Ok(serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!(
                        "reply is not JSON ({e}): {:?}",
                        String::from_utf8_lossy(&line)
                    )
                }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            self.stream
                .tcp()
                .set_read_timeout(Some(left))
                .expect("timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(RecvError::Closed),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(RecvError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(RecvError::Closed),
            }
        }
    }

    /// The next message; fails the test after [`TIMEOUT`] or on EOF.
    pub fn recv(&mut self) -> Value {
        match self.try_recv(TIMEOUT) {
            Ok(v) => v,
            Err(e) => panic!("{} (uid {}): no message: {e:?}", self.name, self.uid),
        }
    }

    /// The next message, which must have this msgId.
    pub fn expect(&mut self, msg_id: i64) -> Value {
        let v = self.recv();
        assert_eq!(
            v["msgId"], msg_id,
            "{} expected msgId {msg_id}, got {v}",
            self.name
        );
        v
    }

    /// The next message, which must have this msgId and errno.
    pub fn expect_errno(&mut self, msg_id: i64, errno: i64) -> Value {
        let v = self.expect(msg_id);
        assert_eq!(
            v["errno"], errno,
            "{} expected errno {errno}: {v}",
            self.name
        );
        if errno != 0 {
            assert!(
                v["errmsg"].as_str().is_some_and(|s| !s.is_empty()),
                "errmsg missing: {v}"
            );
        }
        v
    }

    /// Sends `v` and returns the next message.
    pub fn request(&mut self, v: Value) -> Value {
        self.send(&v);
        self.recv()
    }

    /// Asserts that nothing arrives for `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        match self.try_recv(d) {
            Err(RecvError::Timeout) => {}
            other => panic!("{}: expected silence, got {other:?}", self.name),
        }
    }

    /// Asserts that the server closes the connection within `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) {
        match self.try_recv(timeout) {
            Err(RecvError::Closed) => {}
            Err(RecvError::Timeout) => panic!("{}: connection not closed", self.name),
            Ok(v) => panic!("{}: expected the connection to close, got {v}", self.name),
        }
    }

    /// Registers `name`; remembers the new uid.
    pub fn register(&mut self, name: &str, password: &str) -> i64 {
        let v = self.request(json!({"msgId": 5, "username": name, "password": password}));
        assert_eq!(v["msgId"], 6, "{v}");
        assert_eq!(v["errno"], 0, "register {name}: {v}");
        self.uid = v["uid"].as_i64().expect("uid");
        self.name = name.to_owned();
        self.uid
    }

    /// Logs in as the remembered uid and returns the ack, which must be a success.
    pub fn login_ok(&mut self, password: &str) -> Value {
        let v = self.request(json!({"msgId": 1, "uid": self.uid, "password": password}));
        assert_eq!(v["msgId"], 2, "{v}");
        assert_eq!(v["errno"], 0, "login {}: {v}", self.uid);
        v
    }

    /// Creates group `name`, which must succeed; returns its gid.
    pub fn create_group(&mut self, name: &str, desc: &str) -> i64 {
        self.send(&json!({"msgId": 11, "groupname": name, "groupdesc": desc}));
        self.expect_errno(17, 0)["gid"].as_i64().expect("gid")
    }

    /// Joins group `gid`, which must succeed.
    pub fn join_group(&mut self, gid: i64) {
        self.send(&json!({"msgId": 12, "gid": gid}));
        self.expect_errno(18, 0);
    }

    /// Sends a one-to-one message with the original client's fields.
    pub fn chat(&mut self, to: i64, msg: &str) {
        let v = json!({"msgId": 9, "from": self.uid, "username": self.name, "to": to,
                       "msg": msg, "time": "2024-01-01 00:00:00"});
        self.send(&v);
    }

    /// Receives a one-to-one message and returns its text.
    pub fn recv_chat(&mut self) -> (i64, String) {
        let v = self.expect(9);
        (
            v["from"].as_i64().expect("from"),
            v["msg"].as_str().expect("msg").to_owned(),
        )
    }
}

/// The strings of a nested-string array (`friends`, `groups`,
/// `offlinemsgs`), each parsed as JSON.
pub fn nested(v: &Value, field: &str) -> Vec<Value> {
    v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    serde_json::from_str(s.as_str().expect("nested string")).expect("nested JSON")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The message log's three fields of a delivered chat (9) or group chat
/// (13), checked for their types: every such message carries them, live,
/// in `offlinemsgs` and in a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The conversation's name (opaque: compare it, never parse it).
    pub conv: String,
    /// The message's number in its conversation, from 1.
    pub seq: i64,
    /// When the server stored it, ms since the Unix epoch.
    pub ts: i64,
}

/// The log fields of `v`; fails the test if one is missing, of the wrong
/// type, or out of range (an empty conv, a seq below 1, a ts not between
/// 2020 and a minute from now).
pub fn logged(v: &Value) -> Logged {
    let conv = v["conv"].as_str().filter(|c| !c.is_empty());
    let seq = v["seq"].as_i64().filter(|&s| s >= 1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let ts = v["ts"]
        .as_i64()
        .filter(|&t| (1_577_836_800_000..now_ms + 60_000).contains(&t));
    match (conv, seq, ts) {
        (Some(conv), Some(seq), Some(ts)) => Logged {
            conv: conv.to_owned(),
            seq,
            ts,
        },
        _ => panic!("conv, seq or ts missing or out of range: {v}"),
    }
}

/// `v` without the log's fields (`conv`, `seq`, `ts`): what the sender
/// wrote, with the server's `from`/`uid` and `username`.
pub fn without_log(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["conv", "seq", "ts"] {
            o.remove(k);
        }
    }
    v
}

/// Asserts that `msgs`, all of one conversation, are numbered `from`,
/// `from + 1`, … in the order given, and returns their conv.
pub fn assert_gapless(msgs: &[Value], from: i64) -> String {
    let logs: Vec<Logged> = msgs.iter().map(logged).collect();
    let conv = logs.first().map(|l| l.conv.clone()).unwrap_or_default();
    let seqs: Vec<i64> = logs.iter().map(|l| l.seq).collect();
    let want: Vec<i64> = (from..from + msgs.len() as i64).collect();
    assert_eq!(seqs, want, "seq not gapless from {from}: {msgs:?}");
    assert!(
        logs.iter().all(|l| l.conv == conv),
        "not one conversation: {msgs:?}"
    );
    conv
}
