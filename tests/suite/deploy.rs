//! The files that run the server: the systemd unit (verified by
//! `systemd-analyze` where it is installed, and its readiness
//! notification), the compose file (by `docker compose config`, else a
//! YAML check), and the project's metadata (LICENSE, rust-version).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::server::base_args;
use crate::support::{unique, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![
        systemd_unit_verifies,
        readiness_is_notified,
        compose_file_is_valid,
        license_and_rust_version,
    ]
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn has(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `systemd-analyze verify` on the unit, its ExecStart pointed at the
/// binary just built; the settings it must have are there.
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo("deploy/chat-server.service")).expect("unit");
    for needed in [
        "Type=notify",
        "StateDirectory=chat-server",
        "Environment=CHAT_DATA_DIR=/var/lib/chat-server",
        "EnvironmentFile=-/etc/chat-server/env",
        "LimitNOFILE=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(needed), "{needed} missing");
    }
    if !has("systemd-analyze", "--version") {
        eprintln!("systemd-analyze not installed: unit checked for its settings only");
        return;
    }
    let dir = std::env::temp_dir().join(unique("chat-unit"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("chat-server.service");
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/chat-server",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_chat-server")),
    );
    std::fs::write(&file, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .expect("systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("chat-server.service:"), "{said}");
}

/// Under `NOTIFY_SOCKET`, the server sends READY=1 once it accepts, and
/// STOPPING=1 at SIGTERM. (The variable is given to this child only: the
/// suite's other servers must not write to this socket.)
fn readiness_is_notified() {
    let path = std::env::temp_dir().join(unique("chat-notify"));
    let socket = UnixDatagram::bind(&path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let db = TestDb::sqlite();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(base_args(&db))
        .env("NOTIFY_SOCKET", &path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chat-server");
    let mut buf = [0u8; 256];
    let ready = socket.recv(&mut buf).map(|n| buf[..n].to_vec());
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    let stopping = socket.recv(&mut buf).map(|n| buf[..n].to_vec());
    let _ = std::fs::remove_file(&path);
    let ready = ready.expect("READY=1 arrives");
    assert!(ready.starts_with(b"READY=1\n"), "{ready:?}");
    assert_eq!(status.code(), Some(0));
    assert_eq!(stopping.expect("STOPPING=1 arrives"), b"STOPPING=1\n");
}

/// `docker compose config` where compose exists, else the YAML parsed by
/// Python and its shape checked: three nodes on MariaDB and Redis, nginx.
fn compose_file_is_valid() {
    let file = repo("deploy/compose.yaml");
    if has("docker", "compose") && has("docker", "info") {
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(&file)
            .args(["config", "-q"])
            .env("CHAT_DB_PASSWORD", "test")
            .output()
            .expect("docker compose");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let script = r#"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
assert {"node1", "node2", "node3", "mariadb", "redis", "nginx"} <= set(s), sorted(s)
for n in ("node1", "node2", "node3"):
    e = s[n]["environment"]
    assert e["CHAT_REDIS"].startswith("redis://"), e
    assert e["CHAT_DB"].startswith("mysql://"), e
    assert e["CHAT_NODE_ID"] == n, e
    assert s[n]["build"]["dockerfile"] == "deploy/Dockerfile"
assert "8000:8000" in s["nginx"]["ports"]
print("ok")
"#;
    let out = match Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("neither docker compose nor python3 ({e}): compose.yaml not checked");
            return;
        }
    };
    let said = String::from_utf8_lossy(&out.stderr);
    if said.contains("No module named 'yaml'") {
        eprintln!("python3 has no yaml module: compose.yaml not checked");
        return;
    }
    assert!(out.status.success(), "{said}");
    let nginx = std::fs::read_to_string(repo("deploy/compose-nginx.conf")).expect("nginx conf");
    for node in ["node1:6000", "node2:6000", "node3:6000"] {
        assert!(nginx.contains(node), "{node}");
    }
}

/// MIT, as Cargo.toml says; the oldest Rust the code is built with.
fn license_and_rust_version() {
    let license = std::fs::read_to_string(repo("LICENSE")).expect("LICENSE");
    assert!(license.starts_with("MIT License"));
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("rust-version = \""), "rust-version");
}
