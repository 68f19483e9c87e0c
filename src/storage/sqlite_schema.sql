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
--   * WITHOUT ROWID: the two link tables and the cursors are nothing but
--     their key (or little more), stored in its order.
--   * chatlog is the exception: a rowid table, so its rows are stored in the
--     order they were appended (time order), and (conv, seq) is a unique
--     index beside it. A batch of the 1,000-user benchmark touches hundreds
--     of conversations; stored in (conv, seq) order, each message landed in
--     its own conversation's leaf page and split it every few messages.
--     Appended, the rows fill consecutive pages and only the small index
--     entries scatter. With examples/log_bytes.rs (200,000 messages, 500
--     conversations per batch): 13.6 write calls per message in the keyed
--     layout with 1 KiB pages, 2.2 appended with 4 KiB pages, 1.1 once the
--     insert no longer needs a statement journal (sqlite_store.rs,
--     insert_entries). A sync reads the index range, then the rows by id.
--   * The (sender, cid) key is a partial index (WHERE cid IS NOT NULL):
--     messages without a client id cost no entry in it. MySQL's unique key
--     allows any number of NULLs, so the meaning is the same.
--
-- The message log (see src/storage/log.rs):
--   * conversation: one row per conversation with a message; last_seq is the
--     only sequence counter (never lowered, not even by pruning), last_ts the
--     newest message's time.
--   * chatlog: the messages, unique by (conv, seq); body is the JSON object as
--     delivered, without conv/seq/ts. `id` is the append order and nothing
--     else: it never leaves the store. (A database made with the earlier
--     layout, keyed by (conv, seq) WITHOUT ROWID, is copied into this one
--     at its first open: SqliteStore's migrate_chatlog.)
--   * convcursor: one row per participant of a conversation: delivery, read
--     and join positions. Indexed by conv too, for dismissing a group.
--   * chatlog_ts serves the retention pruner ("oldest first"). Its cost,
--     measured with examples/log_bytes.rs (docs/benchmarks.md, "Message log:
--     bytes on disk"): 24 bytes per message and no append time we could tell
--     from the noise, because time only grows, so it is appended at its
--     right edge (a page or two per commit). Pruning without it would mean
--     scanning every conversation's oldest entries, and keeping a resume
--     point between runs.
--   * offlinemessage is the legacy offline store: rows written by older
--     versions are still delivered (and deleted) at login; nothing new is
--     written there.
--
-- Migration: every statement creates only what is missing, and the last one
-- gives every existing group member a cursor row (joined_seq 0) if missing,
-- so an older database gains the log at its first open.

CREATE TABLE IF NOT EXISTS user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'offline' CHECK (state IN ('online', 'offline')),
    -- Resume tokens carry it; a password change or a revoking logout moves
    -- it on. Added to older databases at open (migrate_token_gen).
    token_gen INTEGER NOT NULL DEFAULT 0
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

CREATE TABLE IF NOT EXISTS conversation (
    id INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    last_ts INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS chatlog (
    id INTEGER PRIMARY KEY,
    conv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sender INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    cid TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS chatlog_conv_seq ON chatlog (conv, seq);
CREATE UNIQUE INDEX IF NOT EXISTS chatlog_sender_cid ON chatlog (sender, cid)
    WHERE cid IS NOT NULL;
CREATE INDEX IF NOT EXISTS chatlog_ts ON chatlog (ts);

CREATE TABLE IF NOT EXISTS convcursor (
    userid INTEGER NOT NULL,
    conv INTEGER NOT NULL,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    read_seq INTEGER NOT NULL DEFAULT 0,
    joined_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (userid, conv)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS convcursor_conv ON convcursor (conv);

INSERT OR IGNORE INTO convcursor (userid, conv) SELECT userid, groupid FROM groupuser;
