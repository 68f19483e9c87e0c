//! `chat-client [HOST:PORT]`: the command-line chat client.
//!
//! Everything lives in the library's [`chat::client`] module; see
//! `docs/client.md` for the commands and the output format.

use std::process::ExitCode;

fn main() -> ExitCode {
    chat::client::main(std::env::args().skip(1))
}
