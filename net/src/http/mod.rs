//! HTTP/1.1 on the reactor: muduo's `muduo/net/http`, class for class.
//!
//! | muduo | Rust | file |
//! |---|---|---|
//! | `HttpServer` | [`HttpServer`], [`Reply`], [`HttpCallback`] | `server.rs` |
//! | `HttpContext` | [`HttpContext`], [`Limits`], [`ParseError`] | `context.rs` |
//! | `HttpRequest` | [`HttpRequest`], [`Version`] | `request.rs` |
//! | `HttpResponse` | [`HttpResponse`] | `response.rs` |
//!
//! Requests are parsed with `httparse`; keep-alive and pipelining work as
//! in muduo (one request at a time off the input buffer, answered in
//! order). A [`Reply::Upgrade`] turns the connection into a WebSocket
//! ([`crate::websocket`]). The thread rules are `TcpServer`'s: the
//! callback runs on the connection's loop thread.

mod context;
mod request;
mod response;
mod server;

pub use context::{HttpContext, Limits, ParseError};
pub use request::{HttpRequest, Version};
pub use response::{reason_phrase, HttpResponse};
pub use server::{AdmitCallback, HttpCallback, HttpServer, Reply, Ticket};
