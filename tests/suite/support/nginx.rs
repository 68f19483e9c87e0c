//! [`Nginx`]: nginx with its stream module in front of some `chat-server`
//! processes, configured from `deploy/nginx.conf` and run in the
//! foreground with a private prefix directory. Tests that start it
//! [need](super::Need::Nginx) it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require::{NGINX, STREAM_MODULE};
use super::{free_port, unique, PATIENCE};

/// nginx (stream module) in front of some nodes, in the foreground with a
/// private prefix directory; killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Where clients connect.
    pub addr: SocketAddr,
}

impl Nginx {
    /// nginx with deploy/nginx.conf's configuration, rewritten for `nodes`,
    /// a free port and one process.
    pub fn start(nodes: &[SocketAddr]) -> Nginx {
        let dir = std::env::temp_dir().join(unique("chat-nginx"));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(nodes, addr)).expect("write nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx (apt-get install nginx libnginx-mod-stream)");
        let mut n = Nginx { child, dir, addr };
        let end = Instant::now() + PATIENCE;
        while TcpStream::connect(addr).is_err() {
            let exited = matches!(n.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > end {
                let log = std::fs::read_to_string(n.dir.join("logs/error.log"));
                panic!("nginx did not start: {}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// deploy/nginx.conf with the `server` lines of `nodes` between its
/// `BEGIN nodes` / `END nodes` markers and `listen` on `addr`, without its
/// `http` block (the test nodes have no web listener).
fn nginx_conf(nodes: &[SocketAddr], addr: SocketAddr) -> String {
    let template = include_str!("../../../deploy/nginx.conf");
    let mut out = String::new();
    let mut skipping = false;
    let mut in_http = false;
    for line in template.lines() {
        let t = line.trim_start();
        if t.starts_with("# BEGIN http") || t.starts_with("# END http") {
            in_http = t.starts_with("# BEGIN");
            continue;
        }
        if in_http {
            continue;
        }
        if t.starts_with("load_module") {
            out.push_str(&format!("load_module {STREAM_MODULE};\n"));
        } else if t.starts_with("# BEGIN nodes") {
            out.push_str(line);
            out.push('\n');
            for n in nodes {
                out.push_str(&format!(
                    "        server {n} max_fails=1 fail_timeout=5s;\n"
                ));
            }
            skipping = true;
        } else if t.starts_with("# END nodes") {
            skipping = false;
            out.push_str(line);
            out.push('\n');
        } else if skipping {
        } else if t.starts_with("listen ") {
            out.push_str(&format!("        listen {addr} backlog=4096;\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
