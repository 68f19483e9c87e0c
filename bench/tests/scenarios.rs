//! Every scenario, end to end, against the in-process mock server in
//! `support/`, in our server's dialect and in the C++ original's
//! (`--legacy`). These check the bench's correctness (books that balance,
//! no coalesced requests in legacy mode), not anybody's speed.

mod support;

use chat_bench::{run, Config, Mix, Report, Scenario};
use std::time::Duration;
use support::MockServer;

fn config(server: &MockServer, scenario: Scenario) -> Config {
    Config {
        scenario,
        addrs: vec![server.addr],
        threads: 2,
        timeout: Duration::from_secs(30),
        drain: Duration::from_secs(2),
        legacy_gap: Duration::from_millis(5),
        ..Config::default()
    }
}

/// A `mixed` run of one-to-one chat alone.
const CHAT_ONLY: Mix = Mix {
    chat: 1,
    group: 0,
    friend: 0,
    relogin: 0,
};

fn run_ok(config: &Config) -> Report {
    let report = run(config).expect("run");
    assert!(report.failed.is_none(), "{}", report.table());
    eprintln!("{}", report.table());
    report
}

fn assert_clean(report: &Report) {
    assert_eq!(report.lost, Some(0), "{}", report.table());
    assert_eq!(report.duplicated, Some(0));
    assert_eq!(report.reordered, Some(0));
    assert_eq!(report.unexpected, Some(0));
    assert_eq!(report.error_count(), 0, "{}", report.table());
}

#[test]
fn chat_with_a_window_balances_its_books() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 10,
        messages: Some(50),
        window: 4,
        ..config(&server, Scenario::Chat)
    });
    assert_clean(&report);
    assert_eq!((report.sent, report.delivered), (Some(500), Some(500)));
    assert_eq!(report.latency_us.map(|l| l.count), Some(500));
    assert!(report.delivered_per_sec().is_some_and(|r| r > 0.0));
}

#[test]
fn chat_for_a_duration_stops_and_drains() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 4,
        duration: Some(Duration::from_millis(500)),
        window: 8,
        ..config(&server, Scenario::Chat)
    });
    assert_clean(&report);
    assert!(report.sent.is_some_and(|n| n > 0));
    assert!(report.elapsed_secs < 5.0, "{}", report.table());
}

#[test]
fn legacy_chat_never_coalesces_requests() {
    let server = MockServer::start(true);
    let report = run_ok(&Config {
        users: 6,
        messages: Some(30),
        window: 8, // forced to 1 in legacy mode
        legacy: true,
        ..config(&server, Scenario::Chat)
    });
    assert_clean(&report);
    assert_eq!(report.delivered, Some(180));
    assert_eq!(server.coalesced_reads(), 0);
}

#[test]
fn group_fan_out_reaches_every_other_member() {
    for legacy in [false, true] {
        let server = MockServer::start(legacy);
        let report = run_ok(&Config {
            members: 5,
            senders: 2,
            messages: Some(20),
            window: 3,
            legacy,
            ..config(&server, Scenario::Group)
        });
        assert_clean(&report);
        assert_eq!(report.sent, Some(40));
        assert_eq!(report.delivered, Some(40 * 4), "legacy {legacy}");
        if legacy {
            assert_eq!(server.coalesced_reads(), 0);
        }
    }
}

#[test]
fn register_and_login_count_accounts() {
    let server = MockServer::start(false);
    let registered = run_ok(&Config {
        users: 25,
        ..config(&server, Scenario::Register)
    });
    assert_eq!(
        (registered.ops, registered.op_failures),
        (Some(25), Some(0))
    );
    let logged_in = run_ok(&Config {
        users: 25,
        ..config(&server, Scenario::Login)
    });
    assert_eq!(logged_in.ops, Some(25));
    assert_eq!(logged_in.latency_us.map(|l| l.count), Some(25));
}

#[test]
fn connect_holds_logged_in_users_and_reads_server_memory() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 30,
        login: true,
        hold: Duration::from_millis(200),
        server_pid: Some(std::process::id()),
        ..config(&server, Scenario::Connect)
    });
    assert_eq!((report.connected, report.closed), (Some(30), 0));
    assert!(report.server_rss_kib_after.is_some());
}

