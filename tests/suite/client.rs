//! `chat-client` in non-interactive mode against a real `chat-server`:
//! commands in on standard input, one line per reply or message out.

use std::time::{Duration, Instant};

use crate::support::cli::{id_after, register};
use crate::support::{free_port, CliClient, Server, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![
        two_users_register_befriend_and_chat,
        group_create_join_chat_and_leave,
        offline_messages_arrive_at_the_next_login,
        errors_are_shown_in_plain_words,
        end_of_input_logs_out_and_exits_zero,
        lost_connection_is_reported_and_exits_nonzero,
        unreachable_server_exits_nonzero,
        chats_are_acked_with_their_place_in_the_log,
        history_and_convs_show_the_log_and_mark_it_read,
        a_login_catches_up_on_what_another_device_sent,
        a_reconnect_logs_in_again_and_shows_nothing_twice,
        a_chat_cut_off_by_a_crash_is_sent_again_after_the_reconnect,
        a_reconnect_logs_in_with_the_token_and_passwd_changes_the_password,
        users_and_groups_by_name
    ]
}

/// Two logged-in clients, alice and bob, who are friends.
struct Pair {
    alice: CliClient,
    bob: CliClient,
    alice_id: i64,
    bob_id: i64,
}

fn friends(server: &Server) -> Pair {
    let mut alice = CliClient::start(server.addr);
    let mut bob = CliClient::start(server.addr);
    let alice_id = register(&mut alice, "alice", "pw-alice");
    let bob_id = register(&mut bob, "bob", "pw:bob");
    alice.send(&format!("login:{alice_id}:pw-alice"));
    alice.expect_ok(&format!("logged in uid={alice_id} name=alice"));
    // By name, and with a ':' in the password.
    bob.send("login:bob:pw:bob");
    bob.expect_ok(&format!("logged in uid={bob_id} name=bob"));
    alice.send(&format!("addFriend:{bob_id}"));
    alice.expect_ok(&format!("added friend {bob_id}"));
    Pair {
        alice,
        bob,
        alice_id,
        bob_id,
    }
}

/// `creator` creates a group (`spec` is `name:description`) and `member`
/// joins it; returns the gid.
fn group_of_two(creator: &mut CliClient, member: &mut CliClient, spec: &str) -> i64 {
    creator.send(&format!("createGroup:{spec}"));
    let gid = id_after(&creator.expect_ok("created group "), "created group ");
    member.send(&format!("joinGroup:{gid}"));
    member.expect_ok(&format!("joined group {gid}"));
    gid
}

