//! Command-line options of `chat-client`.

use std::path::PathBuf;
use std::time::Duration;

/// The port of `chat-server`'s default address.
pub const DEFAULT_PORT: u16 = 6000;

/// `chat-client --help`.
pub const USAGE: &str = "\
usage: chat-client [OPTIONS] [HOST:PORT]

A command-line client for chat-server (default address 127.0.0.1:6000).
On a terminal it is interactive; otherwise it reads commands from standard
input, one per line, and prints replies and messages one per line.

options:
  --linger DURATION  non-interactive: after the last command, wait this
                   long for late messages before leaving (default 500ms);
                   --linger-ms N: the same in milliseconds
  --timeout DURATION  wait at most this long for the server's reply to a
                   request (default 5s); --timeout-ms N: in milliseconds.
                   Durations as chat-server reads them: 500ms, 1.5s, 2m
  --reconnect      when the server goes away, connect again (backoff from
                   0.5 s to 30 s), log in again and catch up (the default
                   on a terminal); --no-reconnect: exit with status 1
  --tls            talk TLS (to chat-server's --tls-listen port), checking
                   the server's certificate against the system's trusted
                   CAs, or --ca's
  --ca FILE        with --tls: trust only the CA certificate(s) in this
                   PEM file (a self-signed server's own certificate works)
  --server-name N  with --tls: the name the certificate must carry
                   (default: the host of HOST:PORT)
  --strict         scripted mode: exit with status 3 when the server
                   refused a request (an errno) or did not answer it in
                   time (without it: 0); --no-strict turns it off again
  --no-log         talk as the original client, for a server without the
                   message log: no cid on chats, no SEND_ACK awaited, no
                   catch-up after login, no history
  -h, --help       show this help
  -V, --version    show the version

Type `help` in the client for its commands. NO_COLOR turns colours off.";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(Options),
    Help,
    Version,
}

/// The settings of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The server's `HOST:PORT`.
    pub addr: String,
    /// Non-interactive mode: how long to wait for late messages at the end.
    pub linger: Duration,
    /// How long to wait for the reply to a request.
    pub reply_timeout: Duration,
    /// How long to try to connect.
    pub connect_timeout: Duration,
    /// Use the message log: cids, SEND_ACKs, catch-up, history.
    pub log: bool,
    /// Reconnect when the server goes away: `None` is the mode's default
    /// (on a terminal yes, from a pipe no).
    pub reconnect: Option<bool>,
    /// `--tls`, with its `--ca` and `--server-name`.
    pub tls: Option<TlsOptions>,
    /// Scripted mode: exit 3 when a request was refused or unanswered
    /// (`--strict`; off by default, `--no-strict`).
    pub strict: bool,
}

/// `--tls` and its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--ca FILE`; `None`: the system's store.
    pub ca: Option<PathBuf>,
    /// `--server-name`; `None`: the host of the address.
    pub server_name: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            addr: format!("127.0.0.1:{DEFAULT_PORT}"),
            linger: Duration::from_millis(500),
            reply_timeout: Duration::from_millis(5000),
            connect_timeout: Duration::from_secs(5),
            log: true,
            reconnect: None,
            tls: None,
            strict: false,
        }
    }
}

impl Options {
    /// What to do when the connection is lost: `exit` at once, or, with
    /// `reconnect`, reconnect to the server and `exit` only when giving up.
    pub fn on_lost(
        &self,
        reconnect: bool,
        exit: Box<dyn FnOnce(super::connection::Closed) + Send>,
    ) -> super::chat_client::OnLost {
        use super::chat_client::OnLost;
        if reconnect {
            OnLost::Reconnect {
                addr: self.addr.clone(),
                connect_timeout: self.connect_timeout,
                give_up: exit,
            }
        } else {
            OnLost::Exit(exit)
        }
    }
}