#[test]
fn mixed_run_keeps_its_books_through_relogins() {
    for legacy in [false, true] {
        let server = MockServer::start(legacy);
        let report = run_ok(&Config {
            users: 12,
            members: 4,
            rate: 40.0,
            mix: Mix {
                chat: 50,
                group: 20,
                friend: 15,
                relogin: 15,
            },
            offline_for: Duration::from_millis(50),
            duration: Some(Duration::from_millis(1500)),
            legacy,
            // The CLI's default pause: with 5 ms a mock thread starved of
            // CPU by the tests beside it may read two requests at once.
            legacy_gap: Duration::from_millis(20),
            ..config(&server, Scenario::Mixed)
        });
        assert_clean(&report);
        for action in ["chat", "group chat", "friend add", "logout", "login"] {
            assert!(
                report.actions.contains_key(action),
                "{action}: {}",
                report.table()
            );
        }
        assert!(
            report.offline_delivered.is_some_and(|n| n > 0),
            "{}",
            report.table()
        );
        if legacy {
            assert_eq!(server.coalesced_reads(), 0);
        }
    }
}

/// Three sessions per user: every session is booked apart, and gets every
/// message to its user and a self-copy of what the user's other sessions
/// send, one-to-one and in groups; nothing lost, duplicated or reordered.
/// Against a server that lets one session per user in, the extra logins
/// fail the run.
#[test]
fn mixed_run_with_several_sessions_books_every_session() {
    let server = MockServer::with_sessions(3);
    let base = Config {
        users: 8,
        members: 4,
        rate: 30.0,
        mix: Mix {
            chat: 60,
            group: 30,
            friend: 10,
            relogin: 0,
        },
        sessions: 3,
        duration: Some(Duration::from_millis(1000)),
        ..config(&server, Scenario::Mixed)
    };
    let report = run_ok(&base);
    assert_clean(&report);
    let (sent, expected) = (report.sent.unwrap_or(0), report.expected.unwrap_or(0));
    let chats = report.actions.get("chat").copied().unwrap_or(0);
    assert!(
        chats > 0 && report.actions.contains_key("group chat"),
        "{}",
        report.table()
    );
    // A chat is owed 3 + 2 times, a group post 4 · 3 - 1 times.
    assert!(
        expected >= 5 * sent,
        "{sent} sent, {expected} owed: {}",
        report.table()
    );
    assert_eq!(report.delivered, Some(expected));

    let single = MockServer::start(false);
    let refused = run(&Config {
        addrs: vec![single.addr],
        ..base.clone()
    })
    .expect("run");
    assert!(
        refused
            .failed
            .as_deref()
            .is_some_and(|f| f.starts_with("login")),
        "{:?}",
        refused.failed
    );
}

/// Removes a file when dropped, so a failing test leaves nothing behind.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn setup_once_then_reuse() {
    let server = MockServer::start(true);
    let name = format!("chat-bench-test-{}.json", std::process::id());
    let state = TempFile(std::env::temp_dir().join(name));
    let base = Config {
        members: 4,
        senders: 4,
        messages: Some(5),
        legacy: true,
        state_file: state.0.clone(),
        ..config(&server, Scenario::Group)
    };
    let setup = run_ok(&Config {
        setup_only: true,
        ..base.clone()
    });
    assert_eq!(setup.scenario, "setup");
    let report = run_ok(&Config {
        reuse: Some(state.0.clone()),
        ..base
    });
    assert_clean(&report);
    assert_eq!(report.delivered, Some(4 * 5 * 3));
}

