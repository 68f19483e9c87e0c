//! The browser client (src/web/) in a real browser: headless Chromium,
//! driven over WebDriver ([`support::webdriver`]), against a real
//! `chat-server` serving the page and `/ws` on `--http`.
//!
//! Two browser users register, befriend, chat one-to-one and in a group
//! with a TCP user of the JSON protocol (the suite's `Client`); one
//! reloads the page, signs in again and finds the history. And a page
//! whose server goes away and comes back reconnects by itself, sends what
//! was written meanwhile, and shows what it missed; history the page does
//! not hold comes page by page as one scrolls up. Friends and groups are
//! added, listed, left, dismissed and removed from the page, and a refused
//! request says why. The test finds
//! everything through the page's stable ids and `data-*` attributes, and
//! waits for what a person would see: a conversation in the sidebar with
//! its unread badge, a message's bubble, its acked state.
//!
//! A screenshot of the chat is written to `web-client.png` in the system's
//! temporary directory, or where `CHAT_WEB_SCREENSHOT` says (the README's
//! picture, docs/img/web-client.png, is made that way).

use serde_json::{json, Value};

use crate::support::client::nested;
use crate::support::tls::{TestCa, TlsDir};
use crate::support::webdriver::{Driver, Session};
use crate::support::{free_port, Need, Server, Test, TestDb};

pub fn tests() -> Vec<Test> {
    both_stores![
        browser_users_chat_with_each_other_and_tcp,
        browser_reconnects_and_catches_up,
        history_loads_as_you_scroll_up,
        friends_and_groups_are_managed_in_the_page,
        the_page_works_over_https_and_wss
    ]
    .into_iter()
    .map(|t| t.needs(&[Need::Chromium]))
    .collect()
}

/// Registers `name` on the page's sign-up tab; returns the new uid once
/// the chat shows.
fn register(page: &Session, web: &str, name: &str, password: &str) -> i64 {
    page.goto(&format!("{web}/"));
    page.click("#tab-register");
    page.type_into("#auth-username", name);
    page.type_into("#auth-password", password);
    page.click("#auth-submit");
    signed_in(page, name)
}

/// Signs in on the page's first tab, by name.
fn sign_in(page: &Session, name: &str, password: &str) -> i64 {
    page.type_into("#auth-username", name);
    page.type_into("#auth-password", password);
    page.click("#auth-submit");
    signed_in(page, name)
}

/// Waits until the chat shows for `name` and returns its uid.
fn signed_in(page: &Session, name: &str) -> i64 {
    let v = page.wait_for(
        &format!("{name} is signed in"),
        "const app = document.querySelector('#app');
         return app.hidden ? document.querySelector('#auth-error').textContent
                           : [document.querySelector('#me-name').textContent, app.dataset.uid];",
        &[],
        |v| v.is_array(),
    );
    assert_eq!(v[0], name, "{v}");
    v[1].as_str().and_then(|s| s.parse().ok()).expect("uid")
}

/// The sidebar's entry for `key` (`u:UID`, `g:GID`): [presence, unread].
const CONV_ENTRY: &str =
    "const li = document.querySelector(`#conv-list [data-conv-key=\"${arguments[0]}\"]`);
    return li ? [li.dataset.presence || null, Number(li.dataset.unread)] : null;";

fn wait_entry(page: &Session, key: &str, ok: impl Fn(&Value) -> bool) -> Value {
    page.wait_for(
        &format!("{key} shows in the sidebar"),
        CONV_ENTRY,
        &[json!(key)],
        ok,
    )
}

/// Unfolds the sidebar's "New chat or group" tools (they fold away after
/// each success).
fn open_tools(page: &Session) {
    let open = page.script("return document.querySelector('#tools').open;", &[]);
    if open != true {
        page.click("#tools summary");
    }
}

/// Opens the conversation `key` from the sidebar.
fn open(page: &Session, key: &str) {
    page.click(&format!("#conv-list [data-conv-key=\"{key}\"]"));
    page.wait_for(
        &format!("{key} is open"),
        "return document.querySelector('#chat').dataset.convKey;",
        &[],
        |v| v == key,
    );
}

/// The open conversation's bubbles: [text, mine, state, seq].
const BUBBLES: &str = "return [...document.querySelectorAll('#message-list .msg')].map(m =>
    [m.querySelector('.text').textContent, m.classList.contains('mine'), m.dataset.state,
     m.dataset.seq ? Number(m.dataset.seq) : null]);";

