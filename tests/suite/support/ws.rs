//! [`WsClient`]: a blocking WebSocket client of a server's `/ws`, speaking
//! the chat protocol one JSON object per text frame (tungstenite's client),
//! over TCP (`ws:`) or over rustls (`wss:`, [`WsClient::connect_tls`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::tls::rustls::{self, pki_types::ServerName, ClientConfig, ClientConnection};

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

/// A byte stream tungstenite can run over: TCP or TLS over TCP.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One WebSocket connection to `/ws`.
pub struct WsClient {
    ws: WebSocket<Box<dyn Stream>>,
    /// The socket under the stream, for its read timeout.
    sock: TcpStream,
    /// The account logged in on it (0: none).
    pub uid: i64,
    /// Its name.
    pub name: String,
}

impl WsClient {
    /// Connects to `ws://web/ws`.
    pub fn connect(web: SocketAddr) -> WsClient {
        let sock = TcpStream::connect(web).expect("connect to the web listener");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let stream: Box<dyn Stream> = Box::new(sock.try_clone().expect("clone the socket"));
        WsClient::handshake(format!("ws://{web}/ws"), stream, sock)
    }

    /// Connects to `wss://localhost:PORT/ws` at `web`, trusting what
    /// `config` trusts.
    pub fn connect_tls(web: SocketAddr, config: &Arc<ClientConfig>) -> WsClient {
        let sock = TcpStream::connect(web).expect("connect to the web listener over TLS");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = ClientConnection::new(config.clone(), name).expect("TLS client");
        let tcp = sock.try_clone().expect("clone the socket");
        let stream: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, tcp));
        let url = format!("wss://localhost:{}/ws", web.port());
        WsClient::handshake(url, stream, sock)
    }

    fn handshake(url: String, stream: Box<dyn Stream>, sock: TcpStream) -> WsClient {
        let (ws, response) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        assert_eq!(response.status().as_u16(), 101);
        WsClient {
            ws,
            sock,
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
            let _ = self.sock.set_read_timeout(Some(left));
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
        WsClient::connect(web).sign_up(name)
    }

    /// Registers `name` with password `secret` on this connection and
    /// logs in.
    pub fn sign_up(self, name: &str) -> WsClient {
        let mut c = self;
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
