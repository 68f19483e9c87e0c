//! Non-interactive mode: standard input is not a terminal.
//!
//! Commands are read one per line until end of input or `quit`; replies and
//! incoming messages go to standard output, one per line, in the format of
//! [`render`](super::render); the client's own complaints (a mistyped
//! command) go to standard error. At the end the client lingers for
//! `--linger` so late messages are still shown, logs out, and exits 0, or
//! [`EXIT_REFUSED`] when the server refused a request (an errno), the
//! client refused a name it could not resolve ([`names`](super::names)),
//! or the server did not answer one within `--timeout` (with `--strict`). A lost
//! connection is reported on standard error with exit status 1; a bad
//! command line is 2.

use std::io::{self, BufRead};
use std::process::ExitCode;
use std::sync::Arc;

use super::chat_client::{ChatClient, Flow};
use super::command;
use super::connection::Connection;
use super::options::Options;
use super::output::{Output, Plain};
use super::style::Style;

/// The exit status of a script some of whose requests the server refused
/// or left unanswered.
pub const EXIT_REFUSED: u8 = 3;

/// Runs commands from standard input on `conn`; see the module docs.
pub fn run(conn: Connection, options: &Options) -> ExitCode {
    let style = Style::for_stdout();
    let out: Arc<dyn Output> = Arc::new(Plain);
    let started = ChatClient::start(
        conn,
        out.clone(),
        style,
        (options.reply_timeout, options.log),
        options.on_lost(
            options.reconnect.unwrap_or(false),
            Box::new(|closed| {
                // Standard output is flushed after every line, so nothing is lost.
                eprintln!("chat-client: connection lost: {closed}");
                std::process::exit(1);
            }),
        ),
    );
    let client = match started {
        Ok(client) => client,
        Err(e) => {
            eprintln!("chat-client: cannot start the reader thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in io::stdin().lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                out.note(&format!("chat-client: cannot read standard input: {e}"));
                break;
            }
        };
        let command = match command::parse(&line) {
            Ok(Some(command)) => command,
            Ok(None) => continue,
            Err(e) => {
                out.note(&style.error(&format!("error: {e}")));
                continue;
            }
        };
        match client.run(&command) {
            Flow::Continue => {}
            Flow::Quit => break,
            Flow::Lost => return ExitCode::FAILURE,
        }
    }
    let left = client.leave(options.linger);
    let failures = client.state.failures();
    match left {
        Flow::Lost => ExitCode::FAILURE,
        _ if options.strict && failures > 0 => {
            eprintln!("chat-client: {failures} request(s) refused or unanswered");
            ExitCode::from(EXIT_REFUSED)
        }
        _ => ExitCode::SUCCESS,
    }
}