/// Waits until the open conversation shows `text` (`mine`: as one's own,
/// acked by the server).
fn wait_bubble(page: &Session, text: &str, mine: bool) {
    page.wait_for(&format!("the bubble {text:?} shows"), BUBBLES, &[], |v| {
        v.as_array().is_some_and(|list| {
            list.iter().any(|b| {
                b[0] == text
                    && b[1] == mine
                    && b[2] == "sent"
                    && b[3].as_i64().is_some_and(|s| s > 0)
            })
        })
    });
}

/// Writes `text` in the composer and sends it; waits for its ack.
fn say(page: &Session, text: &str) {
    page.type_into("#composer-input", text);
    page.click("#send-btn");
    wait_bubble(page, text, true);
}

fn browser_users_chat_with_each_other_and_tcp(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = format!("http://{}", server.web.expect("the web listener's address"));
    let driver = Driver::start();
    let ann_page = driver.session(1100, 720);
    let ben_page = driver.session(1100, 720);

    // Two browser users and one on the JSON protocol over TCP.
    let ann = register(&ann_page, &web, "ann", "ann's secret");
    let ben = register(&ben_page, &web, "ben", "ben's secret");
    let mut carol = server.user("carol");
    let (ann_key, ben_key) = (format!("u:{ann}"), format!("u:{ben}"));

    // Ann adds Ben by id: he shows in her sidebar, online, and opens.
    open_tools(&ann_page);
    ann_page.type_into("#add-friend-input", &ben.to_string());
    ann_page.click("#add-friend-btn");
    wait_entry(&ann_page, &ben_key, |v| v[0] == "online");
    open(&ann_page, &ben_key);

    // One-to-one: Ben's sidebar gets Ann with one unread message.
    say(&ann_page, "Hi Ben! Lunch at noon?");
    wait_entry(&ben_page, &ann_key, |v| v[1] == 1);
    open(&ben_page, &ann_key);
    wait_bubble(&ben_page, "Hi Ben! Lunch at noon?", false);
    wait_entry(&ben_page, &ann_key, |v| v[1] == 0);
    say(&ben_page, "Sure — see you at the café");
    wait_bubble(&ann_page, "Sure — see you at the café", false);

    // A group: Ann creates it, Ben joins in the page, Carol over TCP.
    open_tools(&ann_page);
    ann_page.type_into("#new-group-name", "lunch club");
    ann_page.click("#new-group-btn");
    let gid: i64 = ann_page
        .wait_for(
            "the new group opens",
            "return document.querySelector('#chat').dataset.convKey;",
            &[],
            |v| v.as_str().is_some_and(|k| k.starts_with("g:")),
        )
        .as_str()
        .and_then(|k| k.strip_prefix("g:")?.parse().ok())
        .expect("gid");
    let group_key = format!("g:{gid}");
    open_tools(&ben_page);
    ben_page.type_into("#join-group-input", &gid.to_string());
    ben_page.click("#join-group-btn");
    wait_entry(&ben_page, &group_key, |v| v.is_array());
    carol.join_group(gid);

    say(&ann_page, "Who is in for the lunch club?");
    let post = carol.expect(13);
    assert_eq!(post["msg"], "Who is in for the lunch club?", "{post}");
    assert_eq!(
        (post["uid"].as_i64(), post["gid"].as_i64()),
        (Some(ann), Some(gid))
    );
    open(&ben_page, &group_key);
    wait_bubble(&ben_page, "Who is in for the lunch club?", false);

    carol.send(&json!({"msgId": 13, "gid": gid, "msg": "Count me in, from the terminal"}));
    wait_bubble(&ann_page, "Count me in, from the terminal", false);
    wait_bubble(&ben_page, "Count me in, from the terminal", false);
    say(&ben_page, "Me too!");
    let post = carol.expect(13);
    assert_eq!(
        (post["msg"].as_str(), post["uid"].as_i64()),
        (Some("Me too!"), Some(ben))
    );
    // Carol writes to Ben one-to-one: a conversation with a non-friend.
    carol.chat(ben, "Ben, bring the menu?");
    wait_entry(&ben_page, &format!("u:{}", carol.uid), |v| v[1] == 1);

    // Ben reloads: the sign-in card; after it, the history is there again,
    // loaded from the server (SYNC), with Carol's message still unread.
    ben_page.goto(&format!("{web}/"));
    // A wrong password first: the card says so, in words.
    ben_page.type_into("#auth-username", "ben");
    ben_page.type_into("#auth-password", "not ben's secret");
    ben_page.click("#auth-submit");
    ben_page.wait_for(
        "the card explains the refused sign-in",
        "return document.querySelector('#auth-error').textContent;",
        &[],
        |v| {
            v.as_str()
                .is_some_and(|s| s.starts_with("Wrong user name or password"))
        },
    );
    assert_eq!(sign_in(&ben_page, "ben", "ben's secret"), ben);
    wait_entry(&ben_page, &format!("u:{}", carol.uid), |v| v[1] == 1);
    open(&ben_page, &ann_key);
    wait_bubble(&ben_page, "Hi Ben! Lunch at noon?", false);
    wait_bubble(&ben_page, "Sure — see you at the café", true);
    open(&ben_page, &group_key);
    wait_bubble(&ben_page, "Who is in for the lunch club?", false);
    wait_bubble(&ben_page, "Count me in, from the terminal", false);
    wait_bubble(&ben_page, "Me too!", true);

    // And Ann sees Ben's answer in the group after it all.
    wait_bubble(&ann_page, "Me too!", false);
    // Ben is back online for Ann (presence comes with her page's refresh).
    wait_entry(&ann_page, &ben_key, |v| v[0] == "online");
    // For the picture: no notice on top, the members' names (a refresh
    // after strangers posted) in the header.
    ann_page.wait_for(
        "the group header counts three members",
        "return document.querySelector('#chat-sub').textContent;",
        &[],
        |v| v.as_str().is_some_and(|s| s.ends_with("3 members")),
    );
    ann_page.script(
        "const t = document.querySelector('#toast'); t.style.transition = 'none'; t.classList.remove('show');",
        &[],
    );
    save_screenshot(&ann_page);
}

