//! The command line: `chat-bench SCENARIO [OPTIONS]`, parsed by hand.
//!
//! Options take their value as the next argument or after `=`
//! (`--users 100` or `--users=100`). Durations are in seconds and may be
//! fractional, or carry a unit: `500ms`, `90s`, `4m`, `1h`. [`HELP`] is the
//! full list.

use crate::config::{Config, Scenario};
use crate::gates::Gates;
use crate::phases::mixed::Mix;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `--help` text.
pub const HELP: &str = "\
chat-bench: load generator for servers speaking the chat protocol

USAGE:
    chat-bench SCENARIO [OPTIONS]

SCENARIOS:
    connect    open --users connections (with --login, log them in), hold them
               idle for --hold; reports how many succeeded and, with
               --server-pid, the server's memory per connection
    register   register --users accounts; accounts per second
    login      log --users registered accounts in; logins per second
    chat       --users logged-in users in pairs, each with --window messages
               in flight to its partner; delivered/s, latency, lost,
               duplicated, reordered
    group      one group of --members users, --senders of them sending with
               --window in flight; deliveries/s and fan-out latency
    mixed      --users users acting --rate times a second: mostly chat, some
               group chat (groups of --members), friend changes, re-logins
    sync       --users in pairs write --log-messages into their conversations
               (with cids, each acked), then all read them back at once with
               SYNC in pages of 500; fetched/s, pages/s, page latency
    reconnect  --users in pairs chat with cids (--window awaiting acks) while
               --drop-fraction of them drop their connection every
               --drop-every seconds, stay away --offline-for, log in again
               and catch up (CONVS, SYNC after the seq held); counts every
               acked message lost, pushed twice or out of order (exit 1 if
               any is lost or reordered)
    soak       starts --server itself and SIGKILLs it every --restart-every,
               restarting it on the same --db, while --users in pairs and
               groups chat with cids, drop and come back, a few read slowly,
               flood, or first try a wrong password; at the end every acked
               message must be in its receivers' view exactly once with the
               seqs gapless, the server's memory flat (VmRSS series), and
               every user able to log in (nobody stuck online); exit 1 if not
    storm      --users log in, then all drop and reconnect at once and log in
               again, by resume token (--tokens) or by password, while
               --chatters other users chat in pairs with cids, one message
               every 100 ms each; the time until all are logged in again,
               the logins' latency, and the chatters' SEND_ACK latency

Durations (SECS below): a bare number of seconds (10, 2.5) or with a unit
as chat-server reads them (500ms, 1.5s, 2m, 1h 30m).

COMMON OPTIONS:
    --addr HOST:PORT      server (repeatable: users go round-robin) [127.0.0.1:6000]
    --users N             users / connections [100]
    --threads T           client threads [half the cores]
    --duration SECS       how long traffic runs [10 unless --messages is given]
    --messages K          messages per sender (with --duration: first to end)
    --json                print one JSON object as the last line of output
    --output FILE         write that JSON object to FILE (stdout keeps the table)
    --timeline FILE       write the run second by second to FILE as CSV:
                          second,phase,sent,delivered,p50_us,p99_us,errors,ok
    --max-p99 DURATION    fail (exit 1) when the p99 latency is above this
    --min-rate N          fail (exit 1) when fewer than N messages (else
                          operations) per second were achieved
    --quiet               no progress line on standard error
    --timeout SECS        upper bound of each phase [120]
    --drain SECS          wait for messages in flight after sending stops;
                          also how long without deliveries is a stall [5]
    --server-pid PID      read the server's memory (VmRSS) and CPU time
    --cid                 chat, group, mixed: a cid on every message; reports
                          acked / ack_failed / unacked and the send->SEND_ACK
                          latency (ack_latency_us)

SCENARIO OPTIONS:
    --window W            messages in flight per sender [1]
    --members M           group size [10]
    --senders S           senders in the group [1]
    --size BYTES          length of each chat text [32]
    --hold SECS           connect: how long to hold [10]
    --login               connect: register and log the users in
    --rate R              mixed: actions per user per second [1]
    --log-messages M      sync: messages written during setup [10000]
    --mix LIST            mixed: weights, e.g. chat=85,group=10,friend=3,relogin=2
    --pairs               mixed: chat with one partner (users 2p and 2p+1) rather
                          than a random user each time
    --sessions-per-user K mixed: each user logs in on K connections, each
                          checked for every message and self-copy in order
                          (needs relogin=0 in --mix; the server needs
                          --sessions-per-user K or more) [1]
    --offline-for SECS    mixed: time logged out in a re-login; reconnect:
                          time away after a drop [0.5]
    --msg-rate R          reconnect: messages a second per sender at most
                          (0: as fast as --window allows) [0]
    --drop-fraction F     reconnect: share of users that drop [0.2]
    --drop-every SECS     reconnect: mean time between drops [3]
    --tokens              storm: log in again by resume token, not password
    --chatters M          storm: users chatting during the storm [0]
    --connect-concurrency N   connects in progress at once [512]

