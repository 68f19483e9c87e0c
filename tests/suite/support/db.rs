//! [`TestDb`]: a private store per test, removed on drop: a SQLite file in
//! a fresh temporary folder, or a freshly created database on the MySQL
//! server of [`require::mysql_url`].

use std::path::PathBuf;

use super::require;
use super::unique;

/// A store of one test, removed on drop.
pub struct TestDb {
    /// What to pass to `--db`.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Mysql { admin: String, name: String },
}

impl TestDb {
    /// A SQLite file in a new temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(unique("chat-test"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TestDb {
            url: format!("sqlite:{}", dir.join("chat.db").display()),
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new database on the MySQL server. Only tests that [need](require::Need::Mysql)
    /// MySQL call it, so the server answered the probe: failing here fails
    /// the test.
    pub fn mysql() -> TestDb {
        let admin = require::mysql_url();
        let name = unique("chat_test");
        mysql_exec(
            &admin,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        );
        TestDb {
            url: format!("{admin}/{name}"),
            cleanup: Cleanup::Mysql { admin, name },
        }
    }

    /// The resume tokens' key file of servers on this store (every node of
    /// a cluster on it shares it): the server's default beside a SQLite
    /// file; for MySQL a file in the temporary folder (the default, the
    /// current directory, would be the repository), removed on drop.
    pub fn token_key_file(&self) -> PathBuf {
        match &self.cleanup {
            Cleanup::Dir(dir) => dir.join("token.key"),
            Cleanup::Mysql { name, .. } => std::env::temp_dir().join(format!("{name}.token.key")),
        }
    }

    /// `true` for the MySQL store.
    pub fn is_mysql(&self) -> bool {
        matches!(self.cleanup, Cleanup::Mysql { .. })
    }

    /// Runs a query returning one integer, straight on the database.
    pub fn query_i64(&self, sql: &str) -> i64 {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let conn = rusqlite::Connection::open(dir.join("chat.db")).expect("open sqlite");
                conn.query_row(sql, [], |r| r.get(0)).expect("query")
            }
            Cleanup::Mysql { .. } => {
                use mysql::prelude::Queryable;
                let pool = mysql::Pool::new(self.url.as_str()).expect("mysql pool");
                let mut conn = pool.get_conn().expect("mysql conn");
                conn.query_first::<i64, _>(sql).expect("query").unwrap_or(0)
            }
        }
    }

    /// Runs one statement that returns no rows, straight on the database.
    pub fn exec(&self, sql: &str) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let conn = rusqlite::Connection::open(dir.join("chat.db")).expect("open sqlite");
                conn.execute_batch(sql).expect(sql);
            }
            Cleanup::Mysql { .. } => {
                use mysql::prelude::Queryable;
                let pool = mysql::Pool::new(self.url.as_str()).expect("mysql pool");
                let mut conn = pool.get_conn().expect("mysql conn");
                conn.query_drop(sql).expect(sql);
            }
        }
    }

    /// MySQL: opens a transaction that runs `select` (a `SELECT ... FOR
    /// UPDATE`), so the server's writes of those rows wait until the
    /// returned lock is dropped (its transaction rolls back). Plain reads
    /// of them do not wait (InnoDB's consistent reads).
    pub fn lock_rows(&self, select: &str) -> RowLock {
        use mysql::prelude::Queryable;
        assert!(self.is_mysql(), "row locks are the MySQL store's");
        let pool = mysql::Pool::new(self.url.as_str()).expect("mysql pool");
        let mut conn = pool.get_conn().expect("mysql conn");
        conn.query_drop("START TRANSACTION").expect("begin");
        let rows: Vec<mysql::Row> = conn.query(select).expect(select);
        assert!(!rows.is_empty(), "nothing to lock: {select}");
        RowLock { conn }
    }

    /// Rows of the message log (`chatlog`), every conversation's, once
    /// the count has settled ([`settled`]).
    pub fn chatlog_rows(&self) -> i64 {
        settled(|| self.query_i64("SELECT COUNT(*) FROM chatlog"))
    }

    /// Rows of the message log written by `sender`, once settled.
    pub fn chatlog_rows_from(&self, sender: i64) -> i64 {
        settled(|| {
            self.query_i64(&format!(
                "SELECT COUNT(*) FROM chatlog WHERE sender = {sender}"
            ))
        })
    }

    /// Users whose `state` column says online.
    pub fn online_users(&self) -> i64 {
        self.query_i64("SELECT COUNT(*) FROM user WHERE state = 'online'")
    }
}

/// Runs one statement on the MySQL server `admin`, outside any database;
/// fails the test if it cannot.
fn mysql_exec(admin: &str, sql: &str) {
    if let Err(e) = try_mysql_exec(admin, sql) {
        panic!("{sql}: {e}");
    }
}

fn try_mysql_exec(admin: &str, sql: &str) -> Result<(), mysql::Error> {
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(admin)?)?;
    conn.query_drop(sql)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Mysql { admin, name } => {
                let _ = std::fs::remove_file(self.token_key_file());
                // The server's default journal folder beside the key.
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("redo-{name}")));
                // Not a panic: this may run while a failed test unwinds.
                let drop = format!("DROP DATABASE IF EXISTS `{name}`");
                if let Err(e) = try_mysql_exec(admin, &drop) {
                    eprintln!("could not drop the test database {name}: {e}");
                }
            }
        }
    }
}

/// A count the server's journal may still be raising: on a single node an
/// acked message reaches the database within `--journal-apply-interval`
/// (200 ms), so the count is read until two reads [`SETTLE`] apart agree.
fn settled(read: impl Fn() -> i64) -> i64 {
    let mut last = read();
    for _ in 0..50 {
        std::thread::sleep(SETTLE);
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Three times the default apply interval.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(600);

/// Rows locked by [`TestDb::lock_rows`] until this is dropped.
pub struct RowLock {
    conn: mysql::PooledConn,
}

impl Drop for RowLock {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        let _ = self.conn.query_drop("ROLLBACK");
    }
}
