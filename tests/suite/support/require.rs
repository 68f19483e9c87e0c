//! What a test needs besides this repository, and whether this machine has
//! it.
//!
//! Each [`Need`] is probed at most once per run, with a short timeout, and
//! only when a selected test needs it:
//!
//! | need | where | probe |
//! |---|---|---|
//! | `mysql` | `CHAT_TEST_MYSQL`, else `mysql://root@127.0.0.1:3306` | connect, `SELECT 1` |
//! | `redis` | `CHAT_TEST_REDIS`, else `redis://127.0.0.1:6379` | connect, `PING` |
//! | `redis-server` | the `redis-server` program | `redis-server --version` |
//! | `nginx` | `/usr/sbin/nginx` and its stream module | `nginx -t` of a configuration loading the module |
//! | `tmux` | the `tmux` program | `tmux -V` |
//! | `chromium` | the `chromium` and `chromedriver` programs | `chromium --version`, `chromedriver --version` |
//!
//! So on a machine where MariaDB and Redis answer on their default local
//! addresses, `cargo test` runs everything without any variable. A test
//! whose need is missing does not run: it is reported `ignored` with the
//! reason, and [`announce`] says once, before the first test, what is
//! missing and why. Under CI (`CI` set to anything non-empty) a missing
//! need fails each test that has it instead.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Something outside this repository that a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A MariaDB/MySQL server on which the tests may create databases.
    Mysql,
    /// A Redis server that tests share, each under its own key prefix.
    Redis,
    /// The `redis-server` program, for tests that kill their own Redis.
    RedisServer,
    /// nginx with its stream module, in front of cluster nodes.
    Nginx,
    /// tmux, to drive `chat-client` on a terminal.
    Tmux,
    /// Chromium and its WebDriver, to drive the browser client.
    Chromium,
}

const ALL: [Need; 6] = [
    Need::Mysql,
    Need::Redis,
    Need::RedisServer,
    Need::Nginx,
    Need::Tmux,
    Need::Chromium,
];

/// The nginx of Debian's packages, and its stream module.
pub const NGINX: &str = "/usr/sbin/nginx";
/// The stream module that nginx loads (package `libnginx-mod-stream`).
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// How long a probe may wait for a server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Need {
    /// The short name shown in brackets before a test's name.
    pub fn name(self) -> &'static str {
        match self {
            Need::Mysql => "mysql",
            Need::Redis => "redis",
            Need::RedisServer => "redis-server",
            Need::Nginx => "nginx",
            Need::Tmux => "tmux",
            Need::Chromium => "chromium",
        }
    }

    /// Where this need is looked for, as shown in messages.
    fn place(self) -> String {
        match self {
            Need::Mysql => format!("{} (CHAT_TEST_MYSQL)", redact(&mysql_url())),
            Need::Redis => format!("{} (CHAT_TEST_REDIS)", redact(&redis_url())),
            Need::RedisServer => "the redis-server program".to_owned(),
            Need::Nginx => format!("{NGINX} with {STREAM_MODULE}"),
            Need::Tmux => "the tmux program".to_owned(),
            Need::Chromium => "the chromium and chromedriver programs".to_owned(),
        }
    }

    /// `Ok` when this machine has it, or why not; probed on the first call.
    pub fn check(self) -> Result<(), &'static str> {
        static PROBED: [OnceLock<Result<(), String>>; ALL.len()] =
            [const { OnceLock::new() }; ALL.len()];
        let slot = &PROBED[self as usize];
        slot.get_or_init(|| self.probe().map_err(|e| format!("{}: {e}", self.place())))
            .as_ref()
            .map(|_| ())
            .map_err(String::as_str)
    }

    fn probe(self) -> Result<(), String> {
        match self {
            Need::Mysql => probe_mysql(&mysql_url()),
            Need::Redis => crate::support::redis::connect(&redis_url()).map(drop),
            Need::RedisServer => run_ok(Command::new("redis-server").arg("--version")),
            Need::Nginx => probe_nginx(),
            Need::Tmux => run_ok(Command::new("tmux").arg("-V")),
            Need::Chromium => probe_chromium(),
        }
    }
}