/// Messages the server refused (28 with errno 12) were never stored: the
/// books owe them to nobody, so they are not lost, closed loop or open.
#[test]
fn refused_messages_are_not_lost() {
    for scenario in [Scenario::Chat, Scenario::Mixed] {
        let server = MockServer::refusing(7);
        let mixed = scenario == Scenario::Mixed;
        let report = run_ok(&Config {
            users: 6,
            cid: true,
            messages: (!mixed).then_some(30),
            duration: mixed.then_some(Duration::from_millis(1500)),
            rate: 40.0,
            mix: CHAT_ONLY,
            ..config(&server, scenario)
        });
        let sent = report.sent.expect("sent");
        let refused = report.ack_failed.expect("ack_failed");
        assert!(refused > 0 && refused >= sent / 7 - 1, "{}", report.table());
        assert_eq!(report.lost, Some(0), "{}", report.table());
        assert_eq!(report.expected, Some(sent - refused));
        assert_eq!(report.delivered, Some(sent - refused));
        assert_eq!((report.duplicated, report.unexpected), (Some(0), Some(0)));
        if !mixed {
            // A refusal frees its window slot: every sender sends it all.
            assert_eq!(sent, 6 * 30, "{}", report.table());
        }
    }
}

/// `mixed --pairs`: every chat goes to the partner, so there are as many
/// conversations as pairs.
#[test]
fn mixed_pairs_chat_with_their_partner_only() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 6,
        rate: 40.0,
        pairs: true,
        mix: CHAT_ONLY,
        duration: Some(Duration::from_millis(1000)),
        ..config(&server, Scenario::Mixed)
    });
    assert_clean(&report);
    assert!(report.sent.is_some_and(|n| n > 20), "{}", report.table());
    assert_eq!(server.conversations(), 3);
}

/// A server that still counts a user online (its earlier connection's
/// close not yet seen) refuses the login with errno 2; the bench sends it
/// again instead of failing the run, as `--reuse` right after
/// `--setup-only` needs.
#[test]
fn a_login_refused_as_still_online_is_sent_again() {
    let server = MockServer::slow_to_see_closes();
    let report = run_ok(&Config {
        users: 4,
        messages: Some(5),
        ..config(&server, Scenario::Chat)
    });
    assert_clean(&report);
    assert_eq!(report.delivered, Some(4 * 5));
}

#[test]
fn nobody_listening_is_a_failed_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let report = run(&Config {
        scenario: Scenario::Chat,
        addrs: vec![port],
        users: 4,
        timeout: Duration::from_secs(5),
        ..Config::default()
    })
    .expect("run");
    assert!(report
        .failed
        .as_deref()
        .is_some_and(|f| f.starts_with("connect")));
}

#[test]
fn binary_prints_json_last() {
    let server = MockServer::start(false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-bench"))
        .args([
            "chat",
            "--users",
            "4",
            "--messages",
            "10",
            "--json",
            "--quiet",
        ])
        .args(["--addr", &server.addr.to_string()])
        .output()
        .expect("run chat-bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(last).expect("json line");
    assert_eq!(
        (v["scenario"].as_str(), v["delivered"].as_u64()),
        (Some("chat"), Some(40))
    );
    assert_eq!(v["lost"], 0);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_chat-bench"))
        .args(["chat", "--window", "0"])
        .output()
        .expect("run chat-bench");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn cid_times_every_send_ack() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 6,
        messages: Some(40),
        window: 4,
        cid: true,
        ..config(&server, Scenario::Chat)
    });
    assert_clean(&report);
    assert_eq!((report.sent, report.acked), (Some(240), Some(240)));
    assert_eq!((report.ack_failed, report.unacked), (Some(0), Some(0)));
    assert_eq!(report.ack_latency_us.map(|l| l.count), Some(240));
    let json = report.to_json();
    assert!(json["ack_latency_us"]["p90"].is_u64(), "{json}");
}

#[test]
fn sync_reads_back_everything_the_fill_stored() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 4,
        log_messages: 1_200,
        ..config(&server, Scenario::Sync)
    });
    assert_eq!(report.acked, Some(1_200), "{}", report.table());
    // Two conversations of 600, each read by both of its pair in pages of 500.
    assert_eq!(report.fetched, Some(2_400));
    assert_eq!(report.pages, Some(8));
    assert_eq!(report.reordered, Some(0));
    assert!(report.fetched_per_sec().is_some_and(|r| r > 0.0));
    assert_eq!(report.latency_us.map(|l| l.count), Some(8));
}

