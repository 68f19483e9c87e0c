//! Password hashing with argon2id, run on the hashing threads (never on an I/O thread).
//!
//! The original stored and compared passwords in plain text. Here the store
//! holds PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`): the
//! parameters travel with each hash, so hashes made with other costs (an
//! older configuration, or the small costs the tests use) still verify.
//!
//! Hashing is deliberately slow (tens of milliseconds at the default cost),
//! which is why it never runs on an I/O thread.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};

/// Hashes new passwords with fixed argon2id costs and verifies any argon2 hash.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash of nothing in particular, made on first use, to verify
    /// against when the account does not exist (see [`Self::verify_nothing`]).
    dummy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    /// A hasher with `memory_kib` KiB of memory and `passes` passes per hash,
    /// one lane.
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

    /// The PHC string of `password` with a fresh random salt.
    ///
    /// # Errors
    /// If the system's random source fails.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    /// `true` when `password` matches the stored `hash`. A malformed stored
    /// hash never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        match PasswordHash::new(hash) {
            Ok(parsed) => self
                .argon2
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(e) => {
                log::error!("a stored password hash does not parse: {e}");
                false
            }
        }
    }
}

impl PasswordHasher {
    /// Spends the time of a verification when there is no account to
    /// verify against, so that "no such account" and "wrong password" take
    /// as long as each other and response times do not reveal which
    /// account names exist.
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
}