/// The MySQL server the tests create their databases on, without a
/// trailing slash: `CHAT_TEST_MYSQL` or `mysql://root@127.0.0.1:3306`.
pub fn mysql_url() -> String {
    from_env("CHAT_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
}

/// The Redis the tests share: `CHAT_TEST_REDIS` or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    from_env("CHAT_TEST_REDIS", "redis://127.0.0.1:6379")
}

fn from_env(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => default.to_owned(),
    }
}

/// `true` under CI, where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The first of `needs` that is missing, as a reason to give.
pub fn first_missing(needs: &[Need]) -> Option<String> {
    needs.iter().find_map(|n| {
        n.check()
            .err()
            .map(|why| format!("needs {}: {why}", n.name()))
    })
}

/// Prints, before the first test, what each selected test needs and what is
/// missing. `selected` holds the needs of every test that will run.
pub fn announce<'a>(selected: impl Iterator<Item = &'a [Need]>) {
    let selected: Vec<&[Need]> = selected.collect();
    let mut missing = 0;
    for need in ALL {
        let users = selected.iter().filter(|n| n.contains(&need)).count();
        if users == 0 {
            continue;
        }
        match need.check() {
            Ok(()) => println!("{:>12}: ok, {}", need.name(), need.place()),
            Err(why) => {
                missing += 1;
                let verdict = match (users, under_ci()) {
                    (1, false) => "the test that needs it is ignored",
                    (1, true) => "the test that needs it fails (CI)",
                    (_, false) => "the tests that need it are ignored",
                    (_, true) => "the tests that need it fail (CI)",
                };
                println!("{:>12}: MISSING, {why}; {verdict} ({users})", need.name());
            }
        }
    }
    if missing > 0 && !under_ci() {
        println!("(README.md, \"Quick start\", says how to provide them)");
    }
}

/// `mysql://user:secret@host` shown as `mysql://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

fn probe_mysql(url: &str) -> Result<(), String> {
    use mysql::prelude::Queryable;
    let opts = mysql::Opts::from_url(url).map_err(|e| e.to_string())?;
    let opts = mysql::OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(PROBE_TIMEOUT))
        .read_timeout(Some(PROBE_TIMEOUT))
        .write_timeout(Some(PROBE_TIMEOUT));
    let mut conn = mysql::Conn::new(opts).map_err(|e| e.to_string())?;
    match conn.query_first::<i64, _>("SELECT 1") {
        Ok(Some(1)) => Ok(()),
        Ok(other) => Err(format!("SELECT 1 answered {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// `nginx -t` of the smallest configuration that loads the stream module.
fn probe_nginx() -> Result<(), String> {
    for file in [NGINX, STREAM_MODULE] {
        if !Path::new(file).exists() {
            return Err(format!(
                "{file} is missing (apt-get install nginx libnginx-mod-stream)"
            ));
        }
    }
    let dir = std::env::temp_dir().join(crate::support::unique("chat-nginx-probe"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("probe.conf");
    let text = format!("load_module {STREAM_MODULE};\npid probe.pid;\nevents {{}}\nstream {{}}\n");
    let result = std::fs::write(&conf, text)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            run_ok(
                Command::new(NGINX)
                    .arg("-t")
                    .arg("-p")
                    .arg(&dir)
                    .arg("-c")
                    .arg(&conf)
                    .arg("-e")
                    .arg(dir.join("error.log")),
            )
        });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Both programs answer `--version` (apt-get install chromium chromium-driver).
fn probe_chromium() -> Result<(), String> {
    use crate::support::webdriver::{CHROMEDRIVER, CHROMIUM};
    for program in [CHROMIUM, CHROMEDRIVER] {
        run_ok(Command::new(program).arg("--version"))
            .map_err(|e| format!("{e} (apt-get install chromium chromium-driver)"))?;
    }
    Ok(())
}

/// Runs a short command; `Ok` if it exits 0.
fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{:?} failed ({}): {}",
        cmd.get_program(),
        out.status,
        err.trim()
    ))
}