SOAK OPTIONS (also --users, --window, --members, --msg-rate [soak: 5],
--drop-fraction, --drop-every, --offline-for; --duration [soak: 30m]):
    --server PATH         the chat-server binary to start (required)
    --server-arg ARG      one more argument for it (repeatable)
    --db URL              sqlite:PATH or mysql://... [a fresh SQLite file]
    --restart-every SECS  SIGKILL and restart the server this often; 0: never [4m]
    --sample-every SECS   read the server's VmRSS this often [5]
    --warmup SECS         of each server's life, memory not judged [60]
    --rss-tolerance PCT   last third's peak memory at most this much above
                          the first third's [20]
    --slow-readers N      users that stop reading --slow-pause at a time, the
                          flooders' partners first [2]
    --slow-pause SECS     [10]
    --flooders N          users sending up to --flood-rate messages a second
                          with --flood-window in flight [1]
    --flood-rate R        [200]
    --flood-window W      [64]
    --group-share F       share of messages sent to the user's group [0.3]
    --wrong-password F    share of logins first tried with a wrong password [0.2]
    --per-source N        connections per loopback source address before
                          moving to 127.0.0.2, 127.0.0.3, ... [25000]

TLS (a chat-server --tls-listen port):
    --tls                 every connection speaks TLS
    --ca FILE             trust the PEM certificate(s) in FILE [the system's]
    --server-name NAME    the name the certificate must carry [the IP]

SETUP AND THE C++ ORIGINAL:
    --legacy              talk to the C++ original: one request in flight per
                          connection, a pause after requests it never answers,
                          window forced to 1, no newline after requests
    --legacy-gap SECS     that pause [0.02]
    --transport tcp|ws    ws: the protocol over WebSocket, one JSON object
                          per frame, to --addr = the server's --http
                          address (a running server, not --server) [tcp]
    --prefix P            name prefix of accounts and groups [fresh per run]
    --password PW         password of every account [bench-pw]
    --setup-only          register users and create groups, save them to
                          --state, and stop
    --state FILE          where --setup-only saves [chat-bench-state.json]
    --reuse FILE          use the users and groups saved by --setup-only
    -h, --help            this text

Exit status: 0 on success; 1 when the run failed (could not connect,
register or log in); 2 for bad arguments.
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Print [`HELP`].
    Help,
    /// Run with this configuration; `json` asks for the JSON line.
    Run {
        /// The run.
        config: Box<Config>,
        /// Whether to print the JSON report line.
        json: bool,
        /// `--output`, `--max-p99`, `--min-rate`.
        gates: Gates,
    },
}