fn two_users_register_befriend_and_chat() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);

    alice.send("refresh");
    alice.expect_ok(&format!("refreshed uid={alice_id}"));
    alice.expect(&format!("friend {bob_id} bob online"));

    alice.send(&format!("chat:{bob_id}:hello bob: see you at 10:30"));
    let line = bob.expect(&format!("message from {alice_id} (alice) at "));
    assert!(line.ends_with(": hello bob: see you at 10:30"), "{line}");
    assert!(line.starts_with("message from"), "{line}");

    bob.send(&format!("chat:{alice_id}:hi alice, 你好"));
    let line = alice.expect(&format!("message from {bob_id} (bob)"));
    assert!(line.ends_with(": hi alice, 你好"), "{line}");

    bob.send(&format!("delFriend:{alice_id}"));
    bob.expect_ok(&format!("deleted friend {alice_id}"));
    bob.send("refresh");
    bob.expect_ok("refreshed");
    bob.expect("friends: 0");

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn group_create_join_chat_and_leave() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);

    let gid = group_of_two(&mut alice, &mut bob, "team:the team: everyone");

    alice.send(&format!("groupMembers:{gid}"));
    alice.expect_ok(&format!("group {gid} members: 2"));
    alice.expect(&format!(
        "group {gid} member {alice_id} alice online creator"
    ));
    alice.expect(&format!("group {gid} member {bob_id} bob online normal"));

    bob.send(&format!("groupChat:{gid}:hi all: standup at 10"));
    let line = alice.expect(&format!("group {gid} message from {bob_id} (bob) at "));
    assert!(line.ends_with(": hi all: standup at 10"), "{line}");
    alice.send(&format!("groupChat:{gid}:on my way"));
    bob.expect(&format!("group {gid} message from {alice_id} (alice)"));

    bob.send("refresh");
    bob.expect(&format!("group {gid} name=team desc=the team: everyone"));

    // Only the creator may dismiss; a member may leave.
    bob.send(&format!("dismissGroup:{gid}"));
    bob.expect("error: dismissGroup:");
    bob.send(&format!("quitGroup:{gid}"));
    bob.expect_ok(&format!("left group {gid}"));
    alice.send(&format!("dismissGroup:{gid}"));
    alice.expect_ok(&format!("dismissed group {gid}"));
    alice.send(&format!("groupMembers:{gid}"));
    alice.expect("error: groupMembers:");

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn offline_messages_arrive_at_the_next_login() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);
    let gid = group_of_two(&mut alice, &mut bob, "night-shift:");

    // `quit` logs out before closing, so bob is offline once it has exited.
    bob.send("quit");
    assert!(bob.wait_exit().success(), "bob: {}", bob.stderr());
    alice.send("refresh");
    alice.expect(&format!("friend {bob_id} bob offline"));

    alice.send(&format!("chat:{bob_id}:are you there?"));
    alice.send(&format!("groupChat:{gid}:the build is red"));
    alice.send(&format!("chat:{bob_id}:call me: urgent"));
    alice.send("ping"); // a round trip: the chats have reached the server
    alice.expect_ok("pong");

    let mut bob = CliClient::start(server.addr);
    bob.send(&format!("login:{bob_id}:pw:bob"));
    bob.expect_ok(&format!("logged in uid={bob_id} name=bob"));
    let mut offline = Vec::new();
    loop {
        let line = bob.expect_where("friends: or offline", |l| {
            l.starts_with("offline") || l.starts_with("friends:")
        });
        if line.starts_with("friends:") {
            break;
        }
        offline.push(line);
    }
    let chats: Vec<&String> = offline
        .iter()
        .filter(|l| l.starts_with(&format!("offline message from {alice_id} (alice) at ")))
        .collect();
    assert_eq!(chats.len(), 2, "{offline:#?}");
    assert!(chats[0].ends_with(": are you there?"), "{offline:#?}");
    assert!(chats[1].ends_with(": call me: urgent"), "{offline:#?}");
    assert!(
        offline.iter().any(|l| l.starts_with(&format!(
            "offline group {gid} message from {alice_id} (alice) at "
        )) && l.ends_with(": the build is red")),
        "{offline:#?}"
    );
    bob.expect(&format!("friend {alice_id} alice online"));
    bob.expect(&format!("group {gid} name=night-shift"));

    // Delivered once: a second login brings nothing back.
    bob.send("logout");
    bob.expect_ok("logged out");
    bob.send("login:bob:pw:bob");
    bob.expect_ok("logged in");
    let again = bob.drain(Duration::from_millis(300));
    assert!(
        !again.iter().any(|l| l.starts_with("offline")),
        "{again:#?}"
    );

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn errors_are_shown_in_plain_words() {
    let server = Server::fresh();
    let mut c = CliClient::start(server.addr);
    let id = register(&mut c, "carol", "right");

    c.send("register:carol:again");
    let line = c.expect("error: register:");
    assert!(
        line.starts_with("error: register: that user name is taken (errno 1)"),
        "{line}"
    );

    c.send(&format!("login:{id}:wrong"));
    let line = c.expect("error: login:");
    assert!(
        line.starts_with("error: login: no such account or wrong password (errno 1)"),
        "{line}"
    );

    // Mistakes the client catches itself go to standard error.
    c.send("chat:1:too early");
    c.expect_stderr("log in first");
    c.send("frobnicate");
    c.expect_stderr("unknown command \"frobnicate\"");
    c.send("chat:0:hi");
    c.expect_stderr("fid must be a positive number");
    c.send("login:carol");
    c.expect_stderr("the password is missing");

    c.send("login:carol:right");
    c.expect_ok(&format!("logged in uid={id}"));
    c.send("chat:999999:anyone?");
    c.expect("error: chat:");
    c.send("joinGroup:999999");
    c.expect("error: joinGroup:");
    c.send("ping");
    c.expect_ok("pong");
    assert!(c.finish().success());
}

