//! The config file (TOML and the old format), secrets, `--check-config`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn load(a: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    Config::load(&a, |k| env.get(k).cloned())
}

fn run(a: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    match load(a, env)? {
        Command::Run(c) => Ok(c),
        other => panic!("expected Run, got {other:?}"),
    }
}

/// A file in a directory of this test's own, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("chat-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn a_toml_file_sets_every_kind_of_value() {
    let f = TempFile::new(
        "chat.toml",
        "# comment\nworkers = 7\nidle_timeout = \"1.5s\"\nmetrics = false\n\
         max-message = \"1MiB\"\ndb = \"mysql://u:pa#ss@h:3306/db\" # the # is in quotes\n",
    );
    let c = run(&["--config", f.path()], &[]).unwrap();
    assert_eq!(c.workers, 7);
    assert_eq!(c.idle_timeout, Some(Duration::from_millis(1500)));
    assert!(!c.metrics);
    assert_eq!(c.max_message, 1 << 20);
    assert_eq!(
        c.db, "mysql://u:pa#ss@h:3306/db",
        "a # inside quotes is kept"
    );
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn the_old_format_still_works_with_a_note_and_keeps_quoted_hashes() {
    let f = TempFile::new(
        "chat.conf",
        "listen = 127.0.0.1:7000   # unquoted: not TOML\n\
         db = \"mysql://u:pa#ss@h/db\"  # comment\nworkers = 3\n",
    );
    let c = run(&["--config", f.path()], &[]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(c.db, "mysql://u:pa#ss@h/db");
    assert_eq!(c.workers, 3);
    assert_eq!(c.notes.len(), 1);
    assert!(
        c.notes[0].contains("old `key = value` format"),
        "{:?}",
        c.notes
    );
}

#[test]
fn file_errors_name_the_file_and_the_key() {
    let f = TempFile::new("unknown.toml", "colour = \"blue\"\n");
    let e = run(&["--config", f.path()], &[]).unwrap_err();
    assert!(e.0.contains(f.path()) && e.0.contains("colour"), "{e}");
    let f = TempFile::new("bad.toml", "workers = 0\n");
    let e = run(&["--config", f.path()], &[]).unwrap_err();
    assert!(e.0.contains("workers") && e.0.contains(f.path()), "{e}");
    assert!(e.0.contains("minimum"), "{e}");
    let f = TempFile::new("table.toml", "[server]\nworkers = 2\n");
    let e = run(&["--config", f.path()], &[]).unwrap_err();
    assert!(e.0.contains("server"), "{e}");
    let e = run(&["--config", "/nonexistent/chat.toml"], &[]).unwrap_err();
    assert!(e.0.contains("cannot read config file"), "{e}");
}

#[test]
fn each_layer_beats_the_next_for_the_same_setting() {
    let f = TempFile::new("layers.toml", "workers = 7\nthreads = 3\nlog-batch = 9\n");
    let env = [
        ("CHAT_CONFIG", f.path()),
        ("CHAT_WORKERS", "5"),
        ("CHAT_THREADS", "6"),
    ];
    let c = run(&["--workers", "2"], &env).unwrap();
    assert_eq!(c.workers, 2, "flag > environment");
    assert_eq!(c.threads, 6, "environment > file");
    assert_eq!(c.log_batch, 9, "file > default");
    assert_eq!(c.log_queue, 65_536, "the default");
    let c = run(&["--config", f.path()], &[("CHAT_CONFIG", "/nonexistent")]).unwrap();
    assert_eq!(c.workers, 7, "--config beats CHAT_CONFIG");
    let c = run(&["--workers=2", "--workers=4"], &[]).unwrap();
    assert_eq!(c.workers, 4, "the last flag wins");
}

#[test]
fn the_database_password_comes_from_a_file_or_the_environment() {
    let f = TempFile::new("db.pass", "s3cr#t/@:x\nsecond line ignored\n");
    let db = "mysql://chat@127.0.0.1:3306/chat";
    let c = run(&["--db", db, "--db-password-file", f.path()], &[]).unwrap();
    assert_eq!(c.db, "mysql://chat:s3cr%23t%2F%40%3Ax@127.0.0.1:3306/chat");
    let c = run(&["--db", db], &[("CHAT_DB_PASSWORD", "pw")]).unwrap();
    assert_eq!(c.db, "mysql://chat:pw@127.0.0.1:3306/chat");
    let c = run(
        &["--db", "mysql://chat:old@h/chat"],
        &[("CHAT_DB_PASSWORD_FILE", f.path())],
    )
    .unwrap();
    assert!(
        c.db.starts_with("mysql://chat:s3cr%23t"),
        "replaces: {}",
        c.db
    );
    let e = run(&["--db-password", "pw"], &[]).unwrap_err();
    assert!(e.0.contains("mysql://"), "a password for SQLite: {e}");
    let e = run(&["--db", db, "--db-password-file", "/nonexistent/pw"], &[]).unwrap_err();
    assert!(e.0.contains("/nonexistent/pw"), "{e}");
}

#[test]
fn check_config_prints_a_masked_toml_that_loads_back_the_same() {
    let pass = TempFile::new("check.pass", "hunter2\n");
    let args = [
        "--check-config",
        "--db",
        "mysql://chat:inurl@127.0.0.1:3306/chat",
        "--db-password-file",
        pass.path(),
        "--redis",
        "redis://:redispw@127.0.0.1:6379",
    ];
    let Command::Check(config, text) = load(&args, &[("CHAT_WORKERS", "3")]).unwrap() else {
        panic!("expected Check");
    };
    for secret in ["inurl", "hunter2", "redispw"] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
    assert!(
        text.contains("db = \"mysql://chat:***@127.0.0.1:3306/chat\"  # from the command line"),
        "{text}"
    );
    assert!(
        text.contains("workers = 3  # from the environment (CHAT_WORKERS)"),
        "{text}"
    );
    assert!(
        text.contains("listen = \"127.0.0.1:6000\"  # from the default"),
        "{text}"
    );
    assert_eq!(config.workers, 3);
    // Fed back as a file (less the masked secrets), it gives the same settings.
    let unmasked: String = text
        .lines()
        .filter(|l| !l.contains("***"))
        .map(|l| format!("{l}\n"))
        .collect();
    let f = TempFile::new("check.toml", &unmasked);
    let again = run(
        &[
            "--config",
            f.path(),
            "--db",
            "mysql://chat:inurl@127.0.0.1:3306/chat",
            "--db-password-file",
            pass.path(),
            "--redis",
            "redis://:redispw@127.0.0.1:6379",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(again, config);
    let e = load(&["--check-config", "--workers", "0"], &[]).unwrap_err();
    assert!(e.0.contains("workers"), "{e}");
}

#[test]
fn a_host_name_resolves_and_the_log_format_is_text_or_json() {
    let c = run(&["--listen", "localhost:6000"], &[]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6000".parse().unwrap());
    let e = run(&["--listen", "no-such-host.invalid:6000"], &[]).unwrap_err();
    assert!(e.0.contains("does not resolve"), "{e}");
    assert_eq!(run(&[], &[]).unwrap().log_format, LogFormat::Text);
    let c = run(&[], &[("CHAT_LOG_FORMAT", "json")]).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(run(&["--log-format", "xml"], &[]).is_err());
}

#[test]
fn masking_keeps_the_user_and_host() {
    assert_eq!(show::mask("mysql://u:p@h:1/db"), "mysql://u:***@h:1/db");
    assert_eq!(show::mask("redis://h:6379"), "redis://h:6379");
    assert_eq!(show::mask("hunter2"), "***");
}