/// Parses the arguments after the program name.
///
/// # Errors
/// A message naming the argument that is wrong.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut config = Config {
        progress: true,
        ..Config::default()
    };
    let mut json = false;
    let mut gates = Gates::default();
    let mut scenario = None;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut msg_rate_given = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => json = true,
            "--output" => gates.output = Some(PathBuf::from(value(&flag)?)),
            "--max-p99" => gates.max_p99 = Some(seconds(&flag, &value(&flag)?)?),
            "--min-rate" => gates.min_rate = Some(number(&flag, &value(&flag)?)?),
            "--quiet" => config.progress = false,
            "--timeline" => config.timeline = Some(PathBuf::from(value(&flag)?)),
            "--login" => config.login = true,
            "--legacy" => config.legacy = true,
            "--tls" => config.tls = true,
            "--ca" => config.ca = Some(PathBuf::from(value(&flag)?)),
            "--server-name" => config.server_name = Some(value(&flag)?),
            "--setup-only" => config.setup_only = true,
            "--cid" => config.cid = true,
            "--pairs" => config.pairs = true,
            "--tokens" => config.tokens = true,
            "--chatters" => config.chatters = number(&flag, &value(&flag)?)?,
            "--log-messages" => config.log_messages = number(&flag, &value(&flag)?)?,
            "--msg-rate" => {
                config.msg_rate = number(&flag, &value(&flag)?)?;
                msg_rate_given = true;
            }
            "--server" => config.soak.server = Some(PathBuf::from(value(&flag)?)),
            "--server-arg" => config.soak.server_args.push(value(&flag)?),
            "--db" => config.soak.db = Some(value(&flag)?),
            "--restart-every" => config.soak.restart_every = seconds(&flag, &value(&flag)?)?,
            "--sample-every" => config.soak.sample_every = seconds(&flag, &value(&flag)?)?,
            "--warmup" => config.soak.warmup = seconds(&flag, &value(&flag)?)?,
            "--rss-tolerance" => config.soak.rss_tolerance = number(&flag, &value(&flag)?)?,
            "--slow-readers" => config.soak.slow_readers = number(&flag, &value(&flag)?)?,
            "--slow-pause" => config.soak.slow_pause = seconds(&flag, &value(&flag)?)?,
            "--flooders" => config.soak.flooders = number(&flag, &value(&flag)?)?,
            "--flood-window" => config.soak.flood_window = number(&flag, &value(&flag)?)?,
            "--flood-rate" => config.soak.flood_rate = number(&flag, &value(&flag)?)?,
            "--group-share" => config.soak.group_share = number(&flag, &value(&flag)?)?,
            "--wrong-password" => config.soak.wrong_password = number(&flag, &value(&flag)?)?,
            "--drop-fraction" => config.drop_fraction = number(&flag, &value(&flag)?)?,
            "--drop-every" => config.drop_every = seconds(&flag, &value(&flag)?)?,
            "--addr" => addrs.push(resolve(&value(&flag)?)?),
            "--users" => config.users = number(&flag, &value(&flag)?)?,
            "--threads" => config.threads = number(&flag, &value(&flag)?)?,
            "--duration" => config.duration = Some(seconds(&flag, &value(&flag)?)?),
            "--messages" => config.messages = Some(number(&flag, &value(&flag)?)?),
            "--window" => config.window = number(&flag, &value(&flag)?)?,
            "--members" => config.members = number(&flag, &value(&flag)?)?,
            "--senders" => config.senders = number(&flag, &value(&flag)?)?,
            "--size" => config.size = number(&flag, &value(&flag)?)?,
            "--hold" => config.hold = seconds(&flag, &value(&flag)?)?,
            "--server-pid" => config.server_pid = Some(number(&flag, &value(&flag)?)?),
            "--legacy-gap" => config.legacy_gap = seconds(&flag, &value(&flag)?)?,
            "--transport" => {
                config.websocket = match value(&flag)?.as_str() {
                    "tcp" => false,
                    "ws" => true,
                    other => return Err(format!("--transport {other}: tcp or ws")),
                }
            }
            "--prefix" => config.prefix = Some(value(&flag)?),
            "--password" => config.password = value(&flag)?,
            "--state" => config.state_file = PathBuf::from(value(&flag)?),
            "--reuse" => config.reuse = Some(PathBuf::from(value(&flag)?)),
            "--timeout" => config.timeout = seconds(&flag, &value(&flag)?)?,
            "--drain" => config.drain = seconds(&flag, &value(&flag)?)?,
            "--rate" => config.rate = number(&flag, &value(&flag)?)?,
            "--mix" => config.mix = parse_mix(&value(&flag)?)?,
            "--offline-for" => config.offline_for = seconds(&flag, &value(&flag)?)?,
            "--sessions-per-user" => config.sessions = number(&flag, &value(&flag)?)?,
            "--connect-concurrency" => config.connect_concurrency = number(&flag, &value(&flag)?)?,
            "--per-source" => config.per_source = number(&flag, &value(&flag)?)?,
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            name => match (scenario, Scenario::from_name(name)) {
                (None, Some(s)) => scenario = Some(s),
                (Some(_), _) => return Err(format!("unexpected argument {name}")),
                (None, None) => return Err(format!("unknown scenario {name}")),
            },
        }
    }
    config.scenario = scenario.ok_or("missing SCENARIO (see --help)")?;
    if !addrs.is_empty() {
        config.addrs = addrs;
    }
    if config.scenario == Scenario::Soak {
        if !msg_rate_given {
            config.msg_rate = 5.0;
        }
        if config.duration.is_none() && config.messages.is_none() {
            config.duration = Some(Duration::from_secs(30 * 60));
        }
    }
    config.validate()?;
    Ok(Command::Run {
        config: Box::new(config),
        json,
        gates,
    })
}

fn number<T: FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

/// A duration as chat-server reads them: a bare number of seconds (`10`,
/// `2.5`), or `humantime`'s forms (`500ms`, `1.5s`, `2m`, `1h 30m`).
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{flag}: {text:?} is not a duration"));
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{flag}: {text:?} is not a duration such as 10, 500ms or 2m ({e})"))
}

fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("--addr {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {text}: no address"))
}