fn end_of_input_logs_out_and_exits_zero() {
    let server = Server::fresh();
    let mut dave = CliClient::start(server.addr);
    let dave_id = register(&mut dave, "dave", "pw");
    dave.send("login:dave:pw");
    dave.expect_ok("logged in");
    let mut erin = CliClient::start(server.addr);
    register(&mut erin, "erin", "pw");
    erin.send("login:erin:pw");
    erin.expect_ok("logged in");
    erin.send(&format!("addFriend:{dave_id}"));
    erin.expect_ok("added friend");

    let started = Instant::now();
    let status = dave.finish();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    erin.send("refresh");
    erin.expect(&format!("friend {dave_id} dave offline"));
    assert!(erin.finish().success());
}

fn lost_connection_is_reported_and_exits_nonzero() {
    let mut server = Server::fresh();
    let mut c = CliClient::start(server.addr);
    register(&mut c, "frank", "pw");
    c.send("login:frank:pw");
    c.expect_ok("logged in");
    server.kill9();
    // Standard input stays open: the client must notice by itself.
    let status = c.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", c.stderr());
    assert!(c.stderr().contains("connection lost"), "{}", c.stderr());
}

fn unreachable_server_exits_nonzero() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut c = CliClient::start(&addr);
    let status = c.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(
        c.stderr().contains(&format!("cannot connect to {addr}")),
        "{}",
        c.stderr()
    );
}

/// The one-to-one conversation of users `a` and `b`, as the server names it.
fn conv(a: i64, b: i64) -> String {
    format!("d{}-{}", a.min(b), a.max(b))
}

fn chats_are_acked_with_their_place_in_the_log() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);
    let d = conv(alice_id, bob_id);

    alice.send(&format!("chat:{bob_id}:first: with a colon"));
    alice.expect_ok(&format!(
        "sent message to {bob_id} ({d} #1): first: with a colon"
    ));
    bob.expect(": first: with a colon");
    bob.send(&format!("chat:{alice_id}:second"));
    bob.expect_ok(&format!("sent message to {alice_id} ({d} #2): second"));
    alice.expect(": second");

    let gid = group_of_two(&mut alice, &mut bob, "acked:");
    alice.send(&format!("groupChat:{gid}:to the group"));
    alice.expect_ok(&format!(
        "sent group {gid} message (g{gid} #1): to the group"
    ));
    bob.expect(": to the group");

    // A refusal names the message it is about.
    alice.send("chat:99999:nobody");
    let line = alice.expect("error: chat:");
    assert!(
        line.contains("[not sent: message to 99999: nobody]"),
        "{line}"
    );

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn history_and_convs_show_the_log_and_mark_it_read() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);
    let d = conv(alice_id, bob_id);
    for i in 1..=3 {
        alice.send(&format!("chat:{bob_id}:note {i}"));
        alice.expect_ok(&format!("sent message to {bob_id} ({d} #{i})"));
    }
    bob.expect(": note 3");

    bob.send("convs");
    bob.expect_ok("conversations: 1");
    bob.expect_ok(&format!(
        "conv {d} with user {alice_id}: last 3, read 0, unread 3"
    ));

    bob.send(&format!("history:{d}"));
    bob.expect_ok(&format!("history {d}: 3 messages"));
    for i in 1..=3 {
        let line = bob.expect_ok(&format!("history {d} #{i} message from {alice_id} (alice)"));
        assert!(line.ends_with(&format!(": note {i}")), "{line}");
    }
    bob.expect_ok(&format!("read {d} up to #3"));
    bob.send(&format!("history:{d}:3"));
    bob.expect_ok(&format!("history {d}: 2 messages"));
    bob.expect_ok(&format!("history {d} #1 "));

    bob.send("convs");
    bob.expect_ok(&format!(
        "conv {d} with user {alice_id}: last 3, read 3, unread 0"
    ));

    // Not ours to read.
    bob.send("history:d9998-9999");
    bob.expect("error: history:");

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn a_login_catches_up_on_what_another_device_sent() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);
    let d = conv(alice_id, bob_id);
    alice.send(&format!("chat:{bob_id}:before"));
    bob.expect(": before");

    // Bob steps away; on his phone (another client) he writes to alice.
    bob.send("logout");
    bob.expect_ok("logged out");
    let mut phone = CliClient::start(server.addr);
    phone.send("login:bob:pw:bob");
    phone.expect_ok("logged in");
    phone.send(&format!("chat:{alice_id}:from my phone"));
    phone.expect_ok(&format!("sent message to {alice_id} ({d} #2)"));
    assert!(phone.finish().success());

    // Back on the first client: its log says #1, the server says #2.
    bob.send("login:bob:pw:bob");
    bob.expect_ok("logged in");
    let line = bob.expect_ok(&format!("caught up {d} #2 message from {bob_id} (bob)"));
    assert!(line.ends_with(": from my phone"), "{line}");
    bob.expect_ok("caught up: 1 new message in 1 conversation");

    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

