//! What a run is asked to do: the scenario and its parameters.
//!
//! [`Config::default`] is a small `chat` run against `127.0.0.1:6000`; the
//! command line ([`crate::cli`]) and tests change the fields they care about.

use crate::phases::mixed::Mix;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The load a run generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Open `users` connections (optionally logged in) and hold them idle.
    Connect,
    /// Register `users` accounts: accounts per second.
    Register,
    /// Log `users` registered accounts in: logins per second.
    Login,
    /// `users` logged-in users in pairs, each sending to its partner.
    Chat,
    /// One group of `members` users, `senders` of them sending.
    Group,
    /// A paced mix of chat, group chat, friend changes and re-logins.
    Mixed,
    /// Fill the message log with `log_messages`, then read it back with
    /// SYNC in pages of 500: messages and pages per second.
    Sync,
    /// Pairs chat with cids while some users drop and come back: every
    /// acked message lost, duplicated or reordered across the reconnects.
    Reconnect,
    /// A long run against a server the bench starts and kills with SIGKILL
    /// every `restart_every`: `reconnect`'s pairs plus groups, slow
    /// readers, flooders and wrong passwords; at the end every acked
    /// message accounted for, memory flat, nobody stuck online.
    Soak,
    /// `users` log in, then all drop and reconnect at once, logging in by
    /// resume token (`tokens`) or by password, while `chatters` other
    /// users chat: time until all are back, and the chatters' latency.
    Storm,
}

