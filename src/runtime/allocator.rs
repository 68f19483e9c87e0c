//! The allocator setting: large blocks go straight back to the system.
//!
//! Each argon2 hash needs its whole memory cost (19 MiB by default) as one
//! 64-byte-aligned block. glibc's `malloc` raises its mmap threshold after
//! the first such block is freed and from then on carves them out of the
//! threads' heaps, where aligned chunks are poorly reused: measured here,
//! the server's memory grew by about 19 MiB per login (5.8 GB after 600
//! hashes). A fixed threshold keeps every block of 1 MiB or more in its
//! own `mmap`, returned when freed.
//!
//! The hashers now keep one working area per thread
//! ([`password`](super::password)), so after the first hash they allocate
//! nothing large; the threshold still bounds what any other large
//! allocation leaves behind, such as the area for verifying a stored hash
//! of a larger cost than the configured one.

/// Makes glibc's `malloc` serve every allocation of 1 MiB or more with its
/// own `mmap`, returned to the system when freed (see the
/// [module docs](self)). Does nothing on other C libraries.
///
/// Call it once, on the main thread, at start-up, before any other thread
/// exists: `chat-server` does so first thing in
/// [`server::run`](crate::server::run). A failure is logged; the server
/// runs on, with memory that may grow with logins.
pub fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Blocks of this many bytes or more get their own mapping.
        const MMAP_THRESHOLD: libc::c_int = 1 << 20;
        // SAFETY: mallopt only changes the allocator's tuning parameter; it
        // is called once at start-up, before any worker thread exists.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            log::warn!("mallopt(M_MMAP_THRESHOLD) failed; memory may grow with logins");
        }
    }
}
