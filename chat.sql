-- chat.sql: the MySQL/MariaDB schema of the chat server.
--
-- The server runs this very file (src/storage/mysql_store.rs includes it) when
-- it opens a MySQL database, so the two cannot drift apart. To create the
-- tables by hand instead, as with the C++ original:
--
--     mysql -u USER -p DBNAME < chat.sql
--
-- It has no CREATE DATABASE or USE, so it goes into whichever database you
-- name, and every statement is CREATE TABLE IF NOT EXISTS, so running it
-- again is harmless. (Format rules for the server's loader: comments are
-- whole lines starting with two dashes, and every statement ends with a
-- semicolon.)
--
-- Table and column names are the original's. What changed, and why:
--   * user.password is VARCHAR(255) and holds an argon2 hash in PHC form,
--     never the password itself.
--   * friend and groupuser have primary keys, so a friendship or membership
--     exists at most once. A friendship is stored in both directions.
--   * offlinemessage has an id that orders each user's messages (and lets the
--     server delete exactly the ones delivered), and a MEDIUMTEXT message so
--     that a message of any allowed size fits.
--   * Every table is InnoDB (transactions) and utf8mb4 (all of UTF-8,
--     emoji included). Names use the binary collation: "Alice" and "alice"
--     are different users, as in the SQLite store.
--
-- The server's own limits (src/protocol/request.rs) keep names within these
-- column sizes: user names and group names up to 50 characters, group
-- descriptions up to 200.

CREATE TABLE IF NOT EXISTS user (
    id INT NOT NULL AUTO_INCREMENT,
    name VARCHAR(50) NOT NULL,
    password VARCHAR(255) NOT NULL,
    state ENUM('online', 'offline') NOT NULL DEFAULT 'offline',
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