fn a_reconnect_logs_in_again_and_shows_nothing_twice() {
    let db = crate::support::TestDb::sqlite();
    let mut server = Server::start(&db, &[]);
    let addr = server.addr.to_string();
    let mut alice = CliClient::start(&addr);
    let alice_id = register(&mut alice, "alice", "pw-a");
    let mut bob = CliClient::start_with(&[&addr, "--linger-ms", "200", "--reconnect"]);
    let bob_id = register(&mut bob, "bob", "pw-b");
    bob.send("login:bob:pw-b");
    bob.expect_ok("logged in");
    alice.send("login:alice:pw-a");
    alice.expect_ok("logged in");
    alice.send(&format!("chat:{bob_id}:one"));
    alice.expect_ok("sent message");
    bob.expect(&format!("message from {alice_id} (alice)"));

    server.kill9();
    assert_eq!(
        alice.wait_exit().code(),
        Some(1),
        "without --reconnect: exit 1"
    );
    bob.expect_stderr("reconnecting");
    let server = Server::start(&db, &["--listen", &addr]);
    bob.expect_ok(&format!("reconnected to {addr}"));
    bob.expect_ok(&format!("logged in uid={bob_id} name=bob"));

    let mut alice = CliClient::start(server.addr);
    alice.send("login:alice:pw-a");
    alice.expect_ok("logged in");
    alice.send(&format!("chat:{bob_id}:two"));
    alice.expect_ok("sent message");
    bob.expect(": two");
    // "one" may come again after the crash (at-least-once); it is shown once.
    let later = bob.drain(Duration::from_millis(300));
    assert!(!later.iter().any(|l| l.ends_with(": one")), "{later:#?}");
    assert!(alice.finish().success());
    assert!(bob.finish().success());
    drop(server);
}

fn a_chat_cut_off_by_a_crash_is_sent_again_after_the_reconnect() {
    let db = crate::support::TestDb::sqlite();
    let mut server = Server::start(&db, &[]);
    let addr = server.addr.to_string();
    let mut bob = CliClient::start(&addr);
    let bob_id = register(&mut bob, "bob", "pw-b");
    drop(bob);
    let reconnecting = [addr.as_str(), "--reconnect", "--timeout-ms", "30000"];
    let mut alice = CliClient::start_with(&reconnecting);
    let alice_id = register(&mut alice, "alice", "pw-a");
    alice.send("login:alice:pw-a");
    alice.expect_ok("logged in");

    // The server freezes (SIGSTOP: it reads nothing more) and then dies:
    // the chat never reached it, and its SEND_ACK never comes.
    assert_eq!(
        server.signal_and_wait(libc::SIGSTOP, Duration::from_millis(50)),
        None
    );
    alice.send(&format!("chat:{bob_id}:across the crash"));
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();
    alice.expect_stderr("reconnecting");
    let _server = Server::start(&db, &["--listen", &addr]);
    alice.expect_ok("reconnected");
    alice.expect_ok(&format!("logged in uid={alice_id}"));
    let d = conv(alice_id, bob_id);
    alice.expect_ok(&format!(
        "sent message to {bob_id} ({d} #1): across the crash"
    ));

    let mut bob = CliClient::start(&addr);
    bob.send("login:bob:pw-b");
    bob.expect_ok("logged in");
    let lines = bob.drain(Duration::from_millis(500));
    let got = lines
        .iter()
        .filter(|l| l.ends_with(": across the crash"))
        .count();
    assert_eq!(got, 1, "{lines:#?}");
    assert!(alice.finish().success());
    assert!(bob.finish().success());
}

