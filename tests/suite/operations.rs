//! The operator's side of `chat-server`: `--check-config` and its exit
//! codes, a TOML or old-format config file, the JSON log format, start-up
//! lines printed once, and start-up errors that name what to fix.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{unique, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![
        check_config_exit_codes_and_masking,
        config_file_toml_and_old_format,
        address_in_use_names_the_address,
        start_up_lines_are_printed_once,
        json_log_format_keeps_the_readiness_line,
        client_exit_codes_in_scripted_mode,
        data_dir_holds_the_default_files,
    ]
}

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    cmd.args(args).stdin(Stdio::null()).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run chat-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file of this test's own in the temporary directory.
fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(unique(name));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

/// 0 and the masked TOML when valid; 1 and the reason when not; 2 for a
/// bad setting without `--check-config`.
fn check_config_exit_codes_and_masking() {
    let pass = temp_file("ops-pass", "hunter2\n");
    let pass_arg = pass.to_str().unwrap();
    let out = server(
        &[
            "--check-config",
            "--db",
            "mysql://chat@127.0.0.1:3306/chat",
            "--db-password-file",
            pass_arg,
        ],
        &[("CHAT_WORKERS", "6")],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("mysql://chat:***@127.0.0.1:3306/chat"),
        "{stdout}"
    );
    assert!(
        stdout.contains("workers = 6  # from the environment (CHAT_WORKERS)"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("# the configuration is valid\n"),
        "{stdout}"
    );
    let out = server(&["--check-config", "--workers", "0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("workers"),
        "{}",
        text(&out.stderr)
    );
    let out = server(&["--check-config"], &[("CHAT_MAX_MESSAGE", "huge")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("CHAT_MAX_MESSAGE"),
        "{}",
        text(&out.stderr)
    );
    let out = server(&["--workers", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "a bad setting when serving");
    let _ = std::fs::remove_file(pass);
}

/// A server starts from a TOML file; an old-format file starts it too and
/// says, once, how to rewrite it.
fn config_file_toml_and_old_format() {
    let db = TestDb::sqlite();
    let toml = temp_file(
        "ops-toml",
        "max-message = \"1KiB\"\nidle-timeout = \"1.5s\"\n",
    );
    let server_toml = Server::start(&db, &["--config", toml.to_str().unwrap()]);
    let mut c = server_toml.connect();
    c.register("alice", "secret");
    assert!(!server_toml.log().contains("old `key = value` format"));
    drop(server_toml);
    let old = temp_file("ops-old", "max-message = 1KiB # a comment\nworkers = 2\n");
    let server_old = Server::start(&db, &["--config", old.to_str().unwrap()]);
    let log = server_old.log();
    assert_eq!(log.matches("old `key = value` format").count(), 1, "{log}");
    for f in [toml, old] {
        let _ = std::fs::remove_file(f);
    }
}

/// A taken port: exit 1, and the message names the address and the flag.
fn address_in_use_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = server(
        &[
            "--listen",
            &addr,
            "--db",
            "sqlite::memory:",
            "--http",
            "off",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr} (--listen): the address is in use"
        )),
        "{stderr}"
    );
}

/// The web and readiness lines, once each, at the default log level.
fn start_up_lines_are_printed_once() {
    let db = TestDb::sqlite();
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(crate::support::server::base_args(&db))
        .args(["--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = first_lines_until(out, "chat-server listening on");
    let all = lines.join("\n");
    assert_eq!(all.matches("listening on").count(), 1, "{all}");
    assert_eq!(all.matches("web client: ").count(), 1, "{all}");
}

/// With `--log-format json` every line is a JSON object, the readiness
/// line too, even with `RUST_LOG=warn`.
fn json_log_format_keeps_the_readiness_line() {
    let db = TestDb::sqlite();
    let child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(crate::support::server::base_args(&db))
        .args(["--log-format", "json"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = first_lines_until(child, "chat-server listening on");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["msg"].is_string(), "{line}");
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert!(last["msg"]
        .as_str()
        .unwrap()
        .starts_with("chat-server listening on"));
}

/// With `--data-dir` (from the environment, as the systemd unit sets it)
/// and no `--db` or `--token-key-file`, the server creates its SQLite
/// store, the journal and the token key in that folder, and
/// `--check-config` names them.
fn data_dir_holds_the_default_files() {
    let dir = std::env::temp_dir().join(unique("chat-data-dir"));
    let dir_arg = dir.display().to_string();
    let out = server(&["--check-config"], &[("CHAT_DATA_DIR", &dir_arg)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "db = \"sqlite:{dir_arg}/chat.db\"  # from the default"
        )),
        "{stdout}"
    );
    let child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--threads", "1"])
        .env("CHAT_DATA_DIR", &dir_arg)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    first_lines_until(child, "chat-server listening on");
    for file in ["chat.db", "token.key", "chat.db.redo"] {
        assert!(dir.join(file).exists(), "{file} in {dir_arg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads the child's stderr lines until one contains `marker` (20 s at
/// most), then stops the child.
fn first_lines_until(mut child: std::process::Child, marker: &str) -> Vec<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains(marker);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains(marker)),
        "no {marker:?}:\n{}",
        lines.join("\n")
    );
    lines
}

/// `chat-client --strict` from a pipe: 0 when every request succeeded (a
/// `ping` before login included), 3 when the server refused one (0
/// without `--strict`), non-zero when there is no server.
fn client_exit_codes_in_scripted_mode() {
    use std::io::Write;
    let server = Server::fresh();
    let addr = server.addr.to_string();
    let client = |args: &[&str], script: &str| -> (Option<i32>, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-client"))
            .args(args)
            .args(["--linger", "0s", "--timeout", "10s", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat-client");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("write script");
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, said) = client(&["--strict"], "ping\nregister:exit-codes:secret\n");
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("pong"), "ping before login: {said}");
    let (code, said) = client(&["--strict"], "login:999999:wrong\n");
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("refused or unanswered"), "{said}");
    let (code, said) = client(&[], "login:999999:wrong\n");
    assert_eq!(code, Some(0), "{said}");
    drop(server);
    let gone = TcpListener::bind("127.0.0.1:0").expect("bind");
    let nobody = gone.local_addr().expect("addr").to_string();
    drop(gone);
    let out = Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .arg(&nobody)
        .stdin(Stdio::null())
        .output()
        .expect("run chat-client");
    assert_ne!(out.status.code(), Some(0), "no server");
}