/// The picture of Ann's window for the README (see the module doc).
fn save_screenshot(page: &Session) {
    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let path = std::env::var_os("CHAT_WEB_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("web-client.png"));
    // Two tests (the stores) may write it at once: write aside, then rename.
    let aside = path.with_extension(format!("{}.tmp", std::process::id()));
    if let Err(e) = std::fs::write(&aside, &png).and_then(|()| std::fs::rename(&aside, &path)) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// The state of the open conversation's bubble with `text`, if any.
const BUBBLE_STATE: &str = "const m = [...document.querySelectorAll('#message-list .msg')]
    .find(m => m.querySelector('.text').textContent === arguments[0]);
    return m ? m.dataset.state : null;";

fn browser_reconnects_and_catches_up(db: TestDb) {
    // Fixed addresses, so that the server comes back where the page was.
    let (tcp, web) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let flags = ["--listen", tcp.as_str(), "--http", web.as_str()];
    let mut server = Server::start(&db, &flags);
    let url = format!("http://{web}");
    let driver = Driver::start();
    let page = driver.session(1000, 700);
    let ann = register(&page, &url, "ann", "ann's secret");
    let mut bob = server.user("bob");
    let bob_key = format!("u:{}", bob.uid);
    open_tools(&page);
    page.type_into("#add-friend-input", &bob.uid.to_string());
    page.click("#add-friend-btn");
    wait_entry(&page, &bob_key, |v| v.is_array());
    open(&page, &bob_key);
    bob.chat(ann, "before the restart");
    wait_bubble(&page, "before the restart", false);

    // The server dies: the page says so, and what Ann writes waits.
    server.kill9();
    drop(bob);
    page.wait_for(
        "the page sees the connection lost",
        "return document.querySelector('#conn-state').dataset.state;",
        &[],
        |v| v != "online",
    );
    page.type_into("#composer-input", "written while offline");
    page.click("#send-btn");
    page.wait_for(
        "the message waits to be sent",
        BUBBLE_STATE,
        &[json!("written while offline")],
        |v| v == "sending",
    );

    // Back on the same store and addresses; Bob writes before or after the
    // page is back (live, in the login ack, or by SYNC: the page shows it
    // once either way).
    let server = Server::start(&db, &flags);
    let mut bob = server.connect();
    bob.name = "bob".into();
    let ack = bob.request(json!({"msgId": 1, "username": "bob", "password": "secret"}));
    assert_eq!(ack["errno"], 0, "{ack}");
    bob.uid = ack["uid"].as_i64().expect("uid");
    bob.chat(ann, "sent while you were away");
    wait_bubble(&page, "written while offline", true);
    wait_bubble(&page, "sent while you were away", false);
    // Ann's message reached Bob: in his login ack if it was stored before
    // he logged in, else live.
    let offline = nested(&ack, "offlinemsgs");
    let got = match offline.into_iter().find(|m| m["msgId"] == 9) {
        Some(m) => m,
        None => bob.expect(9),
    };
    assert_eq!(
        (got["msg"].as_str(), got["from"].as_i64()),
        (Some("written while offline"), Some(ann))
    );
    // Each message once on the page, whatever way it came.
    let texts = page.script(BUBBLES, &[]);
    let count = |t: &str| {
        texts
            .as_array()
            .map_or(0, |l| l.iter().filter(|b| b[0] == t).count())
    };
    for t in [
        "before the restart",
        "written while offline",
        "sent while you were away",
    ] {
        assert_eq!(count(t), 1, "{t:?} on the page: {texts}");
    }
    page.wait_for(
        "the page is online again",
        "return document.querySelector('#conn-state').dataset.state;",
        &[],
        |v| v == "online",
    );
}

/// The open conversation's bubbles: how many, the lowest seq, and what the
/// line above them says.
const HISTORY: &str = "const seqs = [...document.querySelectorAll('#message-list .msg')]
    .map(m => Number(m.dataset.seq));
    return [seqs.length, Math.min(...seqs), document.querySelector('#history-state').textContent];";

fn history_loads_as_you_scroll_up(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = format!("http://{}", server.web.expect("the web listener's address"));
    let driver = Driver::start();
    let page = driver.session(1000, 700);
    let ann = register(&page, &web, "ann", "ann's secret");
    let mut bob = server.user("bob");
    let bob_key = format!("u:{}", bob.uid);
    for i in 1..=70 {
        bob.chat(ann, &format!("message {i} of 70"));
    }
    // Handed to the page live, not opened: 70 unread.
    wait_entry(&page, &bob_key, |v| v[1] == 70);

    // A new page holds none of them: the newest page first, older ones as
    // the reader scrolls to the top, until the beginning.
    page.goto(&format!("{web}/"));
    sign_in(&page, "ann", "ann's secret");
    wait_entry(&page, &bob_key, |v| v[1] == 70);
    open(&page, &bob_key);
    wait_bubble(&page, "message 70 of 70", false);
    let first = page.wait_for("the newest page shows", HISTORY, &[], |v| v[0] == 30);
    assert_eq!(first[1], 41, "{first}");
    wait_entry(&page, &bob_key, |v| v[1] == 0);
    let scroll_up = "document.querySelector('#messages').scrollTop = 0;";
    page.script(scroll_up, &[]);
    page.wait_for("the second page shows", HISTORY, &[], |v| {
        v[0] == 60 && v[1] == 11
    });
    page.script(scroll_up, &[]);
    page.wait_for("the whole history shows", HISTORY, &[], |v| {
        v[0] == 70 && v[1] == 1 && v[2] == "Beginning of the conversation"
    });
    wait_bubble(&page, "message 1 of 70", false);
}

/// The text of the page's notice (toast) once it says something.
fn wait_toast(page: &Session, starts: &str) {
    page.wait_for(
        &format!("the notice says {starts:?}"),
        "return document.querySelector('#toast').textContent;",
        &[],
        |v| v.as_str().is_some_and(|s| s.starts_with(starts)),
    );
}

fn friends_and_groups_are_managed_in_the_page(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = format!("http://{}", server.web.expect("the web listener's address"));
    let driver = Driver::start();
    let ann_page = driver.session(1000, 700);
    let ben_page = driver.session(1000, 700);
    let ann = register(&ann_page, &web, "ann", "ann's secret");
    let ben = register(&ben_page, &web, "ben", "ben's secret");
    let (ann_key, ben_key) = (format!("u:{ann}"), format!("u:{ben}"));

    // A refused request says why: no group 999, no user 999.
    open_tools(&ben_page);
    ben_page.type_into("#join-group-input", "999");
    ben_page.click("#join-group-btn");
    wait_toast(&ben_page, "Not found.");
    open_tools(&ann_page);
    ann_page.type_into("#add-friend-input", "999");
    ann_page.click("#add-friend-btn");
    wait_toast(&ann_page, "Not found.");

    // Friends, and a group of two with its member list.
    ann_page.type_into("#add-friend-input", &ben.to_string());
    ann_page.click("#add-friend-btn");
    wait_entry(&ann_page, &ben_key, |v| v.is_array());
    // Ben's page learns of the friendship with its next refresh.
    wait_entry(&ben_page, &ann_key, |v| v[0] == "online");
    open_tools(&ann_page);
    ann_page.type_into("#new-group-name", "book club");
    ann_page.click("#new-group-btn");
    let gid: i64 = ann_page
        .wait_for(
            "the new group opens",
            "return document.querySelector('#chat').dataset.convKey;",
            &[],
            |v| v.as_str().is_some_and(|k| k.starts_with("g:")),
        )
        .as_str()
        .and_then(|k| k.strip_prefix("g:")?.parse().ok())
        .expect("gid");
    let group_key = format!("g:{gid}");
    open_tools(&ben_page);
    ben_page.type_into("#join-group-input", &gid.to_string());
    ben_page.click("#join-group-btn");
    wait_entry(&ben_page, &group_key, |v| v.is_array());
    ben_page.click("#members-btn");
    let members = ben_page.wait_for(
        "the member list shows both",
        "return [...document.querySelectorAll('#member-list li')]
            .map(li => [Number(li.dataset.uid), li.dataset.presence, li.textContent]);",
        &[],
        |v| v.as_array().is_some_and(|l| l.len() == 2),
    );
    assert_eq!(members[0][0], ann, "{members}");
    assert!(
        members[0][2]
            .as_str()
            .is_some_and(|s| s.contains("creator")),
        "{members}"
    );
    assert_eq!(
        (&members[1][0], &members[1][1]),
        (&json!(ben), &json!("online"))
    );

    // Ben leaves (the creator cannot: she dismisses); both lists lose it.
    ben_page.click("#quit-group-btn");
    ben_page.accept_alert();
    wait_toast(&ben_page, "You left the group.");
    wait_entry(&ben_page, &group_key, Value::is_null);
    assert_eq!(
        ann_page.script(
            "return document.querySelector('#quit-group-btn').hidden;",
            &[]
        ),
        true
    );
    ann_page.click("#dismiss-group-btn");
    ann_page.accept_alert();
    wait_toast(&ann_page, "The group is dismissed.");
    wait_entry(&ann_page, &group_key, Value::is_null);

    // Ann removes Ben: with no messages between them, he leaves her list.
    open(&ann_page, &ben_key);
    ann_page.click("#del-friend-btn");
    ann_page.accept_alert();
    wait_toast(&ann_page, "Friend removed.");
    wait_entry(&ann_page, &ben_key, Value::is_null);
}

/// The page loaded over `--https` talks `wss:` (a browser refuses `ws:`
/// from an https page): a user signs up in it and chats with a TCP user.
fn the_page_works_over_https_and_wss(db: TestDb) {
    let (ca, dir) = (TestCa::new(), TlsDir::new());
    let (cert, key) = dir.pair(&ca.issue(false));
    let args = [
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let server = Server::start(&db, &args);
    let port = server.web_tls.expect("the https listener's address").port();
    let web = format!("https://localhost:{port}");
    let driver = Driver::start();
    let page = driver.insecure_session(1100, 720);

    let ann = register(&page, &web, "ann", "ann's secret");
    let scheme = page.script("return location.protocol;", &[]);
    assert_eq!(scheme, "https:");
    let mut carol = server.user("carol");
    let carol_key = format!("u:{}", carol.uid);
    open_tools(&page);
    page.type_into("#add-friend-input", &carol.uid.to_string());
    page.click("#add-friend-btn");
    wait_entry(&page, &carol_key, |v| v[0] == "online");
    open(&page, &carol_key);
    say(&page, "over wss");
    // Past the friend request's notice, if one came first.
    let got = loop {
        let v = carol.recv();
        if v["msgId"] == 9 {
            break v;
        }
    };
    assert_eq!(
        (got["from"].as_i64(), got["msg"].as_str()),
        (Some(ann), Some("over wss"))
    );
    carol.chat(ann, "back over tcp");
    wait_bubble(&page, "back over tcp", false);
}