#[test]
fn reconnect_loses_nothing_acked() {
    let server = MockServer::start(false);
    let report = run_ok(&Config {
        users: 8,
        duration: Some(Duration::from_millis(2_500)),
        window: 2,
        msg_rate: 200.0,
        drop_fraction: 0.5,
        drop_every: Duration::from_millis(400),
        offline_for: Duration::from_millis(100),
        ..config(&server, Scenario::Reconnect)
    });
    assert_eq!(report.lost, Some(0), "{}", report.table());
    assert_eq!(report.reordered, Some(0));
    assert!(report.acked.is_some_and(|n| n > 0));
    assert!(
        report.actions.get("drop").is_some_and(|&n| n > 0),
        "{}",
        report.table()
    );
    assert!(report.actions.get("caught up").is_some_and(|&n| n > 0));
    assert!(
        report.offline_delivered.is_some_and(|n| n > 0),
        "{}",
        report.table()
    );
}

#[test]
fn reconnect_fails_loudly_when_acked_messages_are_lost() {
    let server = MockServer::lossy(25);
    let report = run(&Config {
        users: 4,
        duration: Some(Duration::from_millis(800)),
        msg_rate: 200.0,
        drop_fraction: 0.0,
        ..config(&server, Scenario::Reconnect)
    })
    .expect("run");
    let lost = report.lost.unwrap_or(0);
    assert!(lost > 0, "{}", report.table());
    let failed = report.failed.clone().unwrap_or_default();
    assert!(failed.contains("LOST"), "{}", report.table());
    assert!(
        report.table().contains("FAILED: MESSAGES LOST"),
        "{}",
        report.table()
    );
}

#[test]
fn a_catch_up_recovers_what_a_dropped_connection_never_got() {
    // Every 10th message is never pushed; droppers get them back by SYNC.
    let server = MockServer::lossy(10);
    let report = run(&Config {
        users: 4,
        duration: Some(Duration::from_millis(1_500)),
        msg_rate: 200.0,
        drop_fraction: 1.0,
        drop_every: Duration::from_millis(300),
        offline_for: Duration::from_millis(50),
        ..config(&server, Scenario::Reconnect)
    })
    .expect("run");
    assert!(report.synced.is_some_and(|n| n > 0), "{}", report.table());
}

/// `--timeline`: a header, then rows of eight fields per second of each
/// phase, whose `sent` add up to the report's; the open-loop figures of
/// `mixed` (offered = users x rate, achieved, send lag).
#[test]
fn timeline_and_open_loop_figures() {
    let server = MockServer::start(false);
    let path = std::env::temp_dir().join(format!("bench-timeline-{}.csv", std::process::id()));
    let file = TempFile(path.clone());
    let report = run_ok(&Config {
        users: 12,
        members: 4,
        rate: 40.0,
        duration: Some(Duration::from_millis(2500)),
        timeline: Some(path.clone()),
        ..config(&server, Scenario::Mixed)
    });
    let text = std::fs::read_to_string(&file.0).expect("timeline written");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(chat_bench::timeline::HEADER));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert!(rows.iter().all(|r| r.len() == 8), "{text}");
    let mixed: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "mixed").collect();
    assert!(mixed.len() >= 3, "2.5 s and the drain: {text}");
    let sent: u64 = mixed.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(Some(sent), report.sent, "{text}");
    let seconds: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(seconds.windows(2).all(|w| w[0] <= w[1]), "{text}");
    let timed: Vec<(u64, u64)> = mixed
        .iter()
        .filter(|r| !r[4].is_empty())
        .map(|r| (r[4].parse().unwrap(), r[5].parse().unwrap()))
        .collect();
    assert!(!timed.is_empty(), "some second has latencies: {text}");
    assert!(timed.iter().all(|(p50, p99)| p50 <= p99), "{text}");
    assert_eq!(report.offered_per_sec, Some(480.0));
    let achieved = report.achieved_per_sec.expect("achieved");
    assert!(achieved > 100.0 && achieved < 1000.0, "{}", report.table());
    assert!(report.send_lag_us.is_some(), "{}", report.table());
    assert!(
        report.table().contains("[throughput]"),
        "{}",
        report.table()
    );
}