/// Parses the arguments after the program name.
///
/// A bare `HOST` gets the default port; `--flag N` and `--flag=N` both work.
///
/// # Errors
///
/// A message naming the bad argument, to print above [`USAGE`].
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, String> {
    let mut options = Options::default();
    let mut addr = None;
    let (mut tls, mut ca, mut server_name) = (false, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--no-log" => options.log = false,
            "--strict" => options.strict = true,
            "--no-strict" => options.strict = false,
            "--reconnect" => options.reconnect = Some(true),
            "--no-reconnect" => options.reconnect = Some(false),
            "--tls" => tls = true,
            "--ca" => ca = Some(PathBuf::from(value("--ca")?)),
            "--server-name" => server_name = Some(value("--server-name")?),
            "--linger-ms" => options.linger = millis("--linger-ms", &value("--linger-ms")?)?,
            "--timeout-ms" => {
                options.reply_timeout = millis("--timeout-ms", &value("--timeout-ms")?)?;
            }
            "--timeout" => options.reply_timeout = duration("--timeout", &value("--timeout")?)?,
            "--linger" => options.linger = duration("--linger", &value("--linger")?)?,
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ if addr.is_some() => return Err(format!("unexpected argument {arg}")),
            _ => addr = Some(arg),
        }
    }
    if !tls && (ca.is_some() || server_name.is_some()) {
        return Err("--ca and --server-name go with --tls".into());
    }
    if tls {
        options.tls = Some(TlsOptions { ca, server_name });
    }
    if let Some(addr) = addr {
        options.addr = if addr.contains(':') {
            addr
        } else {
            format!("{addr}:{DEFAULT_PORT}")
        };
    }
    Ok(Invocation::Run(options))
}

/// `--timeout-ms`, `--linger-ms`: a bare number is milliseconds (the old
/// form); with a unit it is a duration as the server reads them (`1.5s`).
fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    if let Ok(ms) = value.trim().parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    duration(flag, value)
}

/// `--timeout`, `--linger`: a duration as the server reads them (`500ms`,
/// `1.5s`, `2m`; a bare number is seconds).
fn duration(flag: &str, value: &str) -> Result<Duration, String> {
    chat::config::parse_duration(value).map_err(|e| format!("{flag}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(run(&[]), Ok(Invocation::Run(Options::default())));
        let Ok(Invocation::Run(o)) = run(&["--linger-ms=50", "chat.example", "--timeout-ms", "9"])
        else {
            panic!("should parse");
        };
        assert_eq!(o.addr, "chat.example:6000");
        assert_eq!(o.linger, Duration::from_millis(50));
        assert_eq!(o.reply_timeout, Duration::from_millis(9));
        assert!(o.log);
        let Ok(Invocation::Run(o)) = run(&["--no-log"]) else {
            panic!("should parse");
        };
        assert!(!o.log);
        let Ok(Invocation::Run(o)) = run(&["--reconnect"]) else {
            panic!("should parse");
        };
        assert_eq!(o.reconnect, Some(true));
        assert_eq!(run(&["-h"]), Ok(Invocation::Help));
        assert!(run(&["--linger-ms"]).is_err());
        let Ok(Invocation::Run(o)) = run(&["--timeout", "1.5s", "--linger", "2"]) else {
            panic!("durations");
        };
        assert_eq!(o.reply_timeout, Duration::from_millis(1500));
        assert_eq!(o.linger, Duration::from_secs(2), "a bare number is seconds");
        let Ok(Invocation::Run(o)) = run(&["--timeout-ms", "2s"]) else {
            panic!("a unit on the old flag");
        };
        assert_eq!(o.reply_timeout, Duration::from_secs(2));
        assert!(run(&["--timeout", "soon"]).is_err());
        let Ok(Invocation::Run(o)) = run(&["--tls", "--ca=ca.pem", "h:1"]) else {
            panic!("--tls");
        };
        let want = TlsOptions {
            ca: Some(PathBuf::from("ca.pem")),
            server_name: None,
        };
        assert_eq!(o.tls, Some(want));
        assert!(run(&["--ca", "ca.pem"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["a:1", "b:2"]).is_err());
    }
}
