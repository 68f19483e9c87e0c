//! `chat-client` on a real terminal: the client runs inside a detached
//! `tmux` session, keys are typed with `send-keys` and the screen is read
//! with `capture-pane`. This checks what only a terminal shows: the menu,
//! the hidden password, the prompt naming the account, and an incoming
//! message printed without breaking the line being typed.
//!
//! Needs `tmux` ([`Need::Tmux`]): without it the test is reported ignored,
//! and fails under CI.

use std::fmt::Display;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::cli::{id_after, register, CLIENT, WAIT};
use crate::support::{CliClient, Need, Server, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![interactive_session_in_a_terminal]
        .into_iter()
        .map(|t| t.needs(&[Need::Tmux]))
        .collect()
}

/// A tmux server of our own (`-L`), with one session running the client;
/// killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `chat-client ADDR` in a 120×40 pane. When the client exits,
    /// the pane shows `[exited N]` and stays, so the exit status can be read.
    fn start(addr: impl Display) -> Tmux {
        let socket = format!("chat-client-test-{}", std::process::id());
        let tmux = Tmux { socket };
        let script = format!("'{CLIENT}' {addr}; echo \"[exited $?]\"; sleep 60");
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &script,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Types `keys` literally (no key names), without Enter.
    fn type_text(&self, keys: &str) {
        assert!(self
            .run(&["send-keys", "-t", "t", "-l", keys])
            .status
            .success());
    }

    /// Presses a named key, e.g. `Enter` or `C-u`.
    fn press(&self, key: &str) {
        assert!(self.run(&["send-keys", "-t", "t", key]).status.success());
    }

    /// Types a line and presses Enter.
    fn type_line(&self, line: &str) {
        self.type_text(line);
        self.press("Enter");
    }

    /// The visible screen as text, wrapped lines joined.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-J", "-t", "t"]).stdout)
            .into_owned()
    }

    /// Waits (bounded) until `ok` holds for the screen and returns it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what}:\n{screen}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen contains `text`.
    fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn interactive_session_in_a_terminal() {
    let server = Server::fresh();
    let tmux = Tmux::start(server.addr);
    tmux.wait_text("1. login");
    tmux.wait_text("chat> ");

    // Menu item 2 registers; the password is asked twice and never shown.
    tmux.type_line("2");
    tmux.wait_text("new user name: ");
    tmux.type_line("carol");
    tmux.wait_text("password: ");
    tmux.type_line("s3cret-pw");
    tmux.wait_text("password again: ");
    tmux.type_line("s3cret-pw");
    let screen = tmux.wait_text("registered uid=");
    assert!(
        !screen.contains("s3cret-pw"),
        "the password was echoed:\n{screen}"
    );
    let carol_line = screen
        .lines()
        .find(|l| l.contains("registered uid="))
        .unwrap_or_default();
    let carol = id_after(carol_line, "uid=");

    // A typed login without its password asks for it, hidden too.
    tmux.type_line("login:carol");
    tmux.wait_for("a second password prompt", |s| {
        s.matches("password: ").count() >= 2
    });
    tmux.type_line("s3cret-pw");
    let prompt = format!("carol({carol})> ");
    let screen = tmux.wait_text(&prompt);
    assert!(
        !screen.contains("s3cret-pw"),
        "the password was echoed:\n{screen}"
    );
    assert!(
        screen.contains(&format!("logged in uid={carol} name=carol")),
        "{screen}"
    );

    // A message arrives while carol is half-way through a line.
    let mut dave = CliClient::start(server.addr);
    register(&mut dave, "dave", "pw");
    dave.send("login:dave:pw");
    dave.expect_ok("logged in");
    tmux.type_text("groupChat:1:half typed");
    tmux.wait_text("half typed");
    dave.send(&format!("chat:{carol}:hello carol"));
    let screen = tmux.wait_text("(dave) at ");
    let message = screen
        .lines()
        .position(|l| l.contains("(dave) at ") && l.ends_with(": hello carol"));
    let editing = screen
        .lines()
        .position(|l| l == format!("{prompt}groupChat:1:half typed"));
    assert!(
        matches!((message, editing), (Some(m), Some(e)) if m < e),
        "the message should print above the intact line being typed:\n{screen}"
    );

    // Clear the line, ask for help, leave.
    tmux.press("C-u");
    tmux.type_line("help");
    let screen = tmux.wait_text("dismissGroup:gid");
    let column = |usage: &str| {
        let line = screen
            .lines()
            .find(|l| l.trim_start().starts_with(usage))
            .unwrap_or_default();
        line.len()
            - line[line.find(usage).unwrap_or(0) + usage.len()..]
                .trim_start()
                .len()
    };
    assert_eq!(
        column("chat:fid:message"),
        column("dismissGroup:gid"),
        "help is not aligned:\n{screen}"
    );
    tmux.type_line("quit");
    tmux.wait_text("[exited 0]");
    assert!(dave.finish().success());
}