/// `passwd` changes the password (a wrong current one is refused), and
/// the reconnect logs in with the resume token of the change's ack, not
/// with a password: the password is made unusable in the database while
/// the server is down, the token handed out before the change was
/// revoked, and bob still gets back in.
fn a_reconnect_logs_in_with_the_token_and_passwd_changes_the_password() {
    let db = crate::support::TestDb::sqlite();
    let mut server = Server::start(&db, &[]);
    let addr = server.addr.to_string();
    let mut bob = CliClient::start_with(&[&addr, "--linger-ms", "200", "--reconnect"]);
    let bob_id = register(&mut bob, "bob", "pw-b");
    bob.send("login:bob:pw-b");
    bob.expect_ok("logged in");
    bob.send("passwd:wrong:new-pw");
    bob.expect("wrong password");
    bob.send("passwd:pw-b:new-pw");
    bob.expect_ok("password changed");

    server.kill9();
    bob.expect_stderr("reconnecting");
    db.exec(&format!(
        "UPDATE user SET password = 'not a hash' WHERE id = {bob_id}"
    ));
    let server = Server::start(&db, &["--listen", &addr]);
    bob.expect_ok(&format!("reconnected to {addr}"));
    bob.expect_ok(&format!("logged in uid={bob_id} name=bob"));
    assert!(bob.finish().success());
    drop(server);
}

/// `chat:bob:…`, `groupChat:team:…`, `groupMembers:TEAM`: names from the
/// last login or refresh ack, exact or (when only one matches) ignoring
/// case; a name the lists do not hold is refused by the client itself
/// (nothing sent), and with `--strict` it makes the exit status 3.
fn users_and_groups_by_name() {
    let server = Server::fresh();
    let Pair {
        mut alice,
        mut bob,
        alice_id,
        bob_id,
    } = friends(&server);
    // bob became a friend after alice's login ack: not known by name yet.
    alice.send("chat:bob:too early");
    alice.expect_stderr("unknown user \"bob\"");
    alice.send("refresh");
    alice.expect_ok(&format!("refreshed uid={alice_id}"));
    alice.send("chat:bob:hello by name");
    let line = bob.expect(&format!("message from {alice_id} (alice)"));
    assert!(line.ends_with(": hello by name"), "{line}");

    let gid = group_of_two(&mut alice, &mut bob, "team:by name");
    bob.send("refresh");
    bob.expect_ok(&format!("refreshed uid={bob_id}"));
    bob.send("groupChat:team:hi team");
    let line = alice.expect(&format!("group {gid} message from {bob_id} (bob)"));
    assert!(line.ends_with(": hi team"), "{line}");
    bob.send("groupMembers:TEAM");
    bob.expect_ok(&format!("group {gid} members: 2"));
    // alice created it in this session: known without a refresh.
    alice.send("groupChat:team:from the creator");
    let line = bob.expect(&format!("group {gid} message from {alice_id} (alice)"));
    assert!(line.ends_with(": from the creator"), "{line}");
    // alice by name, ignoring case.
    bob.send("chat:Alice:case does not matter");
    alice.expect(": case does not matter");
    bob.send("groupChat:nosuchgroup:x");
    bob.expect_stderr("unknown group \"nosuchgroup\"");
    assert!(alice.finish().success());
    assert!(
        bob.finish().success(),
        "no --strict: a refusal is no failure"
    );

    let mut strict =
        CliClient::start_with(&[&server.addr.to_string(), "--strict", "--linger-ms", "200"]);
    strict.send("login:bob:pw:bob");
    strict.expect_ok(&format!("logged in uid={bob_id}"));
    strict.send("chat:carol:hi");
    strict.expect_stderr("unknown user \"carol\"");
    assert_eq!(strict.finish().code(), Some(3), "--strict: a name refused");
}
