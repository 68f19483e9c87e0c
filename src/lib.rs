//! # chat: a muduo-style chat server
//!
//! The layers, each in its own folder with one way in:
//!
//! | module | what it does |
//! |---|---|
//! | [`model`] | the domain model: users, groups, members, roles |
//! | [`protocol`] | message ids, the JSON stream codec, request parsing and reply building |
//! | [`storage`] | the `Store` trait with its SQLite and MySQL implementations |
//! | [`runtime`] | worker pools, thread priority, the hash gate, the allocator setting, the sharded map |
//! | [`service`] | one handler per msgId, run on the worker pool or the I/O thread |
//! | [`server`] | the `net::TcpServer` callbacks: decode, dispatch, deliver |
//! | [`config`] | `chat-server`'s settings: flags, environment, config file, defaults |
//! | [`cluster`] | Redis publish/subscribe between nodes, cluster-wide presence |
//!
//! Imports point one way. `model`, `runtime` and `cluster` depend on
//! nothing else in this crate (the cluster reaches the server through its
//! `LocalNode` trait); `protocol` and `storage` on `model` only, not on
//! each other; `config` on `runtime`; `service` on all of those; `server`,
//! which builds and wires everything, on all of them.
//!
//! The command-line client is not part of this library: it is the
//! `chat-client` binary (`src/bin/chat-client/`), which uses [`protocol`]
//! and [`model`] and nothing else of this crate.
//!
//! `ARCHITECTURE.md` at the top of the repository follows one chat message
//! through these layers.

pub mod cluster;
pub mod config;
pub mod model;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod service;
pub mod storage;
