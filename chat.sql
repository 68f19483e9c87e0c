-- chat.sql: the MySQL/MariaDB schema of the chat server.
--
-- The server runs this very file (src/storage/mysql_store.rs includes it) when
-- it opens a MySQL database, so the two cannot drift apart. To create the
-- tables by hand instead, as with the C++ original:
--
--     mysql -u USER -p DBNAME < chat.sql
--
-- It has no CREATE DATABASE or USE, so it goes into whichever database you
-- name, and every statement is CREATE TABLE IF NOT EXISTS (or, the last one,
-- an insert of what is missing), so running it again is harmless. (Format rules for the server's loader: comments are
-- whole lines starting with two dashes, and every statement ends with a
-- semicolon.)
--
-- Table and column names are the original's. What changed, and why:
--   * user.password is VARCHAR(255) and holds an argon2 hash in PHC form,
--     never the password itself.
--   * friend and groupuser have primary keys, so a friendship or membership
--     exists at most once. A friendship is stored in both directions.
--   * offlinemessage (legacy: older versions wrote offline messages there; the
--     server still delivers and deletes such rows, and writes none) has an id that orders each user's messages (and lets the
--     server delete exactly the ones delivered), and a MEDIUMTEXT message so
--     that a message of any allowed size fits.
--   * Every table is InnoDB (transactions) and utf8mb4 (all of UTF-8,
--     emoji included). Names use the binary collation: "Alice" and "alice"
--     are different users, as in the SQLite store.
--
--
-- The message log (src/storage/log.rs explains it):
--   * conversation: one row per conversation with a message; id is the
--     conversation's key (a group's id, or low << 32 | high for two users);
--     last_seq is the only sequence counter (never lowered, not even by
--     pruning), raised with the row locked until commit, so numbers are
--     gapless and unique across nodes; last_ts is the newest message's time.
--   * chatlog: the messages, clustered by (conv, seq), so a page of one
--     conversation is one range; the unique (sender, cid) key makes a
--     client's retry (on any node) find the original; body is the message as
--     delivered, without conv, seq and ts. The ts key serves the retention
--     pruner: time only grows, so it is appended at its right edge.
--   * convcursor (cursor is a reserved word): one row per participant of a
--     conversation, with the delivery, read and join positions; the conv key
--     serves dismissing a group.
--   * The last statement gives every existing group member a cursor row
--     (joined_seq 0) if missing: an older database gains the log when the
--     server first opens it.
--
-- The server's own limits (src/protocol/request.rs) keep names within these
-- column sizes: user names and group names up to 50 characters, group
-- descriptions up to 200.

CREATE TABLE IF NOT EXISTS user (
    id INT NOT NULL AUTO_INCREMENT,
    name VARCHAR(50) NOT NULL,
    password VARCHAR(255) NOT NULL,
    state ENUM('online', 'offline') NOT NULL DEFAULT 'offline',
    -- Resume tokens carry it; a password change or a revoking logout moves
    -- it on. The server adds it to an older table at start.
    token_gen BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per direction: (a, b) and (b, a).
CREATE TABLE IF NOT EXISTS friend (
    userid INT NOT NULL,
    friendid INT NOT NULL,
    PRIMARY KEY (userid, friendid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS allgroup (
    id INT NOT NULL AUTO_INCREMENT,
    groupname VARCHAR(50) NOT NULL,
    groupdesc VARCHAR(200) NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    UNIQUE KEY groupname (groupname)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The key on userid serves "which groups is this user in".
CREATE TABLE IF NOT EXISTS groupuser (
    groupid INT NOT NULL,
    userid INT NOT NULL,
    grouprole ENUM('creator', 'normal') NOT NULL DEFAULT 'normal',
    PRIMARY KEY (groupid, userid),
    KEY userid (userid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- message is the JSON text delivered at the recipient's next login.
CREATE TABLE IF NOT EXISTS offlinemessage (
    id BIGINT NOT NULL AUTO_INCREMENT,
    userid INT NOT NULL,
    message MEDIUMTEXT NOT NULL,
    PRIMARY KEY (id),
    KEY userid_id (userid, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per conversation that has a message; see the header.
CREATE TABLE IF NOT EXISTS conversation (
    id BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The message log; see the header.
CREATE TABLE IF NOT EXISTS chatlog (
    conv BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    sender INT NOT NULL,
    ts BIGINT NOT NULL,
    cid VARCHAR(64) NULL,
    body MEDIUMTEXT NOT NULL,
    PRIMARY KEY (conv, seq),
    UNIQUE KEY sender_cid (sender, cid),
    KEY ts (ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A participant's positions in a conversation; see the header.
CREATE TABLE IF NOT EXISTS convcursor (
    userid INT NOT NULL,
    conv BIGINT NOT NULL,
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    read_seq BIGINT NOT NULL DEFAULT 0,
    joined_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (userid, conv),
    KEY conv (conv)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Migration: a cursor row for every group member that has none.
INSERT INTO convcursor (userid, conv) SELECT userid, groupid FROM groupuser
    ON DUPLICATE KEY UPDATE convcursor.userid = convcursor.userid;