impl Scenario {
    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Register => "register",
            Scenario::Login => "login",
            Scenario::Chat => "chat",
            Scenario::Group => "group",
            Scenario::Mixed => "mixed",
            Scenario::Sync => "sync",
            Scenario::Reconnect => "reconnect",
            Scenario::Soak => "soak",
            Scenario::Storm => "storm",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        [
            Scenario::Connect,
            Scenario::Register,
            Scenario::Login,
            Scenario::Chat,
            Scenario::Group,
            Scenario::Mixed,
            Scenario::Sync,
            Scenario::Reconnect,
            Scenario::Soak,
            Scenario::Storm,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Every parameter of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// What to do.
    pub scenario: Scenario,
    /// Servers; users are dealt to them round-robin.
    pub addrs: Vec<SocketAddr>,
    /// Number of users (connections); `group` uses `members` instead.
    pub users: usize,
    /// Client threads, each with its own `mio::Poll`.
    pub threads: usize,
    /// How long traffic runs (`chat`, `group`, `mixed`).
    pub duration: Option<Duration>,
    /// Messages per sender (`chat`, `group`); with `duration`, whichever
    /// comes first ends the sending.
    pub messages: Option<u64>,
    /// Messages in flight per sender (`chat`, `group`); 1 waits for delivery.
    pub window: u64,
    /// Group size (`group`; group size in `mixed`).
    pub members: usize,
    /// Members that send (`group`).
    pub senders: usize,
    /// Length of each chat text in bytes.
    pub size: usize,
    /// How long `connect` holds its connections.
    pub hold: Duration,
    /// Whether `connect` logs its users in.
    pub login: bool,
    /// The server's process id, for its memory and CPU time.
    pub server_pid: Option<u32>,
    /// Talk to the C++ original: one request in flight per connection,
    /// pauses instead of the acks it does not send, no newline after requests.
    pub legacy: bool,
    /// Pause after a request that gets no reply in legacy mode.
    pub legacy_gap: Duration,
    /// `--transport ws`: speak the protocol over WebSocket to the server's
    /// web listener (`--addr` is its `--http` address).
    pub websocket: bool,
    /// Name prefix for accounts and groups; fresh when `None`.
    pub prefix: Option<String>,
    /// Password of every account.
    pub password: String,
    /// Only set up users and groups, save them to `state_file`, and stop.
    pub setup_only: bool,
    /// Where `setup_only` saves what it set up.
    pub state_file: PathBuf,
    /// Use the users and groups saved by an earlier `setup_only` run.
    pub reuse: Option<PathBuf>,
    /// Upper bound of any one phase (connecting, registering, traffic, …).
    pub timeout: Duration,
    /// `--timeline FILE`: write the run second by second there, as CSV
    /// ([`crate::timeline`]).
    pub timeline: Option<PathBuf>,
    /// After sending stops, how long to wait for messages still in flight;
    /// also how long without any delivery counts as a stall.
    pub drain: Duration,
    /// Actions per user per second (`mixed`).
    pub rate: f64,
    /// Action weights (`mixed`).
    pub mix: Mix,
    /// `mixed`: each user's chats go to one partner (users `2p` and
    /// `2p + 1`, as `chat` pairs them) instead of a random user, so the
    /// conversations are few and stay the same.
    pub pairs: bool,
    /// How long a user stays logged out in `mixed`.
    pub offline_for: Duration,
    /// `mixed`: connections each user logs in on (the server needs
    /// `--sessions-per-user` at least this); every session's deliveries,
    /// self-copies of the user's own messages included, are booked apart.
    pub sessions: usize,
    /// Connects in progress at once, over all threads.
    pub connect_concurrency: usize,
    /// Connections per source address before moving to the next one
    /// (127.0.0.2, 127.0.0.3, …; loopback servers only).
    pub per_source: usize,
    /// Print a progress line on standard error every second.
    pub progress: bool,
    /// Send a cid with every chat and time its SEND_ACK (`chat`, `group`,
    /// `mixed`; always on in `sync` and `reconnect`).
    pub cid: bool,
    /// `storm`: log in again by resume token instead of by password.
    pub tokens: bool,
    /// `storm`: users (in pairs) chatting with cids during the storm.
    pub chatters: usize,
    /// `sync`: messages written during setup, over all conversations.
    pub log_messages: u64,
    /// `reconnect`: messages per second per sender at most (0: as fast as
    /// the window allows).
    pub msg_rate: f64,
    /// `reconnect`: share of the users that drop and come back.
    pub drop_fraction: f64,
    /// `reconnect`: mean time between one user's drops.
    pub drop_every: Duration,
    /// `soak`: what to run and how.
    pub soak: SoakConfig,
    /// `--tls`: talk TLS to every address.
    pub tls: bool,
    /// `--ca`: the PEM file of trusted certificates (else the system's).
    pub ca: Option<PathBuf>,
    /// `--server-name`: the name the certificate must carry (else the IP).
    pub server_name: Option<String>,
}

/// The `soak` scenario's own parameters.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The `chat-server` binary the bench starts (required).
    pub server: Option<PathBuf>,
    /// Extra arguments for it (`--listen` and `--db` are the bench's).
    pub server_args: Vec<String>,
    /// The store: `sqlite:PATH` or `mysql://…`; a fresh SQLite file in a
    /// temporary directory when `None`.
    pub db: Option<String>,
    /// Between two SIGKILLs (zero: never).
    pub restart_every: Duration,
    /// Between two readings of the server's memory.
    pub sample_every: Duration,
    /// Of each server's life, how long memory is not judged.
    pub warmup: Duration,
    /// How much the last third's peak memory may exceed the first third's,
    /// in percent.
    pub rss_tolerance: f64,
    /// Users that now and then stop reading.
    pub slow_readers: usize,
    /// How long a slow reader stops reading, each time (it reads for as
    /// long between pauses).
    pub slow_pause: Duration,
    /// Users that send as fast as their `flood_window` allows.
    pub flooders: usize,
    /// Messages a flooder has awaiting their SEND_ACK.
    pub flood_window: u64,
    /// Messages a second a flooder sends at most.
    pub flood_rate: f64,
    /// Share of a user's messages that go to its group.
    pub group_share: f64,
    /// Share of logins tried first with a wrong password.
    pub wrong_password: f64,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            server: None,
            server_args: Vec::new(),
            db: None,
            restart_every: Duration::from_secs(240),
            sample_every: Duration::from_secs(5),
            warmup: Duration::from_secs(60),
            rss_tolerance: 20.0,
            slow_readers: 2,
            slow_pause: Duration::from_secs(10),
            flooders: 1,
            flood_window: 64,
            flood_rate: 200.0,
            group_share: 0.3,
            wrong_password: 0.2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scenario: Scenario::Chat,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 6000))],
            users: 100,
            threads: default_threads(),
            duration: None,
            messages: None,
            window: 1,
            members: 10,
            senders: 1,
            size: 32,
            hold: Duration::from_secs(10),
            login: false,
            server_pid: None,
            legacy: false,
            legacy_gap: Duration::from_millis(20),
            websocket: false,
            prefix: None,
            password: "bench-pw".to_string(),
            setup_only: false,
            state_file: PathBuf::from("chat-bench-state.json"),
            reuse: None,
            timeout: Duration::from_secs(120),
            timeline: None,
            drain: Duration::from_secs(5),
            rate: 1.0,
            mix: Mix::default(),
            pairs: false,
            offline_for: Duration::from_millis(500),
            sessions: 1,
            connect_concurrency: 512,
            per_source: 25_000,
            progress: false,
            cid: false,
            tokens: false,
            chatters: 0,
            log_messages: 10_000,
            msg_rate: 0.0,
            drop_fraction: 0.2,
            drop_every: Duration::from_secs(3),
            soak: SoakConfig::default(),
            tls: false,
            ca: None,
            server_name: None,
        }
    }
}

/// Half the cores (the server needs the rest), at least one.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

