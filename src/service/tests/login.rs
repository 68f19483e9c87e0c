//! Login: messages sent to a user during each phase of their login, the
//! requests a client sends behind its own login, and errno 2.

use super::fake::{offline_in_ack, text, Harness, Seen};
use crate::protocol::{errno, msg_id};
use crate::service::Login;

/// Alice writes to Bob once in each phase of Bob's login, and once after.
/// Bob must see the ack first (carrying what was stored before his claim),
/// then the rest in the order Alice sent it.
#[test]
fn messages_sent_during_each_login_phase_follow_the_ack_in_order() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.connect();

    // Verify: the password check is held at its account read.
    h.store.hold("user_by_name");
    bob.login("bob");
    h.store.wait_arrived("user_by_name", 1);
    assert_eq!(bob.session.state().login, Login::Verifying);
    alice.chat(bob_id, "during verify");
    // Claimed, loading: phase 2 is held at its offline read.
    h.store.hold("offline_messages");
    h.store.release("user_by_name");
    h.store.wait_arrived("offline_messages", 1);
    assert!(matches!(bob.session.state().login, Login::Claimed { .. }));
    alice.chat(bob_id, "during load");
    assert_eq!(
        h.seen(bob_id),
        Seen::LoggingIn {
            peer: bob.id(),
            buffered: 1
        }
    );
    // Delivering: the ack is built and waits for Bob's own thread.
    h.store.release("offline_messages");
    h.wait_for("phase 3 to be queued", || bob.pending_tasks() > 0);
    alice.chat(bob_id, "before delivery");
    assert_eq!(
        h.seen(bob_id),
        Seen::LoggingIn {
            peer: bob.id(),
            buffered: 2
        }
    );
    bob.run_tasks();
    assert_eq!(h.seen(bob_id), Seen::Online { peer: bob.id() });
    alice.chat(bob_id, "after");
    h.settle();

    let frames = bob.take_frames();
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0]["errno"], errno::OK);
    // "during load" was committed before phase 2 read the log: it is in
    // the ack, and its buffered copy is skipped.
    assert_eq!(offline_in_ack(&frames[0]), ["during verify", "during load"]);
    let live: Vec<&str> = frames[1..].iter().map(text).collect();
    assert_eq!(live, ["before delivery", "after"]);
    let seqs: Vec<i64> = frames[1..]
        .iter()
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
    // Live deliveries are written when the connection closes (or by the
    // periodic flush): then nothing is pending.
    bob.disconnect();
    h.settle();
    assert!(h.stored(bob_id).is_empty(), "all counted as delivered");
    assert!(alice.take_frames().is_empty(), "no errors for Alice");
}

/// A client may pipeline requests behind its login: they wait, and are
/// answered after the ack, in order, as the logged-in user.
#[test]
fn requests_behind_a_login_are_replayed_after_its_ack() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.connect();
    bob.login("bob");
    bob.request(serde_json::json!({"msgId": msg_id::PING_MSG}));
    bob.chat(alice_id, "right after login");
    h.settle();

    let frames = bob.take_frames();
    let ids: Vec<i64> = frames.iter().filter_map(|f| f["msgId"].as_i64()).collect();
    assert_eq!(ids, [msg_id::LOGIN_MSG_ACK, msg_id::PONG_MSG], "{frames:?}");
    let got = alice.take_frames();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(text(&got[0]), "right after login");
}

/// A second login of a user whose first login is still loading gets
/// errno 2; the first one completes.
#[test]
fn a_login_while_another_is_loading_gets_errno_2() {
    let h = Harness::new();
    let bob_id = h.user("bob");
    let first = h.connect();
    let second = h.connect();
    h.store.hold("offline_messages");
    first.login("bob");
    h.store.wait_arrived("offline_messages", 1);
    second.login("bob");
    h.store.release("offline_messages");
    h.settle();

    assert_eq!(first.take_frames()[0]["errno"], errno::OK);
    let refused = second.take_frames();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["msgId"], msg_id::LOGIN_MSG_ACK);
    assert_eq!(refused[0]["errno"], errno::ALREADY_ONLINE);
    assert_eq!(second.session.state().login, Login::Anonymous);
    assert_eq!(h.seen(bob_id), Seen::Online { peer: first.id() });
}

/// A login of a user who is online gets errno 2 and leaves the entry alone.
#[test]
fn a_login_while_online_gets_errno_2() {
    let h = Harness::new();
    let bob_id = h.user("bob");
    let first = h.logged_in("bob");
    let second = h.connect();
    second.login("bob");
    h.settle();
    assert_eq!(second.take_frames()[0]["errno"], errno::ALREADY_ONLINE);
    assert_eq!(h.seen(bob_id), Seen::Online { peer: first.id() });
}

/// Two logins of one user, both past the password check at the same time
/// (on two hashing threads), race for the claim: exactly one wins, the
/// other gets errno 2, and the map holds the winner.
#[test]
fn two_racing_logins_of_one_user_one_wins() {
    for _ in 0..10 {
        let h = Harness::new();
        let bob_id = h.user("bob");
        let a = h.connect();
        let b = h.connect();
        h.store.hold("user_by_name");
        a.login("bob");
        b.login("bob");
        // Both verifications are under way, one per hashing thread.
        h.store.wait_arrived("user_by_name", 2);
        h.store.release("user_by_name");
        h.settle();

        let ea = a.take_frames()[0]["errno"].as_i64();
        let eb = b.take_frames()[0]["errno"].as_i64();
        let (winner, loser) = match (ea, eb) {
            (Some(errno::OK), Some(errno::ALREADY_ONLINE)) => (&a, &b),
            (Some(errno::ALREADY_ONLINE), Some(errno::OK)) => (&b, &a),
            other => panic!("expected one success and one errno 2, got {other:?}"),
        };
        assert_eq!(h.seen(bob_id), Seen::Online { peer: winner.id() });
        assert!(matches!(winner.session.state().login, Login::Active { .. }));
        assert_eq!(loser.session.state().login, Login::Anonymous);
    }
}

/// A wrong password answers errno 1 and claims nothing.
#[test]
fn a_wrong_password_claims_nothing() {
    let h = Harness::new();
    let bob_id = h.user("bob");
    let bob = h.connect();
    bob.request(
        serde_json::json!({"msgId": msg_id::LOGIN_MSG, "uid": bob_id, "password": "wrong"}),
    );
    h.settle();
    assert_eq!(bob.take_frames()[0]["errno"], errno::FAILED);
    assert_eq!(h.seen(bob_id), Seen::Absent);
    assert_eq!(bob.session.state().login, Login::Anonymous);
}
