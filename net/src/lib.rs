//! # net: muduo's reactor, ported to Rust on mio
//!
//! "One loop per thread": a main [`EventLoop`] accepts connections and
//! hands each one, round-robin, to one of N sub-loops, each running on its
//! own thread; a connection's reads, writes and callbacks then all happen on
//! that one thread. This is the design of Chen Shuo's muduo library (C++),
//! kept class for class so the two can be read side by side:
//!
//! | muduo class | Rust type | module |
//! |---|---|---|
//! | `EventLoop` | [`EventLoop`], [`EventLoopHandle`], [`LoopStats`] | [`event_loop`] |
//! | `Channel` | [`Channel`], [`ChannelHandler`] | [`channel`] |
//! | `Poller` / `EPollPoller` | [`Poller`] | [`poller`] |
//! | `TimerQueue`, `TimerId` | `TimerQueue`, [`TimerId`] | [`timer_queue`] |
//! | `Acceptor` | [`Acceptor`] | [`acceptor`] |
//! | `EventLoopThread` | [`EventLoopThread`] | [`event_loop_thread`] |
//! | `EventLoopThreadPool` | [`EventLoopThreadPool`] | [`event_loop_thread_pool`] |
//! | `TcpServer` | [`TcpServer`] | [`tcp_server`] |
//! | `TcpConnection` | [`TcpConnection`] (shared as [`TcpConnectionPtr`]) | [`tcp_connection`] |
//! | `Buffer` | [`Buffer`] | [`buffer`] |
//! | `Connector` | [`Connector`] | [`connector`] |
//! | `TcpClient` | [`TcpClient`] | [`tcp_client`] |
//! | `HttpServer`, `HttpContext`, `HttpRequest`, `HttpResponse` | [`http::HttpServer`], … | [`http`] |
//! | (none: RFC 6455) | [`websocket::WebSocket`], [`websocket::WebSocketHandler`] | [`websocket`] |
//! | `Callbacks.h` | [`ConnectionCallback`], [`MessageCallback`], … | [`callbacks`] |
//!
//! `net/README.md` explains the thread rules, the life of a connection,
//! and how muduo's C++ idioms were carried over. The examples in
//! `net/examples/` follow muduo's course: echo; pingpong (server, client,
//! and the dispatch benchmark); the asio chat with its `LengthHeaderCodec`
//! (framing is the application's business, not the library's), four
//! servers from one thread to thread-local lists, a client and a load test.

pub mod acceptor;
pub mod buffer;
pub mod callbacks;
pub mod channel;
pub mod connector;
pub mod event_loop;
pub mod event_loop_thread;
pub mod event_loop_thread_pool;
pub mod http;
pub mod poller;
pub mod tcp_client;
pub mod tcp_connection;
pub mod tcp_server;
pub mod timer_queue;
pub mod websocket;

pub use acceptor::Acceptor;
pub use buffer::Buffer;
pub use callbacks::{
    ConnectionCallback, HighWaterMarkCallback, MessageCallback, WriteCompleteCallback,
};
pub use channel::{Channel, ChannelHandler, Ready};
pub use connector::Connector;

pub use event_loop::{EventLoop, EventLoopHandle, Functor, LoopStats};
pub use event_loop_thread::{EventLoopThread, ThreadInitCallback};
pub use event_loop_thread_pool::EventLoopThreadPool;

pub use poller::{ActiveEvent, Poller};
pub use tcp_client::TcpClient;

pub use tcp_connection::{CrossThreadSend, KeepAlive, State, TcpConnection, TcpConnectionPtr};
pub use tcp_server::{ServerOption, TcpServer};
pub use timer_queue::TimerId;
