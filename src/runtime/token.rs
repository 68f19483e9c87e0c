//! Resume tokens: a login hands one out, and a later login may show it
//! instead of the password.
//!
//! A token is `base64url(body ‖ mac)`, no padding, where `body` is 25 bytes:
//!
//! ```text
//! +---------+-----------+------------------+-------------------+
//! | version | uid (i64) | generation (i64) | expiry (u64, s)   |
//! |  1 byte |  8 bytes  |     8 bytes      | 8 bytes, Unix time|
//! +---------+-----------+------------------+-------------------+
//! ```
//!
//! all big-endian, and `mac` is HMAC-SHA256 of `body` under the server's
//! 32-byte key ([`TokenKey`]). The token is opaque to clients; they store it
//! and send it back. Checking it ([`TokenKey::verify`]) is one HMAC over 25
//! bytes, and the MAC is compared in constant time. What it cannot check
//! alone is the *generation*: the account's counter, moved on by a password
//! change or a revoking logout, which the service reads from the store (on
//! a worker) and compares with the token's.
//!
//! # The key file
//!
//! [`TokenKey::load_or_create`] reads the key from a file, or creates the
//! file (mode 0600, 32 random bytes from the OS) when it does not exist. A
//! token signed with another key fails verification like a tampered one.
//! Every node of a cluster must read the same file.
//!
//! # Threads
//!
//! A [`TokenKey`] is immutable and `Sync`: issue and verify on any thread.
//! Loading the key does file I/O: at start only.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signing key.
pub const KEY_BYTES: usize = 32;
const VERSION: u8 = 1;
const BODY_BYTES: usize = 25;
const MAC_BYTES: usize = 32;
/// The length of a token's text: base64 of 57 bytes, without padding.
pub const TOKEN_CHARS: usize = ((BODY_BYTES + MAC_BYTES) * 4).div_ceil(3);

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// The account.
    pub uid: i64,
    /// The account's token generation when the token was issued.
    pub generation: i64,
}

/// The key that signs and checks tokens, and how long a token lasts.
pub struct TokenKey {
    key: [u8; KEY_BYTES],
    ttl: Duration,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TokenKey").field("ttl", &self.ttl).finish()
    }
}

impl TokenKey {
    /// A key from its bytes; tokens it issues last `ttl`.
    pub fn new(key: [u8; KEY_BYTES], ttl: Duration) -> TokenKey {
        TokenKey { key, ttl }
    }

    /// Reads the key from `path`, or creates the file with a fresh random
    /// key (mode 0600) when there is none.
    ///
    /// # Errors
    /// The file cannot be read or created, or does not hold exactly
    /// [`KEY_BYTES`] bytes.
    pub fn load_or_create(path: &Path, ttl: Duration) -> io::Result<TokenKey> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match create_key_file(path) {
                Ok(key) => key.to_vec(),
                // Another process (a node started beside this one on the
                // same folder) made it first: theirs is the key.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::read(path)?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: a token key file holds {KEY_BYTES} bytes, not {}",
                    path.display(),
                    bytes.len()
                ),
            )
        })?;
        Ok(TokenKey::new(key, ttl))
    }

    /// A token for `uid` at `generation`, valid for the key's ttl from now.
    pub fn issue(&self, uid: i64, generation: i64) -> String {
        let expiry = unix_now().saturating_add(self.ttl.as_secs());
        self.issue_until(uid, generation, expiry)
    }

    /// A token valid until `expiry` (seconds since the Unix epoch).
    pub fn issue_until(&self, uid: i64, generation: i64, expiry: u64) -> String {
        let mut bytes = Vec::with_capacity(BODY_BYTES + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&uid.to_be_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(&expiry.to_be_bytes());
        let mac = self.mac(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The claims of `token` when its MAC is this key's and it has not
    /// expired; `None` for anything else (garbage, another key, tampered,
    /// expired). Does not look at the account's current generation.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (body, mac) = bytes.split_at_checked(BODY_BYTES)?;
        // `verify_slice` compares in constant time.
        self.mac(body).verify_slice(mac).ok()?;
        let (&version, rest) = body.split_first()?;
        if version != VERSION {
            return None;
        }
        let field = |i: usize| -> Option<[u8; 8]> { rest.get(i * 8..i * 8 + 8)?.try_into().ok() };
        let uid = i64::from_be_bytes(field(0)?);
        let generation = i64::from_be_bytes(field(1)?);
        let expiry = u64::from_be_bytes(field(2)?);
        (expiry > unix_now()).then_some(Claims { uid, generation })
    }

    fn mac(&self, body: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(body);
        mac
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creates `path` (not replacing one that appeared meanwhile) with mode
/// 0600 and a random key: written whole to a file of its own first, then
/// linked to `path`, so that a process which finds `path` never reads a
/// key half written. `AlreadyExists` when `path` appeared meanwhile.
fn create_key_file(path: &Path) -> io::Result<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::getrandom(&mut key).map_err(io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A name of this process and call alone (never derived from the key).
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(format!(".new.{}.{call}", std::process::id()));
    let fresh = PathBuf::from(fresh);
    let linked = write_new(&fresh, &key).and_then(|()| std::fs::hard_link(&fresh, path));
    let _ = std::fs::remove_file(&fresh);
    linked.map(|()| key)
}

/// Writes `key` to the new file `path` (mode 0600) and syncs it.
fn write_new(path: &Path, key: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_creating_one_key_file_at_once_share_one_key() {
        let dir = std::env::temp_dir().join(format!("chat_key_{}", std::process::id()));
        let path = dir.join("keys/token.key");
        let keys: Vec<[u8; KEY_BYTES]> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| s.spawn(|| TokenKey::load_or_create(&path, Duration::from_secs(60))))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap().unwrap().key)
                .collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(std::fs::read(&path).unwrap(), keys[0]);
        // Nothing but the key is left in the folder.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn key(byte: u8) -> TokenKey {
        TokenKey::new([byte; KEY_BYTES], Duration::from_secs(60))
    }

    #[test]
    fn a_token_names_its_account_and_generation() {
        let token = key(1).issue(42, 7);
        assert_eq!(token.len(), TOKEN_CHARS);
        assert_eq!(
            key(1).verify(&token),
            Some(Claims {
                uid: 42,
                generation: 7
            })
        );
    }

    #[test]
    fn another_key_tampering_expiry_and_garbage_fail() {
        let token = key(1).issue(42, 7);
        assert_eq!(key(2).verify(&token), None);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(bytes).unwrap_or_default();
            assert_eq!(key(1).verify(&flipped), None, "byte {i} flipped");
        }
        assert_eq!(key(1).verify(&key(1).issue_until(42, 7, unix_now())), None);
        assert_eq!(key(1).verify(""), None);
        assert_eq!(key(1).verify(&"é".repeat(TOKEN_CHARS / 2)), None);
        assert_eq!(key(1).verify(&"!".repeat(TOKEN_CHARS)), None);
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("chat-token-key-{}", std::process::id()));
        let path = dir.join("sub").join("token.key");
        let _ = std::fs::remove_dir_all(&dir);
        let first = TokenKey::load_or_create(&path, Duration::from_secs(60))?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = TokenKey::load_or_create(&path, Duration::from_secs(60))?;
        assert_eq!(again.verify(&first.issue(1, 0)).map(|c| c.uid), Some(1));
        std::fs::write(&path, b"short")?;
        assert!(TokenKey::load_or_create(&path, Duration::from_secs(60)).is_err());
        std::fs::remove_dir_all(&dir)
    }
}
