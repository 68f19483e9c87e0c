//! `PasswordHasher`: argon2id, run on the hashing threads (never on an I/O
//! thread), in working memory each thread keeps.
//!
//! The original stored and compared passwords in plain text. Here the store
//! holds PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`): the
//! parameters travel with each hash, so hashes made with other costs (an
//! older configuration, or the small costs the tests use) still verify.
//!
//! Hashing is deliberately slow (tens of milliseconds at the default cost),
//! which is why it never runs on an I/O thread. Where it runs instead, and
//! how that is kept from slowing the chat, is the [runtime](super)'s
//! subject; this module's share is the working memory.
//!
//! # Working memory
//!
//! argon2id's cost is mostly memory: 19 MiB at the default, written and
//! read back in a data-dependent order. Left to itself the `argon2` crate
//! allocates those 19 MiB for every hash and frees them afterwards, which
//! costs about 4,900 page faults (each a zeroed 4 KiB page) and, on
//! `munmap`, a TLB flush that interrupts every core running one of the
//! server's threads, the I/O threads included. Here each hashing thread
//! keeps one working area and reuses it (`with_blocks`), so after the
//! first hash no memory is mapped or unmapped at all. The contents need
//! no clearing between hashes: argon2 writes every block before it reads
//! it.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// Hashes new passwords with fixed argon2id costs and verifies any argon2
/// hash. Cheap to clone and `Send + Sync`: the service keeps one and every
/// hashing thread uses it.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash of nothing in particular, made on first use, to verify
    /// against when the account does not exist (see [`Self::verify_nothing`]).
    dummy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    /// A hasher with `memory_kib` KiB of memory and `passes` passes per hash,
    /// one lane. Any thread: it only checks the costs.
    ///
    /// # Errors
    /// Costs argon2 does not accept (memory below 8 KiB, zero passes).
    pub fn new(memory_kib: u32, passes: u32) -> Result<PasswordHasher, String> {
        let params = Params::new(memory_kib, passes, 1, None).map_err(|e| e.to_string())?;
        Ok(PasswordHasher {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            dummy: Arc::new(OnceLock::new()),
        })
    }

    /// The PHC string of `password` with a fresh random salt. Hashing
    /// threads only: it takes the full cost of a hash.
    ///
    /// # Errors
    /// If the system's random source fails.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let mut salt_bytes = [0u8; 16];
        fill_random(&mut salt_bytes)?;
        // Base64 for the PHC string only; argon2 takes the raw bytes.
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        let params = self.argon2.params();
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = compute(&self.argon2, password, &salt_bytes, len)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// `true` when `password` matches the stored `hash`. A malformed stored
    /// hash never matches. Hashing threads only, like [`hash`](Self::hash).
    ///
    /// A [legacy credential](legacy_credential) is compared in constant
    /// time; when it does not match, the time of a verification is spent
    /// anyway ([`verify_nothing`](Self::verify_nothing)), so that a wrong
    /// password takes as long for an imported account as for any other.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        if let Some(plain) = hash.strip_prefix(LEGACY_PREFIX) {
            let matches = constant_time_eq(password.as_bytes(), plain.as_bytes());
            if !matches {
                self.verify_nothing(password);
            }
            return matches;
        }
        match verify_phc(password, hash) {
            Ok(matches) => matches,
            Err(e) => {
                log::error!("a stored password hash does not parse: {e}");
                false
            }
        }
    }
}

/// What marks a stored password as the C++ original's plain text, imported
/// by `chat-server migrate-legacy` ([`crate::storage::legacy`]): no PHC
/// string starts with it. The login that verifies it replaces it with a
/// hash ([`is_legacy`]).
pub const LEGACY_PREFIX: &str = "$legacy-plain$";

/// The stored form of an imported plain-text password.
pub fn legacy_credential(password: &str) -> String {
    format!("{LEGACY_PREFIX}{password}")
}

/// `true` when `stored` is a [legacy credential](legacy_credential): the
/// next successful login hashes the password and stores the hash instead.
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with(LEGACY_PREFIX)
}

