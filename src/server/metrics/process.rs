//! The process's own figures for `/metrics`, read from `/proc/self`
//! (Linux) by the sampler thread, never by an I/O thread.

/// RSS bytes, CPU microseconds (user + system) and open descriptors, from
/// `/proc/self` (Linux); `None` elsewhere or when unreadable.
pub(super) fn process_sample() -> Option<(u64, u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let (page, tick) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let page = u64::try_from(page).ok()?;
    let tick = u64::try_from(tick).ok().filter(|t| *t > 0)?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some((rss_pages * page, (utime + stime) * 1_000_000 / tick, fds))
}