impl Config {
    /// How long traffic may be sent: the duration, or (when only a message
    /// count bounds the run) the phase timeout, or 10 s when neither is given.
    pub fn send_time(&self) -> Duration {
        match (self.duration, self.messages) {
            (Some(d), _) => d,
            (None, Some(_)) => self.timeout,
            (None, None) => Duration::from_secs(10),
        }
    }

    /// Number of users the scenario needs.
    pub fn user_count(&self) -> usize {
        match self.scenario {
            Scenario::Group => self.members,
            Scenario::Chat | Scenario::Sync | Scenario::Reconnect | Scenario::Soak => {
                self.users / 2 * 2
            }
            Scenario::Storm => self.users + self.chatters / 2 * 2,
            _ => self.users,
        }
    }

    /// Checks the combination of parameters.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.addrs.is_empty() {
            return Err("no server address".into());
        }
        if self.websocket && self.legacy {
            return Err(
                "the C++ original has no WebSocket: --transport ws without --legacy".into(),
            );
        }
        if self.websocket && self.soak.server.is_some() {
            return Err(
                "--transport ws drives a running server's --http address (--addr), not --server"
                    .into(),
            );
        }
        if self.user_count() == 0 {
            return Err("no users: --users (or --members for group) must be at least 1".into());
        }
        match self.scenario {
            Scenario::Chat if self.users < 2 => Err("chat needs at least 2 users".into()),
            Scenario::Sync if self.users < 2 => Err("sync needs at least 2 users".into()),
            Scenario::Sync | Scenario::Reconnect | Scenario::Soak if self.legacy => {
                Err("the C++ original has no message log".into())
            }
            Scenario::Reconnect if self.users < 2 => Err("reconnect needs at least 2 users".into()),
            Scenario::Reconnect if !(0.0..=1.0).contains(&self.drop_fraction) => {
                Err("--drop-fraction must be between 0 and 1".into())
            }
            Scenario::Reconnect if !(self.msg_rate >= 0.0 && self.msg_rate.is_finite()) => {
                Err("--msg-rate must be a number of messages a second, 0 for no limit".into())
            }
            Scenario::Soak => self.validate_soak(),
            Scenario::Storm if self.legacy => {
                Err("the C++ original has no resume tokens and no send acks".into())
            }
            Scenario::Group if self.members < 2 => Err("group needs at least 2 members".into()),
            Scenario::Group if self.senders == 0 || self.senders > self.members => {
                Err("--senders must be between 1 and --members".into())
            }
            Scenario::Mixed if !(self.rate > 0.0 && self.rate.is_finite()) => {
                Err("--rate must be a positive number".into())
            }
            _ if self.sessions == 0 => Err("--sessions-per-user must be at least 1".into()),
            Scenario::Mixed if self.sessions > 1 && (self.legacy || self.mix.relogin > 0) => Err(
                "--sessions-per-user above 1 needs the new protocol and a --mix without relogin \
                 (a session that logs in again is not handed what its other sessions got)"
                    .into(),
            ),
            _ if self.sessions > 1 && self.scenario != Scenario::Mixed => {
                Err("--sessions-per-user above 1 applies to mixed only".into())
            }
            _ if self.window == 0 => Err("--window must be at least 1".into()),
            _ if self.threads == 0 => Err("--threads must be at least 1".into()),
            _ => Ok(()),
        }
    }

    fn validate_soak(&self) -> Result<(), String> {
        let s = &self.soak;
        let share = |x: f64| (0.0..=1.0).contains(&x);
        if self.users < 4 {
            Err("soak needs at least 4 users".into())
        } else if s.server.is_none() {
            Err("soak needs --server PATH (the chat-server binary it starts)".into())
        } else if !share(self.drop_fraction) || !share(s.group_share) || !share(s.wrong_password) {
            Err(
                "--drop-fraction, --group-share and --wrong-password must be between 0 and 1"
                    .into(),
            )
        } else if !(self.msg_rate > 0.0 && self.msg_rate.is_finite()) {
            Err("soak: --msg-rate must be a positive number of messages a second".into())
        } else if s.slow_readers.max(s.flooders) > self.users / 2 {
            Err("soak: --slow-readers and --flooders must be at most half the users each".into())
        } else if s.sample_every.is_zero() || s.flood_window == 0 || self.window == 0 {
            Err("soak: --sample-every, --flood-window and --window must be above 0".into())
        } else if !(s.flood_rate > 0.0 && s.flood_rate.is_finite()) {
            Err("soak: --flood-rate must be a positive number of messages a second".into())
        } else if !(s.rss_tolerance >= 0.0 && s.rss_tolerance.is_finite()) {
            Err("--rss-tolerance must be a percentage".into())
        } else {
            Ok(())
        }
    }

    /// The window actually used: always 1 in legacy mode, where a delivery
    /// is the only sign that the server has read the previous message.
    pub fn effective_window(&self) -> u64 {
        if self.legacy {
            1
        } else {
            self.window
        }
    }
}
