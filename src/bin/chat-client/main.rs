//! `chat-client [HOST:PORT]`: the command-line chat client.
//!
//! It is a program of its own, not part of the server's library: these
//! modules use the library's [`chat::protocol`] (and the
//! [`chat::model`] types its replies carry) and nothing else of it.
//!
//! The client is two threads around one blocking `TcpStream`: the input
//! thread reads commands (from rustyline on a terminal, from standard input
//! otherwise) and sends requests; the reader thread decodes what the server
//! sends and prints it. `docs/client.md` documents the commands and the
//! output format.
//!
//! | module | what it does |
//! |---|---|
//! | [`options`] | the command line: address, `--linger-ms`, `--timeout-ms`, `--tls` |
//! | [`command`] | a typed line → [`Command`](command::Command); the command table |
//! | [`names`] | `chat:alice:…`, `groupChat:team:…`: names to ids, from the last login or refresh ack |
//! | [`request`] | a command → the JSON request the original client would send |
//! | [`connection`] | the socket and the reader thread, framing with `protocol::codec` |
//! | [`tls`] | `--tls`: rustls around the same socket, trust from `--ca` or the system |
//! | [`incoming`] | a server message → [`Incoming`](incoming::Incoming) |
//! | [`render`] | an incoming message → lines of text; errno in plain words |
//! | [`state`] | [`ClientState`](state::ClientState), shared by the threads: who is logged in, the awaited reply |
//! | [`book`] | [`LogBook`](book::LogBook): the messages shown per conversation, for deduplication and catch-up |
//! | [`chat_client`] | runs commands, waits for acks, wires the reader to the output; catch-up after login |
//! | [`reconnect`] | a lost connection: reconnect with backoff, log in again, catch up, resend unacked chats |
//! | [`interactive`] | the terminal mode: menu, prompt, hidden passwords |
//! | [`batch`] | the non-interactive mode for scripts and tests |
//! | [`output`], [`style`], [`help`], [`line_helper`], [`terminal`], [`clock`] | printing, colours, help text, completion, termios, local time |

mod batch;
mod book;
mod chat_client;
mod clock;
mod command;
mod connection;
mod help;
mod incoming;
mod interactive;
mod line_helper;
mod names;
mod options;
mod output;
mod reconnect;
mod render;
mod request;
mod state;
mod style;
mod terminal;
mod tls;

use std::io::IsTerminal;
use std::process::ExitCode;

use connection::Connection;
use options::{Invocation, USAGE};

fn main() -> ExitCode {
    run(std::env::args().skip(1))
}

/// The whole program: parses `args` (without the program name), connects,
/// and runs the mode that suits standard input.
///
/// Exit status: 0 after `quit` or end of input, 1 when the server cannot be
/// reached or the connection is lost, 2 for a bad command line.
fn run(args: impl IntoIterator<Item = String>) -> ExitCode {
    let options = match options::parse(args) {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("chat-client {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat-client: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(t) = &options.tls {
        match tls::TlsClient::new(t.ca.as_deref(), t.server_name.as_deref(), &options.addr) {
            Ok(client) => tls::install(client),
            Err(e) => {
                eprintln!("chat-client: --tls: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let conn = match Connection::connect(&options.addr, options.connect_timeout) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!(
                "chat-client: cannot connect to {}: {e} (is chat-server running?)",
                options.addr
            );
            return ExitCode::FAILURE;
        }
    };
    if std::io::stdin().is_terminal() {
        interactive::run(conn, &options)
    } else {
        batch::run(conn, &options)
    }
}
