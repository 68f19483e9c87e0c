//! The local wall-clock time, in the form the original client writes into
//! every chat message: `"YYYY-MM-DD HH:MM:SS"`.
//!
//! The C library's `localtime_r` does the time-zone work (it reads `TZ` and
//! `/etc/localtime`), so no date crate is needed for one format.

/// The current local time as `"YYYY-MM-DD HH:MM:SS"`.
///
/// Falls back to the epoch (`"1970-01-01 00:00:00"`) only if the C library
/// cannot convert the clock, which does not happen on a sane system.
pub fn now_local() -> String {
    // SAFETY: `time` with a null pointer only returns the clock; `localtime_r`
    // writes into the zero-initialised `tm` we own and returns null on error,
    // which we check. `tm` is a plain C struct for which all-zero is valid.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            tm = std::mem::zeroed();
            tm.tm_year = 70;
            tm.tm_mday = 1;
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::now_local;

    #[test]
    fn has_the_original_clients_shape() {
        let t = now_local();
        let b = t.as_bytes();
        assert_eq!(t.len(), 19, "{t}");
        for (i, c) in b.iter().enumerate() {
            match i {
                4 | 7 => assert_eq!(*c, b'-', "{t}"),
                10 => assert_eq!(*c, b' ', "{t}"),
                13 | 16 => assert_eq!(*c, b':', "{t}"),
                _ => assert!(c.is_ascii_digit(), "{t}"),
            }
        }
        assert!(t.as_str() > "2020", "{t}");
    }
}
