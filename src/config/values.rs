//! Parsing of sizes (`64KiB`), durations (`300s`) and the other
//! structured values of settings.

use std::time::Duration;

use crate::runtime::Priority;

/// Parses a byte count: a plain number, or one with a unit `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB` or `G`/`GB`/`GiB` (all binary: `1K` is 1024 bytes), any case.
///
/// # Errors
/// Text that is not such a number, or a count that overflows `usize`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 65536, 64KiB or 4MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration: a number of seconds, or a number with a unit `ms`,
/// `s`, `m`, `h` or `d`.
///
/// # Errors
/// Text that is not such a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 300, 300s, 500ms or 5m"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        other => return Err(format!("unknown duration unit {other:?}")),
    };
    Ok(d)
}

/// Parses the hashing threads' CPU priority: `idle` (the `SCHED_IDLE`
/// class) or a nice increment from 0 to 19 (`0` keeps the server's own
/// priority).
///
/// # Errors
/// Anything else.
pub fn parse_priority(text: &str) -> Result<Priority, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("idle") {
        return Ok(Priority::Idle);
    }
    match t.parse::<i32>() {
        Ok(n) if (0..=19).contains(&n) => Ok(Priority::Nice(n)),
        _ => Err(format!(
            "{text:?} is not `idle` or a nice increment from 0 to 19"
        )),
    }
}

/// TCP keepalive timers, as `--keepalive` gives them (the server hands
/// them to net's `KeepAlive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is reset.
    pub probes: u32,
}

impl Keepalive {
    /// `30s,10s,3`: a peer gone without a FIN is noticed within a minute.
    pub const DEFAULT: Keepalive = Keepalive {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(10),
        probes: 3,
    };
}

/// Parses `--keepalive`: `off` (or `0`), or `IDLE[,INTERVAL[,PROBES]]`,
/// the missing parts from [`Keepalive::DEFAULT`]. The kernel counts in
/// whole seconds, so each duration must be at least one second, and
/// `PROBES` from 1 to 127.
///
/// # Errors
/// Anything else.
pub fn parse_keepalive(text: &str) -> Result<Option<Keepalive>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t == "0" {
        return Ok(None);
    }
    let mut parts = t.split(',').map(str::trim);
    let second = |d: Duration| {
        if d >= Duration::from_secs(1) {
            Ok(d)
        } else {
            Err(format!("{d:?} is below the kernel's one second"))
        }
    };
    let mut ka = Keepalive::DEFAULT;
    ka.idle = second(parse_duration(parts.next().unwrap_or_default())?)?;
    if let Some(interval) = parts.next() {
        ka.interval = second(parse_duration(interval)?)?;
    }
    if let Some(probes) = parts.next() {
        ka.probes = match probes.parse::<u32>() {
            Ok(n) if (1..=127).contains(&n) => n,
            _ => return Err(format!("{probes:?} is not a probe count from 1 to 127")),
        };
    }
    if parts.next().is_some() {
        return Err(format!(
            "{text:?} is not `off` or IDLE[,INTERVAL[,PROBES]] such as 30s,10s,3"
        ));
    }
    Ok(Some(ka))
}