/// Equality of `a` and `b` in a time that depends on their lengths only,
/// not on where they first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Recomputes the hash of `password` with the algorithm, version, costs and
/// salt written in `phc`, and compares the outputs in constant time.
fn verify_phc(password: &str, phc: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err("no salt or no hash".into());
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = compute(&argon2, password, salt_bytes, expected.len())?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// One argon2 hash of `len` bytes, in this thread's working memory.
fn compute(argon2: &Argon2<'_>, password: &str, salt: &[u8], len: usize) -> Result<Output, String> {
    let blocks = argon2.params().block_count();
    with_blocks(blocks, |memory| {
        Output::init_with(len, |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|e| e.to_string())
    })
}

thread_local! {
    /// This thread's argon2 working memory (see the module documentation).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The working memory of the largest hash configured here; a stored hash
/// of a larger cost is computed in a larger area, given back afterwards.
const KEEP_BLOCKS_UP_TO: usize = 64 * 1024; // 64 MiB of 1 KiB blocks

/// Runs `f` with `count` blocks of this thread's reusable working memory.
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        let result = f(&mut blocks[..count]);
        if blocks.len() > KEEP_BLOCKS_UP_TO {
            *blocks = Vec::new();
        }
        result
    })
}

impl PasswordHasher {
    /// Spends the time of a verification when there is no account to
    /// verify against, so that "no such account" and "wrong password" take
    /// as long as each other and response times do not reveal which
    /// account names exist. Hashing threads only.
    pub fn verify_nothing(&self, password: &str) {
        let dummy = self.dummy.get_or_init(|| {
            self.hash("no account has this password")
                .unwrap_or_default()
        });
        if !dummy.is_empty() {
            let _ = self.verify(password, dummy);
        }
    }
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`).
fn fill_random(buf: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable slice `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("getrandom: {err}"));
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = PasswordHasher::new(64, 1).unwrap();
        let hash = h.hash("pässword").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(h.verify("pässword", &hash));
        assert!(!h.verify("password", &hash));
        assert!(!h.verify("pässword", "plain text"));
        assert_ne!(hash, h.hash("pässword").unwrap(), "salted");
        // A hasher with other costs verifies it too: the costs are in the hash.
        assert!(PasswordHasher::new(128, 2)
            .unwrap()
            .verify("pässword", &hash));
    }

    /// An imported plain-text password matches exactly (not a prefix, not
    /// an extension), and is recognised as legacy; a hash is not.
    #[test]
    fn legacy_credentials_compare_exactly() {
        let h = PasswordHasher::new(64, 1).unwrap();
        let stored = legacy_credential("123456");
        assert!(is_legacy(&stored));
        assert!(h.verify("123456", &stored));
        for wrong in ["12345", "1234567", "", "123457", "$legacy-plain$123456"] {
            assert!(!h.verify(wrong, &stored), "{wrong}");
        }
        assert!(h.verify("", &legacy_credential("")));
        let hash = h.hash("123456").unwrap();
        assert!(!is_legacy(&hash));
        assert!(
            !h.verify("123456", "123456"),
            "bare plain text never matches"
        );
    }

    /// Our hand-built PHC strings and the `argon2` crate's own agree both
    /// ways, and the reused working memory gives the same answer whatever
    /// size the previous hash on this thread left it.
    #[test]
    fn agrees_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = PasswordHasher::new(256, 2).unwrap();
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 2, 1, None).unwrap(),
        );
        let hash = ours.hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(theirs.verify_password(b"correct horse", &parsed).is_ok());
        assert!(theirs.verify_password(b"wrong horse", &parsed).is_err());

        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let made_by_crate = theirs
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        // A larger hash first, so the smaller one runs in used memory.
        assert!(PasswordHasher::new(1024, 1).unwrap().hash("x").is_ok());
        assert!(ours.verify("battery staple", &made_by_crate));
        assert!(!ours.verify("battery stapler", &made_by_crate));
        // An argon2i hash (another algorithm in the PHC string) verifies too.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(64, 3, 1, None).unwrap(),
        );
        let hash_i = argon2i.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(ours.verify("pw", &hash_i));
        assert!(!ours.verify("pW", &hash_i));
    }
}