/// Parses `chat=85,group=10,friend=3,relogin=2`; omitted actions get 0.
fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        chat: 0,
        group: 0,
        friend: 0,
        relogin: 0,
    };
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: {part:?} is not NAME=WEIGHT"))?;
        let weight = number("--mix", weight)?;
        match name {
            "chat" => mix.chat = weight,
            "group" => mix.group = weight,
            "friend" => mix.friend = weight,
            "relogin" => mix.relogin = weight,
            _ => return Err(format!("--mix: unknown action {name:?}")),
        }
    }
    if mix.chat + mix.group + mix.friend + mix.relogin == 0 {
        return Err("--mix: all weights are zero".into());
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<(Config, bool), String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run { config, json, .. } => Ok((*config, json)),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn scenario_and_options() {
        let (c, json) = run(&[
            "chat",
            "--users",
            "1000",
            "--window=4",
            "--addr",
            "127.0.0.1:7000",
            "--addr",
            "127.0.0.1:7001",
            "--duration",
            "2.5",
            "--json",
        ])
        .expect("valid");
        assert_eq!(c.scenario, Scenario::Chat);
        assert_eq!((c.users, c.window, c.addrs.len(), json), (1000, 4, 2, true));
        assert_eq!(c.duration, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(run(&[]).unwrap_err().contains("SCENARIO"));
        assert!(run(&["chat", "--users"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(run(&["chat", "--users", "x"])
            .unwrap_err()
            .contains("not a valid number"));
        assert!(run(&["chat", "--bogus"])
            .unwrap_err()
            .contains("unknown option"));
        assert!(run(&["dance"]).unwrap_err().contains("unknown scenario"));
        assert!(run(&["group", "--members", "5", "--senders", "6"]).is_err());
    }

    #[test]
    fn the_message_log_options() {
        let (c, _) = run(&["chat", "--cid"]).expect("valid");
        assert!(c.cid);
        let (c, _) = run(&["sync", "--users", "10", "--log-messages=500"]).expect("valid");
        assert_eq!(
            (c.scenario, c.log_messages, c.user_count()),
            (Scenario::Sync, 500, 10)
        );
        let (c, _) =
            run(&["reconnect", "--drop-fraction", "0.5", "--drop-every", "1.5"]).expect("valid");
        assert_eq!(c.scenario, Scenario::Reconnect);
        assert_eq!(c.drop_fraction, 0.5);
        assert_eq!(c.drop_every, Duration::from_millis(1500));
        assert!(run(&["reconnect", "--drop-fraction", "2"]).is_err());
        let (c, _) = run(&["chat", "--timeline", "t.csv"]).expect("valid");
        assert_eq!(c.timeline, Some(PathBuf::from("t.csv")));
        let (c, _) = run(&["reconnect", "--msg-rate", "50"]).expect("valid");
        assert_eq!(c.msg_rate, 50.0);
        assert!(run(&["reconnect", "--msg-rate", "-1"]).is_err());
        assert!(run(&["sync", "--legacy"])
            .unwrap_err()
            .contains("no message log"));
        assert!(run(&["reconnect", "--users", "1"]).is_err());
    }

    #[test]
    fn the_soak_options() {
        let (c, _) = run(&[
            "soak",
            "--server",
            "target/release/chat-server",
            "--server-arg=--threads",
            "--server-arg",
            "2",
            "--restart-every",
            "1m",
            "--db",
            "mysql://root@127.0.0.1:3306/soak",
            "--slow-pause",
            "500ms",
        ])
        .expect("valid");
        assert_eq!(c.scenario, Scenario::Soak);
        assert_eq!(c.soak.server_args, ["--threads", "2"]);
        assert_eq!(c.soak.restart_every, Duration::from_secs(60));
        assert_eq!(c.soak.slow_pause, Duration::from_millis(500));
        assert_eq!(
            c.soak.db.as_deref(),
            Some("mysql://root@127.0.0.1:3306/soak")
        );
        assert_eq!(c.duration, Some(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(c.msg_rate, 5.0);
        let (c, _) = run(&[
            "soak",
            "--server",
            "s",
            "--duration",
            "2h",
            "--msg-rate",
            "1",
        ])
        .expect("valid");
        assert_eq!(
            (c.duration, c.msg_rate),
            (Some(Duration::from_secs(7200)), 1.0)
        );
        assert!(run(&["soak"]).unwrap_err().contains("--server"));
        assert!(run(&["soak", "--server", "s", "--flooders", "60"]).is_err());
        assert!(run(&["chat", "--duration", "3x"]).is_err());
    }

    #[test]
    fn help_and_mix() {
        assert!(matches!(parse(["--help".to_string()]), Ok(Command::Help)));
        let (c, _) = run(&["mixed", "--mix", "chat=1,relogin=1"]).expect("valid");
        assert_eq!((c.mix.chat, c.mix.group, c.mix.relogin), (1, 0, 1));
        assert!(run(&["mixed", "--mix", "chat=0"]).is_err());
    }
}
