//! [`WsClient`]: a blocking WebSocket client of a server's `/ws`, speaking
//! the chat protocol one JSON object per text frame (tungstenite's client).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::client::TIMEOUT;

/// What [`WsClient::next`] saw.
#[derive(Debug)]
pub enum WsRecv {
    /// A text frame, parsed.
    Json(Value),
    /// The server's close frame (its code), or the end of the stream (`None`).
    Closed(Option<u16>),
    /// Nothing within the time given.
    Timeout,
}

/// One WebSocket connection to `/ws`.
pub struct WsClient {
    ws: WebSocket<TcpStream>,
    /// The account logged in on it (0: none).
    pub uid: i64,
    /// Its name.
    pub name: String,
}

impl WsClient {
    /// Connects to `ws://web/ws`.
    pub fn connect(web: SocketAddr) -> WsClient {
        let stream = TcpStream::connect(web).expect("connect to the web listener");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let (ws, response) = tungstenite::client(format!("ws://{web}/ws"), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake with {web}: {e}"));
        assert_eq!(response.status().as_u16(), 101);
        WsClient {
            ws,
            uid: 0,
            name: String::new(),
        }
    }

    /// Sends `v` as one text frame.
    pub fn send(&mut self, v: &Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .expect("send a text frame");
    }

    /// Sends any message (binary, ping, a raw text).
    pub fn send_message(&mut self, m: Message) {
        self.ws.send(m).expect("send a message");
    }

    /// The next text frame or close, at most `timeout` from now.
    pub fn next(&mut self, timeout: Duration) -> WsRecv {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WsRecv::Timeout;
            }
            let _ = self.ws.get_mut().set_read_timeout(Some(left));
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return WsRecv::Json(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("text frame is not JSON ({e}): {t:?}")),
                    )
                }
                Ok(Message::Close(frame)) => {
                    return WsRecv::Closed(frame.map(|f: CloseFrame| u16::from(f.code)))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return WsRecv::Timeout
                }
                Err(_) => return WsRecv::Closed(None),
            }
        }
    }

    /// The next JSON message; fails the test on a close or after [`TIMEOUT`].
    pub fn recv(&mut self) -> Value {
        match self.next(TIMEOUT) {
            WsRecv::Json(v) => v,
            other => panic!("{} (uid {}): no message: {other:?}", self.name, self.uid),
        }
    }

    /// The next message, which must have this msgId (and errno, if given).
    pub fn expect(&mut self, msg_id: i64) -> Value {
        let v = self.recv();
        assert_eq!(
            v["msgId"], msg_id,
            "{} expected msgId {msg_id}: {v}",
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
        v
    }

    /// The server's close code, which must come within [`TIMEOUT`].
    pub fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next(TIMEOUT) {
                WsRecv::Closed(code) => return code,
                WsRecv::Json(_) => {}
                WsRecv::Timeout => panic!("{}: not closed", self.name),
            }
        }
    }

    /// Registers `name` with password `secret` and logs in.
    pub fn user(web: SocketAddr, name: &str) -> WsClient {
        let mut c = WsClient::connect(web);
        c.send(&json!({"msgId": 5, "username": name, "password": "secret"}));
        let v = c.expect_errno(6, 0);
        c.uid = v["uid"].as_i64().expect("uid");
        c.name = name.to_owned();
        c.send(&json!({"msgId": 1, "uid": c.uid, "password": "secret"}));
        c.expect_errno(2, 0);
        c
    }

    /// Sends a one-to-one message with the original client's fields.
    pub fn chat(&mut self, to: i64, msg: &str) {
        let v = json!({"msgId": 9, "from": self.uid, "username": self.name, "to": to,
                       "msg": msg, "time": "2024-01-01 00:00:00"});
        self.send(&v);
    }
}
