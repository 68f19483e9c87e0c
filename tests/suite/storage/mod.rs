//! The storage conformance suite ([`conformance`]) through the public
//! `Store` trait, run against both stores: a new SQLite file, and a new
//! MySQL database (which [needs](crate::support::Need::Mysql) MySQL).
//! The store's own unit tests (URLs, SQLite reopening, the SQL helpers)
//! stay beside it in `src/storage/tests.rs`.

mod conformance;

use std::sync::Arc;

use chat::storage::{MysqlStore, Store};

use crate::support::trial::on_both_stores;
use crate::support::{Need, Test, TestDb};

/// Each named [`conformance`] function as a test once per store.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        vec![$(on_both_stores(
            format!("storage::{}", stringify!($test)),
            |db: TestDb| conformance::$test(&*open(&db)),
        )),*]
    };
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let suite: Vec<[Test; 2]> = on_both_stores![
        users_have_unique_names,
        online_state_and_reset,
        friendship_is_mutual_and_unique,
        groups_with_hostile_names,
        membership_is_unique,
        dismiss_removes_group_and_members,
        offline_order_and_partial_delete,
        offline_big_utf8_messages,
        offline_fan_out_in_batches,
        concurrent_registrations_and_joins,
    ];
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
