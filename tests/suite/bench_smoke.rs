//! Smoke runs of every `chat-bench` scenario against a real `chat-server`,
//! with small numbers. They check correctness — nothing lost, duplicated or
//! reordered, no failed phase — never speed.

use std::time::Duration;

use crate::support::server::base_args;
use crate::support::{Server, Test, TestDb};
use chat_bench::{Config, Report, Scenario, SoakConfig};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = tests![
        every_scenario_runs_cleanly_against_the_real_server,
        legacy_mode_drives_the_real_server_too,
        cid_acks_every_message_the_real_server_stores,
        chat_over_websocket_against_the_real_server
    ];
    tests.extend(both_stores![
        sync_reads_back_the_whole_log,
        reconnect_loses_nothing_acked_against_the_real_server,
        soak_accounts_for_every_acked_message_across_kill9_restarts
    ]);
    tests
}

fn run(server: &Server, scenario: Scenario, tweak: impl FnOnce(&mut Config)) -> Report {
    let mut cfg = Config {
        scenario,
        addrs: vec![server.addr],
        users: 20,
        threads: 2,
        messages: Some(20),
        timeout: Duration::from_secs(60),
        drain: Duration::from_secs(5),
        hold: Duration::from_millis(200),
        progress: false,
        server_pid: Some(server.pid()),
        ..Config::default()
    };
    tweak(&mut cfg);
    let report = chat_bench::run(&cfg).expect("bench run");
    assert!(
        report.failed.is_none(),
        "{:?} failed: {:?}",
        scenario,
        report.failed
    );
    // Across reconnects delivery is at-least-once: a message pushed to a
    // connection that is dropped may be pushed again (a client drops it by
    // its (conv, seq)), so `reconnect` counts duplicates without failing.
    let duplicated = match scenario {
        Scenario::Reconnect => None,
        _ => report.duplicated,
    };
    for (what, n) in [
        ("lost", report.lost),
        ("duplicated", duplicated),
        ("reordered", report.reordered),
    ] {
        assert_eq!(
            n.unwrap_or(0),
            0,
            "{:?}: {} messages {}",
            scenario,
            n.unwrap_or(0),
            what
        );
    }
    report
}

/// `--transport ws`: the chat scenario through the web listener's `/ws`,
/// nothing lost, duplicated or reordered.
fn chat_over_websocket_against_the_real_server() {
    let server = Server::start_web(&TestDb::sqlite(), &[]);
    let web = server.web.expect("a web listener");
    let r = run(&server, Scenario::Chat, |c| {
        c.addrs = vec![web];
        c.websocket = true;
    });
    assert_eq!(r.connected, Some(20), "{r:?}");
    assert!(r.delivered.unwrap_or(0) > 0, "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
}

fn every_scenario_runs_cleanly_against_the_real_server() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &[]);

    let r = run(&server, Scenario::Connect, |c| c.login = true);
    assert_eq!(r.connected, Some(20));

    let r = run(&server, Scenario::Register, |_| {});
    assert_eq!(r.ops, Some(20));
    assert_eq!(r.op_failures.unwrap_or(0), 0);

    let r = run(&server, Scenario::Login, |_| {});
    assert_eq!(r.ops, Some(20));

    let r = run(&server, Scenario::Chat, |c| c.window = 4);
    assert_eq!(r.delivered, r.expected);
    assert!(
        r.delivered.unwrap_or(0) >= 20 * 20,
        "every sender's messages arrived"
    );

    let r = run(&server, Scenario::Group, |c| {
        c.members = 10;
        c.senders = 3;
    });
    assert_eq!(r.delivered, r.expected);

    run(&server, Scenario::Mixed, |c| {
        c.messages = None;
        c.duration = Some(Duration::from_secs(3));
    });
}

fn legacy_mode_drives_the_real_server_too() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &[]);
    let r = run(&server, Scenario::Chat, |c| {
        c.legacy = true;
        c.users = 10;
    });
    assert_eq!(r.delivered, r.expected);
}

fn cid_acks_every_message_the_real_server_stores() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &[]);
    let r = run(&server, Scenario::Chat, |c| {
        c.window = 4;
        c.cid = true;
    });
    assert_eq!(r.delivered, r.expected);
    assert_eq!(r.acked, r.sent, "{}", r.table());
    assert_eq!((r.ack_failed, r.unacked), (Some(0), Some(0)));
    assert_eq!(r.ack_latency_us.map(|l| l.count), r.sent);
    let r = run(&server, Scenario::Group, |c| {
        c.members = 6;
        c.senders = 2;
        c.cid = true;
    });
    assert_eq!(r.acked, r.sent, "{}", r.table());
    run(&server, Scenario::Mixed, |c| {
        c.messages = None;
        c.cid = true;
        c.duration = Some(Duration::from_secs(2));
    });
}

