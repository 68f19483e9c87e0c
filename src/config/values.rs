//! Parsing of sizes (`64KiB`), durations (`300s`), addresses and the other
//! structured values of settings: the `value_parser`s of
//! [`super::settings::Settings`]. Each returns a message that says what
//! was expected; the caller adds which setting and where it came from.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::runtime::Priority;

/// Parses a byte count: a plain number, or one with a unit `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB` or `G`/`GB`/`GiB` (all binary, as they always were here:
/// `1K` and `1KB` are 1024 bytes), any case; a fraction such as `1.5MiB`
/// goes to the `bytesize` crate (where `KB` is 1000, `KiB` 1024).
///
/// # Errors
/// Text that is not such a number, or a count that overflows `usize`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return parse_fractional_size(text),
    };
    let n: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 65536, 64KiB or 1.5MiB"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_fractional_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 65536, 64KiB or 1.5MiB"))?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{text:?} is too large"))
}

/// Parses a duration with the `humantime` crate (`500ms`, `1.5s`, `2m`,
/// `1h 30m`, `30d`), or a bare number of seconds as before (`300`).
///
/// # Errors
/// Text that is not such a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{text:?} is too large"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{text:?} is not a duration such as 300, 1.5s, 500ms or 5m ({e})"))
}

/// Parses a listening address: `IP:PORT`, or `HOST:PORT` resolved now
/// (`localhost:6000`), its first IPv4 address preferred.
///
/// # Errors
/// Text that is not an address, or a host name that does not resolve.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse() {
        return Ok(addr);
    }
    if !t.contains(':') {
        return Err(format!("{text:?} is not HOST:PORT such as 127.0.0.1:6000"));
    }
    let all: Vec<SocketAddr> = t
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} does not resolve: {e}"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// A value that may be switched `off` (or `0`, for durations): `--http off`,
/// `--login-takeover-grace off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrOff<T>(pub Option<T>);

fn is_off(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case("off")
}

/// An address or `off`.
///
/// # Errors
/// As [`parse_addr`].
pub fn addr_or_off(text: &str) -> Result<OrOff<SocketAddr>, String> {
    if is_off(text) {
        return Ok(OrOff(None));
    }
    parse_addr(text).map(|a| OrOff(Some(a)))
}

/// A duration, or `off`; `0` is off too.
///
/// # Errors
/// As [`parse_duration`].
pub fn duration_or_off(text: &str) -> Result<OrOff<Duration>, String> {
    if is_off(text) {
        return Ok(OrOff(None));
    }
    parse_duration(text).map(|d| OrOff((!d.is_zero()).then_some(d)))
}

/// `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
///
/// # Errors
/// Anything else.
pub fn on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{text:?} is not on or off")),
    }
}

/// A count of at least `MIN`.
///
/// # Errors
/// Not a number, or below `MIN`.
pub fn count<const MIN: usize>(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a count: {e}"))?;
    if n < MIN {
        return Err(format!("{n} is below the minimum of {MIN}"));
    }
    Ok(n)
}

/// A count of at least `MIN` that fits in a `u32`.
///
/// # Errors
/// As [`count`], or above `u32::MAX`.
pub fn count32<const MIN: usize>(text: &str) -> Result<u32, String> {
    let n = count::<MIN>(text)?;
    u32::try_from(n).map_err(|_| format!("{n} is above the maximum of {}", u32::MAX))
}

/// A size of at least `MIN` bytes.
///
/// # Errors
/// As [`parse_size`], or below `MIN`.
pub fn size<const MIN: usize>(text: &str) -> Result<usize, String> {
    let n = parse_size(text)?;
    if n < MIN {
        return Err(format!("{n} bytes is below the minimum of {MIN}"));
    }
    Ok(n)
}

/// A duration above zero (a window of zero would count nothing).
///
/// # Errors
/// As [`parse_duration`], or zero.
pub fn window(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("must be above 0".into());
    }
    Ok(d)
}

/// The log's format: `text` (env_logger's lines) or `json` (one object a
/// line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// env_logger's lines.
    Text,
    /// One JSON object a line: `ts`, `level`, `target`, `msg`.
    Json,
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
