-- The SQLite schema of the chat server: chat.sql (the MySQL schema at the
-- top of the repository) translated, with the same tables, columns, keys
-- and meaning. SqliteStore runs it at every open; it only creates what is
-- missing.
--
-- Translation notes:
--   * AUTOINCREMENT: ids are never reused, even after the newest row is
--     deleted, like MySQL's AUTO_INCREMENT (a dismissed group's id must not
--     come back as a new group's).
--   * MySQL's ENUMs become TEXT with a CHECK.
--   * TEXT compares bytes, like MySQL's utf8mb4_bin collation.
--   * WITHOUT ROWID: the two link tables are nothing but their key.

CREATE TABLE IF NOT EXISTS user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'offline' CHECK (state IN ('online', 'offline'))
);

CREATE TABLE IF NOT EXISTS friend (
    userid INTEGER NOT NULL,
    friendid INTEGER NOT NULL,
    PRIMARY KEY (userid, friendid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS allgroup (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    groupname TEXT NOT NULL UNIQUE,
    groupdesc TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS groupuser (
    groupid INTEGER NOT NULL,
    userid INTEGER NOT NULL,
    grouprole TEXT NOT NULL DEFAULT 'normal' CHECK (grouprole IN ('creator', 'normal')),
    PRIMARY KEY (groupid, userid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS groupuser_userid ON groupuser (userid);

CREATE TABLE IF NOT EXISTS offlinemessage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    userid INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offlinemessage_userid_id ON offlinemessage (userid, id);
