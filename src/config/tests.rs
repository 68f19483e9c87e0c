//! Precedence and parsing of the configuration.

use std::collections::HashMap;

use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run(a: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Config::load(&args(a), |k| env.get(k).cloned())? {
        Command::Run(c) => Ok(c),
        other => panic!("expected Run, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6000".parse().unwrap());
    assert_eq!(c.workers, 4);
    assert_eq!(c.db, "sqlite:data/chat.db");
    assert_eq!(c.max_message, 65536);
    assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.high_water_mark, 4 << 20);
    assert_eq!(c.argon2_memory_kib, 19 * 1024);
    assert_eq!(c.hash_max_wait, Duration::from_secs(1));
    assert_eq!(
        run(&["--hash-max-wait", "200ms"], &[])
            .unwrap()
            .hash_max_wait,
        Duration::from_millis(200)
    );
    assert!(c.redis.is_none() && c.node_id.is_none());
    assert_eq!(c.hash_priority, Priority::Idle);
    assert_eq!(c.keepalive, Some(Keepalive::DEFAULT));
    assert_eq!(c.login_takeover_grace, Some(Duration::from_secs(30)));
}

#[test]
fn keepalive_takes_one_to_three_parts_or_off() {
    let ka = |v: &str| run(&["--keepalive", v], &[]).map(|c| c.keepalive);
    let secs = Duration::from_secs;
    let full = |idle, interval, probes| {
        Some(Keepalive {
            idle: secs(idle),
            interval: secs(interval),
            probes,
        })
    };
    assert_eq!(ka("off").unwrap(), None);
    assert_eq!(ka("0").unwrap(), None);
    assert_eq!(ka("5s").unwrap(), full(5, 10, 3));
    assert_eq!(ka("5s, 2s").unwrap(), full(5, 2, 3));
    assert_eq!(ka("1m,1s,9").unwrap(), full(60, 1, 9));
    let env = run(&[], &[("CHAT_KEEPALIVE", "7s,3s,2")]).unwrap();
    assert_eq!(env.keepalive, full(7, 3, 2));
    for bad in [
        "",
        "500ms",
        "5s,0",
        "5s,1s,0",
        "5s,1s,128",
        "5s,1s,3,4",
        "on",
    ] {
        let err = ka(bad).unwrap_err().to_string();
        assert!(err.contains("keepalive"), "{bad:?}: {err}");
    }
}

#[test]
fn login_takeover_grace_is_a_duration_or_off() {
    let grace = |v: &str| run(&["--login-takeover-grace", v], &[]).map(|c| c.login_takeover_grace);
    assert_eq!(grace("off").unwrap(), None);
    assert_eq!(grace("OFF").unwrap(), None);
    assert_eq!(grace("1s").unwrap(), Some(Duration::from_secs(1)));
    assert_eq!(grace("0").unwrap(), Some(Duration::ZERO));
    let err = grace("soon").unwrap_err().to_string();
    assert!(err.contains("login-takeover-grace"), "{err}");
}

#[test]
fn limits_before_login() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.login_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.max_anonymous_per_address, 64);
    assert_eq!(c.login_hold_bytes, 64 << 10);
    assert_eq!(c.login_hold_total, 16 << 20);
    let c = run(
        &[
            "--login-timeout",
            "0",
            "--max-anonymous-per-address=0",
            "--login-hold-bytes",
            "1KiB",
        ],
        &[("CHAT_LOGIN_HOLD_TOTAL", "1MiB")],
    )
    .unwrap();
    assert_eq!(c.login_timeout, None, "0 turns it off");
    assert_eq!(c.max_anonymous_per_address, 0);
    assert_eq!(c.login_hold_bytes, 1024);
    assert_eq!(c.login_hold_total, 1 << 20);
    assert!(run(&["--max-anonymous-per-address", "-1"], &[]).is_err());
}