fn sync_reads_back_the_whole_log(db: TestDb) {
    let server = Server::start(&db, &[]);
    let r = run(&server, Scenario::Sync, |c| {
        c.users = 4;
        c.log_messages = 1_200;
    });
    assert_eq!(r.acked, Some(1_200), "{}", r.table());
    // Two conversations of 600, read by both of their pair: pages of 500.
    assert_eq!(
        (r.fetched, r.pages),
        (Some(2_400), Some(8)),
        "{}",
        r.table()
    );
}

fn reconnect_loses_nothing_acked_against_the_real_server(db: TestDb) {
    let server = Server::start(&db, &[]);
    let r = run(&server, Scenario::Reconnect, |c| {
        c.users = 10;
        c.messages = None;
        c.duration = Some(Duration::from_secs(4));
        c.window = 2;
        c.msg_rate = 500.0;
        c.drop_fraction = 0.5;
        c.drop_every = Duration::from_millis(800);
        c.offline_for = Duration::from_millis(200);
    });
    assert!(r.acked.is_some_and(|n| n > 0), "{}", r.table());
    for action in ["drop", "login", "caught up"] {
        let n = r.actions.get(action).copied().unwrap_or(0);
        assert!(n > 0, "{action}: {}", r.table());
    }
    // Messages whose SEND_ACK was lost with a dropped connection are not
    // owed, but were stored all the same and may arrive too.
    assert!(r.delivered >= r.expected, "{}", r.table());
}

/// The `soak` scenario, short: 20 s of traffic while the bench SIGKILLs
/// the server it started at 8 s and 16 s and restarts it on the same
/// store. Every acked message must be in its receivers' view once, every
/// conversation gapless, every user able to log in at the end. (Memory is
/// sampled, but 20 s of a debug build say nothing about a leak: the
/// tolerance is wide here; `chat-bench soak` for 30 minutes judges it.)
fn soak_accounts_for_every_acked_message_across_kill9_restarts(db: TestDb) {
    // The test flags, but the bench gives --listen and --db itself.
    let mut server_args = Vec::new();
    let mut base = base_args(&db).into_iter();
    while let Some(arg) = base.next() {
        if arg == "--listen" || arg == "--db" {
            base.next();
        } else {
            server_args.push(arg);
        }
    }
    let cfg = Config {
        scenario: Scenario::Soak,
        users: 16,
        threads: 2,
        members: 4,
        window: 2,
        msg_rate: 10.0,
        duration: Some(Duration::from_secs(20)),
        drop_every: Duration::from_secs(3),
        offline_for: Duration::from_millis(300),
        timeout: Duration::from_secs(60),
        progress: false,
        soak: SoakConfig {
            server: Some(env!("CARGO_BIN_EXE_chat-server").into()),
            server_args,
            db: Some(db.url.clone()),
            restart_every: Duration::from_secs(8),
            sample_every: Duration::from_millis(500),
            warmup: Duration::from_secs(2),
            rss_tolerance: 200.0,
            slow_readers: 2,
            slow_pause: Duration::from_secs(2),
            flooders: 1,
            flood_window: 8,
            flood_rate: 100.0,
            ..SoakConfig::default()
        },
        ..Config::default()
    };
    let r = chat_bench::run(&cfg).expect("soak run");
    let table = r.table();
    assert!(r.failed.is_none(), "{table}");
    let soak = r.soak.as_ref().expect("the soak part of the report");
    assert_eq!(soak.restarts, 2, "killed at 8 s and 16 s: {table}");
    assert_eq!(r.lost, Some(0), "{table}");
    assert_eq!(r.reordered, Some(0), "{table}");
    assert_eq!((soak.doubled, soak.gaps), (0, 0), "{table}");
    assert_eq!(
        (soak.final_logins, soak.stuck_online),
        (16, 0),
        "everybody can log in at the end: {table}"
    );
    assert_eq!(soak.wrong_password_accepted, 0, "{table}");
    assert!(r.acked.is_some_and(|n| n > 200), "{table}");
    assert!(r.delivered >= r.expected, "{table}");
    for action in [
        "verified",
        "wrong password refused",
        "pause reading",
        "caught up",
    ] {
        let n = r.actions.get(action).copied().unwrap_or(0);
        assert!(n > 0, "{action}: {table}");
    }
    assert_eq!(r.actions.get("verified"), Some(&16), "{table}");
    assert!(soak.rss_kib.len() >= 20, "sampled every 0.5 s: {table}");
    assert!(soak.rss_flat.is_some(), "{table}");
}
