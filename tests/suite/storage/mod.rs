//! The storage conformance suite ([`conformance`], and [`log`] for the
//! message log) through the public `Store` trait, run against both stores: a new SQLite file, and a new
//! MySQL database (which [needs](crate::support::Need::Mysql) MySQL).
//! The store's own unit tests (URLs, SQLite reopening, the SQL helpers)
//! stay beside it in `src/storage/tests.rs`.

mod conformance;
mod log;

use std::sync::Arc;

use chat::storage::{MysqlStore, Store};

use crate::support::trial::on_both_stores;
use crate::support::{Need, Test, TestDb};

/// Each named function (of [`conformance`] or [`log`]) that takes a store
/// as a test once per store.
macro_rules! on_both_stores {
    ($($module:ident :: $test:ident),* $(,)?) => {
        vec![$(on_both_stores(
            format!("storage::{}", stringify!($test)),
            |db: TestDb| $module::$test(&*open(&db)),
        )),*]
    };
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut suite: Vec<[Test; 2]> = on_both_stores![
        conformance::users_have_unique_names,
        conformance::online_state_and_reset,
        conformance::password_change_and_revoke_move_the_token_generation,
        conformance::friendship_is_mutual_and_unique,
        conformance::groups_with_hostile_names,
        conformance::membership_is_unique,
        conformance::dismiss_removes_group_and_members,
        conformance::offline_order_and_partial_delete,
        conformance::offline_big_utf8_messages,
        conformance::offline_fan_out_in_batches,
        conformance::concurrent_registrations_and_joins,
        conformance::quota_counts,
        log::log_seqs_are_gapless_per_conversation,
        log::log_direct_conversations_create_cursors,
        log::log_cid_duplicates_are_not_stored,
        log::log_concurrent_appends_into_one_conversation,
        log::log_concurrent_appends_across_conversations,
        log::log_pages,
        log::log_pending_order_and_exclusions,
        log::log_set_delivered_moves_forward_only,
        log::log_set_delivered_many_moves_each_user_forward_only,
        log::log_set_read_clamps_and_refuses_strangers,
        log::log_join_mid_conversation_and_quit,
        log::log_dismiss_removes_the_conversation,
        log::log_prune_keeps_counters,
        log::log_big_utf8_bodies,
    ];
    // Two stores on one database: like two nodes (two processes on SQLite).
    suite.push(on_both_stores(
        "storage::two_stores_append_into_one_conversation".into(),
        log::two_stores_append_into_one_conversation,
    ));
    suite.push(on_both_stores(
        "storage::two_stores_race_on_one_cid".into(),
        log::two_stores_race_on_one_cid,
    ));
    suite.push(on_both_stores(
        "storage::log_migration_gives_members_cursors".into(),
        log_migration_gives_members_cursors,
    ));
    let mut tests: Vec<Test> = suite.into_iter().flatten().collect();
    tests.extend(
        tests![mysql_schema_is_idempotent_and_data_survives]
            .into_iter()
            .map(|t| t.needs(&[Need::Mysql])),
    );
    tests
}

/// The URL of `db` for the store: MySQL with a small pool.
fn store_url(db: &TestDb) -> String {
    if db.is_mysql() {
        format!("{}?pool_min=1&pool_max=8", db.url)
    } else {
        db.url.clone()
    }
}

/// The store on `db`. Drop it before `db`, which removes the database.
fn open(db: &TestDb) -> Arc<dyn Store> {
    chat::storage::open(&store_url(db)).unwrap()
}

fn mysql_schema_is_idempotent_and_data_survives() {
    let db = TestDb::mysql();
    let store = open(&db);
    let a = store.create_user("a", "h").unwrap().unwrap();
    store.push_offline(a, "kept 😀").unwrap();
    let again = MysqlStore::open(&store_url(&db)).unwrap();
    assert_eq!(again.offline_messages(a).unwrap()[0].1, "kept 😀");
    assert_eq!(again.user_by_id(a).unwrap().unwrap().name, "a");
}

/// A database from before the log: group members without cursor rows get
/// them (joined_seq 0) when the store opens it, once.
fn log_migration_gives_members_cursors(db: TestDb) {
    let store = open(&db);
    let a = conformance::user(&*store, "a");
    let b = conformance::user(&*store, "b");
    let g = store.create_group(a, "old", "").unwrap().unwrap();
    store.join_group(g, b).unwrap();
    drop(store);
    // What an older server left: memberships, no cursors.
    execute(&db, "DELETE FROM convcursor");
    let conv = chat::model::Conv::group(g).unwrap();
    for _ in 0..2 {
        let store = open(&db);
        for uid in [a, b] {
            let state = store.conv_state(uid, conv).unwrap().expect("migrated");
            assert_eq!((state.joined_seq, state.delivered_seq), (0, 0));
        }
    }
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM convcursor"), 2);
}

/// Runs one statement straight on `db`'s database, behind the store's back.
fn execute(db: &TestDb, sql: &str) {
    if db.is_mysql() {
        use mysql::prelude::Queryable;
        let pool = mysql::Pool::new(db.url.as_str()).unwrap();
        pool.get_conn().unwrap().query_drop(sql).unwrap();
    } else {
        let path = db.url.strip_prefix("sqlite:").unwrap();
        rusqlite::Connection::open(path)
            .unwrap()
            .execute(sql, [])
            .unwrap();
    }
}