#[test]
fn limits_per_address_and_account() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.max_connections_per_address, 256);
    assert_eq!(c.login_limits, LoginLimits::default());
    let l = &c.login_limits;
    assert_eq!(
        (
            l.pending_per_address,
            l.failures_per_account,
            l.failures_per_address
        ),
        (16, 5, 20)
    );
    assert_eq!(l.window, Duration::from_secs(60));
    assert_eq!(l.cooldown_max, Duration::from_secs(900));
    assert_eq!(
        (l.registrations_per_address, l.accounts_per_address),
        (20, 100)
    );
    assert_eq!(l.accounts_window, Duration::from_secs(86_400));
    let c = run(
        &[
            "--max-connections-per-address=0",
            "--max-pending-hashes-per-address",
            "3",
            "--login-failures-per-account",
            "0",
            "--login-window",
            "2s",
            "--login-cooldown=500ms",
            "--login-cooldown-max",
            "4s",
            "--registrations-per-address",
            "7",
            "--accounts-window",
            "1h",
        ],
        &[
            ("CHAT_LOGIN_FAILURES_PER_ADDRESS", "9"),
            ("CHAT_ACCOUNTS_PER_ADDRESS", "2"),
        ],
    )
    .unwrap();
    assert_eq!(c.max_connections_per_address, 0);
    assert_eq!(
        c.login_limits,
        LoginLimits {
            pending_per_address: 3,
            failures_per_account: 0,
            failures_per_address: 9,
            window: Duration::from_secs(2),
            cooldown: Duration::from_millis(500),
            cooldown_max: Duration::from_secs(4),
            registrations_per_address: 7,
            accounts_per_address: 2,
            accounts_window: Duration::from_secs(3600),
        }
    );
    assert!(run(&["--login-window", "0"], &[]).is_err(), "a window of 0");
    assert!(run(&["--accounts-window", "0s"], &[]).is_err());
    assert!(run(&["--login-failures-per-address", "-1"], &[]).is_err());
}

#[test]
fn pending_hashes_per_connection() {
    assert_eq!(run(&[], &[]).unwrap().max_pending_hashes, 4);
    let c = run(&["--max-pending-hashes=1"], &[]).unwrap();
    assert_eq!(c.max_pending_hashes, 1);
    let c = run(&[], &[("CHAT_MAX_PENDING_HASHES", "16")]).unwrap();
    assert_eq!(c.max_pending_hashes, 16);
    assert!(run(&["--max-pending-hashes", "0"], &[]).is_err());
}

#[test]
fn rate_limits_jobs_in_flight_and_quotas() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.max_pending_requests, 64);
    assert_eq!(c.worker_queue, 65_536);
    assert_eq!(c.chat_rate, (1000, 2000));
    assert_eq!(c.request_rate, (1000, 2000));
    assert_eq!(
        (
            c.max_friends,
            c.max_groups_created,
            c.max_groups_joined,
            c.max_group_size
        ),
        (1000, 100, 500, 2000)
    );
    assert_eq!(c.max_pending_per_recipient, 100_000);
    let c = run(
        &[
            "--max-pending-requests=0",
            "--worker-queue",
            "8",
            "--chat-rate=5",
            "--chat-burst=10",
            "--request-rate=0",
            "--max-friends=2",
            "--max-groups-created=3",
            "--max-groups-joined=4",
            "--max-group-size=5",
        ],
        &[
            ("CHAT_MAX_PENDING_PER_RECIPIENT", "6"),
            ("CHAT_REQUEST_BURST", "7"),
        ],
    )
    .unwrap();
    assert_eq!(c.max_pending_requests, 0);
    assert_eq!(c.worker_queue, 8);
    assert_eq!(c.chat_rate, (5, 10));
    assert_eq!(c.request_rate, (0, 7));
    assert_eq!(
        (
            c.max_friends,
            c.max_groups_created,
            c.max_groups_joined,
            c.max_group_size
        ),
        (2, 3, 4, 5)
    );
    assert_eq!(c.max_pending_per_recipient, 6);
    assert!(run(&["--worker-queue=0"], &[]).is_err());
    assert!(run(&["--chat-burst=0"], &[]).is_err());
    assert!(run(&["--max-friends=-1"], &[]).is_err());
    assert!(run(&["--chat-rate=99999999999"], &[]).is_err());
}

#[test]
fn hash_priority_is_idle_or_a_nice_increment() {
    let priority = |v: &str| run(&["--hash-priority", v], &[]).map(|c| c.hash_priority);
    assert_eq!(priority("idle").unwrap(), Priority::Idle);
    assert_eq!(priority("IDLE").unwrap(), Priority::Idle);
    assert_eq!(priority("0").unwrap(), Priority::Nice(0));
    assert_eq!(priority("19").unwrap(), Priority::Nice(19));
    let env = run(&[], &[("CHAT_HASH_PRIORITY", "10")]).unwrap();
    assert_eq!(env.hash_priority, Priority::Nice(10));
    for bad in ["20", "-1", "low", ""] {
        let err = priority(bad).unwrap_err().to_string();
        assert!(err.contains("hash-priority"), "{bad:?}: {err}");
    }
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = std::env::temp_dir().join(format!("chat-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chat.conf");
    std::fs::write(
        &file,
        "# comment\nworkers = 7\nthreads = 3\nidle_timeout = 5s  # trailing comment\ndb = \"sqlite:x.db\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let c = run(
        &["--workers=2", "--config", path],
        &[("CHAT_WORKERS", "5"), ("CHAT_THREADS", "6")],
    )
    .unwrap();
    assert_eq!(c.workers, 2, "flag wins");
    assert_eq!(c.threads, 6, "environment beats the file");
    assert_eq!(
        c.idle_timeout,
        Some(Duration::from_secs(5)),
        "file beats the default"
    );
    assert_eq!(c.db, "sqlite:x.db");
    let c = run(&[], &[("CHAT_CONFIG", path)]).unwrap();
    assert_eq!(c.workers, 7, "CHAT_CONFIG names the file too");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_name_the_problem() {
    let e = run(&["--bogus", "1"], &[]).unwrap_err();
    assert!(e.0.contains("--bogus"), "{e}");
    let e = run(&["--workers"], &[]).unwrap_err();
    assert!(e.0.contains("value is required"), "{e}");
    let e = run(&["--workers", "0"], &[]).unwrap_err();
    assert!(e.0.contains("minimum"), "{e}");
    let e = run(&[], &[("CHAT_LISTEN", "nowhere")]).unwrap_err();
    assert!(e.0.contains("environment (CHAT_LISTEN)"), "{e}");
    assert!(layers::legacy_pairs("nonsense").is_err());
}

#[test]
fn sizes_and_durations() {
    assert_eq!(parse_size("65536"), Ok(65536));
    assert_eq!(parse_size("64KiB"), Ok(65536));
    assert_eq!(
        parse_size("64KB"),
        Ok(65536),
        "the old forms keep their meaning"
    );
    assert_eq!(parse_size("4m"), Ok(4 << 20));
    assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
    assert!(parse_size("4 parsecs").is_err());
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("-1s").is_err());
    assert_eq!(
        run(&["--idle-timeout", "0"], &[]).unwrap().idle_timeout,
        None
    );
    assert_eq!(
        run(&["--idle-timeout", "off"], &[]).unwrap().idle_timeout,
        None
    );
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    use clap::CommandFactory;
    let text = usage();
    for arg in settings::Cli::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        assert!(text.contains(&format!("--{long}")), "{long}");
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(env.starts_with("CHAT_"), "{long}: {env}");
            assert_eq!(
                env,
                format!("CHAT_{}", long.replace('-', "_").to_uppercase())
            );
            assert!(text.contains(env.as_ref()), "{long}");
        }
    }
    assert!(
        text.contains("[default: sqlite:DATA-DIR/chat.db, so sqlite:data/chat.db]")
            && text.contains("--data-dir <DIR>")
            && text.contains("[default: data;"),
        "the data path"
    );
    assert!(matches!(
        Config::load(&args(&["--help"]), |_| None),
        Ok(Command::Help)
    ));
    assert!(matches!(
        Config::load(&args(&["--version"]), |_| None),
        Ok(Command::Version)
    ));
}

#[test]
fn cluster_mode_needs_mysql() {
    for db in ["sqlite:data/chat.db", "sqlite::memory:"] {
        let e = run(&["--redis", "redis://127.0.0.1:6379", "--db", db], &[]).unwrap_err();
        assert!(e.0.contains("needs a MySQL store"), "{e}");
        assert!(e.0.contains("cannot be shared"), "{e}");
    }
    let c = run(
        &[
            "--redis=redis://127.0.0.1:6379",
            "--db=mysql://root@127.0.0.1:3306/chat",
            "--liveness=2s",
            "--redis-prefix=test:1",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.liveness, Duration::from_secs(2));
    assert_eq!(c.redis_prefix, "test:1");
    assert!(
        c.node_id.is_none(),
        "the default is made from the bound port"
    );
    let c = run(&[], &[("CHAT_LIVENESS", "500ms")]).unwrap();
    assert_eq!(c.liveness, Duration::from_millis(500));
    assert_eq!(c.redis_prefix, "chat");
}

#[test]
fn tls_listener_needs_a_certificate_and_a_key() {
    let c = run(&[], &[]).unwrap();
    assert!(c.tls_listen.is_none() && c.tls_cert.is_none() && c.tls_key.is_none());
    let c = run(
        &["--tls-listen", "127.0.0.1:0", "--tls-cert", "c.pem"],
        &[("CHAT_TLS_KEY", "k.pem")],
    )
    .unwrap();
    assert_eq!(c.tls_listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
    assert_eq!(c.tls_key, Some(PathBuf::from("k.pem")));
    let err = run(&["--tls-listen", "127.0.0.1:0", "--tls-cert", "c.pem"], &[]).unwrap_err();
    assert!(err.0.contains("--tls-key"), "{err}");
    assert!(run(&["--tls-listen", "nowhere"], &[]).is_err());
}

#[test]
fn https_is_off_by_default_and_needs_a_certificate_and_a_key() {
    assert!(run(&[], &[]).unwrap().https.is_none());
    let c = run(
        &[
            "--https",
            "127.0.0.1:0",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.https, Some("127.0.0.1:0".parse().unwrap()));
    assert!(c.tls_listen.is_none());
    let err = run(&["--https", "127.0.0.1:0", "--tls-key", "k.pem"], &[]).unwrap_err();
    assert!(
        err.0.contains("--https") && err.0.contains("--tls-cert"),
        "{err}"
    );
    assert!(run(&["--https", "nowhere"], &[]).is_err());
}

#[test]
fn token_ttl_and_key_file() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.token_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(c.token_key_path(), std::path::Path::new("data/token.key"));
    let ttl = |v: &str| run(&["--token-ttl", v], &[]).map(|c| c.token_ttl);
    assert_eq!(ttl("2s").unwrap(), Duration::from_secs(2));
    assert_eq!(ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
    for bad in ["0", "500ms", "soon"] {
        let err = ttl(bad).unwrap_err().to_string();
        assert!(err.contains("token-ttl"), "{bad}: {err}");
    }
    let key = |a: &[&str]| run(a, &[]).unwrap().token_key_path();
    assert_eq!(
        key(&["--db", "sqlite:/var/chat/chat.db"]),
        std::path::Path::new("/var/chat/token.key")
    );
    assert_eq!(
        key(&["--db", "sqlite:chat.db"]),
        std::path::Path::new("token.key")
    );
    assert_eq!(
        key(&["--db", "sqlite::memory:"]),
        std::path::Path::new("token.key")
    );
    assert_eq!(
        key(&["--db", "mysql://root@127.0.0.1:3306/chat"]),
        std::path::Path::new("token.key"),
        "MySQL: the current directory"
    );
    assert_eq!(
        key(&[
            "--db",
            "mysql://root@h/chat",
            "--token-key-file",
            "/etc/chat.key"
        ]),
        std::path::Path::new("/etc/chat.key")
    );
}

/// `--data-dir` moves the default store, its journal and the token key;
/// an explicit `--db` or `--token-key-file` still wins; flag over
/// environment over file, as every setting.
#[test]
fn data_dir_places_the_default_files() {
    use std::path::{Path, PathBuf};
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.data_dir(), Path::new("data"));
    assert_eq!(c.journal_dir(), Some(PathBuf::from("data/chat.db.redo")));
    let c = run(&["--data-dir", "/var/lib/chat"], &[]).unwrap();
    assert_eq!(c.db, "sqlite:/var/lib/chat/chat.db");
    assert_eq!(c.token_key_path(), Path::new("/var/lib/chat/token.key"));
    assert_eq!(
        c.journal_dir(),
        Some(PathBuf::from("/var/lib/chat/chat.db.redo"))
    );
    let env = [("CHAT_DATA_DIR", "/from/env")];
    let c = run(&[], &env).unwrap();
    assert_eq!(c.db, "sqlite:/from/env/chat.db");
    let c = run(&["--data-dir=/flag"], &env).unwrap();
    assert_eq!(c.db, "sqlite:/flag/chat.db", "the flag wins");
    let file = std::env::temp_dir().join(format!("chat-data-dir-{}.toml", std::process::id()));
    std::fs::write(&file, "data-dir = \"/from/file\"\n").unwrap();
    let path = file.display().to_string();
    let c = run(&["--config", &path], &[]).unwrap();
    assert_eq!(c.token_key_path(), Path::new("/from/file/token.key"));
    let c = run(&["--config", &path], &env).unwrap();
    assert_eq!(c.data_dir(), Path::new("/from/env"), "env over file");
    std::fs::remove_file(&file).unwrap();
    // An explicit store and key file are not moved.
    let c = run(&["--data-dir", "/d", "--db", "sqlite:/elsewhere/x.db"], &[]).unwrap();
    assert_eq!(c.db, "sqlite:/elsewhere/x.db");
    assert_eq!(c.token_key_path(), Path::new("/d/token.key"));
    let c = run(
        &[
            "--data-dir",
            "/d",
            "--db",
            "mysql://root@h:3306/chat",
            "--token-key-file",
            "/k",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.token_key_path(), Path::new("/k"));
    assert_eq!(c.journal_dir(), Some(PathBuf::from("/d/redo-chat")));
    // --check-config shows the derived store and where it came from.
    let Ok(Command::Check(_, text)) =
        Config::load(&args(&["--check-config", "--data-dir", "/d"]), |_| None)
    else {
        panic!("check-config")
    };
    assert!(
        text.contains("db = \"sqlite:/d/chat.db\"  # from the default"),
        "{text}"
    );
    assert!(
        text.contains("data-dir = \"/d\"  # from the command line"),
        "{text}"
    );
}

/// `migrate-legacy --from URL`, or the URL from `CHAT_MIGRATE_FROM`; the
/// flag wins; neither is an error that says what is missing.
#[test]
fn migrate_legacy_takes_its_source_from_the_flag_or_the_environment() {
    let from = |a: &[&str], env: Option<&str>| match Config::load(&args(a), |k| {
        (k == "CHAT_MIGRATE_FROM")
            .then(|| env.map(str::to_owned))
            .flatten()
    }) {
        Ok(Command::MigrateLegacy(_, from)) => Ok(from),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.0),
    };
    let flag = ["migrate-legacy", "--from", "mysql://root@h/old"];
    assert_eq!(from(&flag, None).as_deref(), Ok("mysql://root@h/old"));
    assert_eq!(
        from(&flag, Some("mysql://env@h/old")).as_deref(),
        Ok("mysql://root@h/old")
    );
    assert_eq!(
        from(&["migrate-legacy"], Some("mysql://env:pw@h/old")).as_deref(),
        Ok("mysql://env:pw@h/old")
    );
    let e = from(&["migrate-legacy"], None).unwrap_err();
    assert!(
        e.contains("--from") && e.contains("CHAT_MIGRATE_FROM"),
        "{e}"
    );
}
