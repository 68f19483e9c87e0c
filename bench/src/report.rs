//! The result of a run: a readable table, and one JSON object whose fields
//! are named for what they count.
//!
//! Fields that do not apply to a scenario are left out of the JSON (a
//! `register` run has no `lost`; a run without `--server-pid` has no memory
//! figures). `latency_us` is the scenario's main latency: request latency
//! for `register` and `login`, connect time for `connect`, delivery latency
//! for `chat` and `mixed`, fan-out latency for `group`.

use crate::histogram::Summary;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything a run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Scenario name (`"setup"` for `--setup-only`).
    pub scenario: String,
    /// Users (connections) in the run.
    pub users: usize,
    /// Client threads.
    pub threads: usize,
    /// Whether `--legacy` was on.
    pub legacy: bool,
    /// Name prefix of the accounts.
    pub prefix: String,
    /// Why the run failed, if it did (the exit status is then 1).
    pub failed: Option<String>,
    /// Seconds spent setting up (connect, register, login, groups).
    pub setup_secs: f64,
    /// Seconds of the measured phase.
    pub elapsed_secs: f64,
    /// Operations completed in the measured phase (connects, accounts, logins).
    pub ops: Option<u64>,
    /// Operations that failed in the measured phase.
    pub op_failures: Option<u64>,
    /// Connections open at the end.
    pub connected: Option<u64>,
    /// Connections the server closed.
    pub closed: u64,
    /// Chat messages sent.
    pub sent: Option<u64>,
    /// Deliveries owed (sent times recipients).
    pub expected: Option<u64>,
    /// Distinct deliveries that arrived.
    pub delivered: Option<u64>,
    /// Of those, how many came inside a login ack.
    pub offline_delivered: Option<u64>,
    /// Owed deliveries that never arrived.
    pub lost: Option<u64>,
    /// Deliveries of a message that had already arrived.
    pub duplicated: Option<u64>,
    /// Deliveries after a later message of the same stream.
    pub reordered: Option<u64>,
    /// Deliveries nobody owed (for example back to the sender).
    pub unexpected: Option<u64>,
    /// Chat messages left over from another run.
    pub stale: Option<u64>,
    /// Main latency (see the module docs), microseconds.
    pub latency_us: Option<Summary>,
    /// Group fan-out latency in `mixed`, microseconds.
    pub group_latency_us: Option<Summary>,
    /// `--cid`: messages the server acked as stored.
    pub acked: Option<u64>,
    /// `--cid`: messages the server refused (SEND_ACK with an errno).
    pub ack_failed: Option<u64>,
    /// `--cid`: messages sent whose SEND_ACK never came.
    pub unacked: Option<u64>,
    /// `--cid`: send→SEND_ACK latency, microseconds.
    pub ack_latency_us: Option<Summary>,
    /// `sync`: pages fetched.
    pub pages: Option<u64>,
    /// `sync`: messages fetched.
    pub fetched: Option<u64>,
    /// `reconnect`: deliveries that came by a catch-up SYNC.
    pub synced: Option<u64>,
    /// `reconnect`: messages a catch-up fetched although already received.
    pub refetched: Option<u64>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Actions by name (`mixed`).
    pub actions: BTreeMap<String, u64>,
    /// Server memory before the run, KiB.
    pub server_rss_kib_before: Option<u64>,
    /// Server memory at the end of the measured phase, KiB.
    pub server_rss_kib_after: Option<u64>,
    /// Server CPU seconds during the measured phase.
    pub server_cpu_secs: Option<f64>,
    /// Where `--setup-only` saved the setup.
    pub state_file: Option<String>,
    /// `soak`: restarts, memory, the final checks.
    pub soak: Option<SoakReport>,
    /// `mixed` (open loop): the actions a second asked for (`--users` ×
    /// `--rate`).
    pub offered_per_sec: Option<f64>,
    /// `mixed`: the actions a second carried out while sending.
    pub achieved_per_sec: Option<f64>,
    /// `mixed`: how late actions started after their scheduled moment,
    /// microseconds.
    pub send_lag_us: Option<Summary>,
    /// Things that make the figures doubtful without failing the run
    /// (the generator fell behind), one sentence each.
    pub warnings: Vec<String>,
}

/// What the `soak` scenario adds to the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SoakReport {
    /// Kills with SIGKILL, each followed by a restart.
    pub restarts: u64,
    /// The longest time from a kill until the new server listened, in ms.
    pub restart_down_ms_max: u64,
    /// The server's `VmRSS` over time: (seconds since traffic began, KiB).
    pub rss_kib: Vec<(f64, u64)>,
    /// Whether memory stayed flat; `None`: too few samples to tell.
    pub rss_flat: Option<bool>,
    /// The comparisons behind `rss_flat`.
    pub rss_details: Vec<String>,
    /// Acked messages found at a second seq (the receiver would show them
    /// twice).
    pub doubled: u64,
    /// Seqs below a conversation's `last_seq` the final catch-up could not
    /// fetch.
    pub gaps: u64,
    /// Logins with a wrong password that succeeded.
    pub wrong_password_accepted: u64,
    /// Users that never finished the final catch-up (the run's deadline
    /// came first): what they were owed is `unchecked`, not `lost`.
    pub unverified: u64,
    /// Acked messages owed to the `unverified` users and not seen by them.
    pub unchecked: u64,
    /// Final logins (after every connection was reset): succeeded.
    pub final_logins: u64,
    /// Final logins refused with errno 2: the account stuck online.
    pub stuck_online: u64,
    /// The exit code of the server's last, graceful stop (`None`: it had to
    /// be killed, or was not running).
    pub server_exit: Option<i32>,
    /// Every check that failed, one line each.
    pub violations: Vec<String>,
}

impl SoakReport {
    fn to_json(&self) -> Value {
        json!({
            "restarts": self.restarts,
            "restart_down_ms_max": self.restart_down_ms_max,
            "rss_kib": self.rss_kib.iter().map(|&(t, k)| json!([round(t), k])).collect::<Vec<_>>(),
            "rss_flat": self.rss_flat,
            "rss_details": self.rss_details,
            "doubled": self.doubled,
            "gaps": self.gaps,
            "wrong_password_accepted": self.wrong_password_accepted,
            "unverified": self.unverified,
            "unchecked": self.unchecked,
            "final_logins": self.final_logins,
            "stuck_online": self.stuck_online,
            "server_exit": self.server_exit,
            "violations": self.violations,
        })
    }

    /// Table rows: the counts, the memory series (at most 30 points), the
    /// verdicts and the violations.
    fn rows(&self, rows: &mut Vec<(String, String)>) {
        let mut put = |k: &str, v: String| rows.push((k.to_string(), v));
        put("restarts", self.restarts.to_string());
        put("restart_down_ms_max", self.restart_down_ms_max.to_string());
        for (k, v) in [
            ("doubled", self.doubled),
            ("gaps", self.gaps),
            ("wrong_password_accepted", self.wrong_password_accepted),
            ("unverified", self.unverified),
            ("unchecked", self.unchecked),
            ("final_logins", self.final_logins),
            ("stuck_online", self.stuck_online),
        ] {
            put(k, v.to_string());
        }
        put(
            "server_exit",
            self.server_exit.map_or("killed".into(), |c| c.to_string()),
        );
        let step = self.rss_kib.len().div_ceil(30).max(1);
        let series: Vec<String> = self
            .rss_kib
            .iter()
            .step_by(step)
            .map(|(t, k)| format!("{t:.0}s:{k}"))
            .collect();
        put("rss_kib (t:KiB)", series.join(" "));
        let verdict = match self.rss_flat {
            Some(true) => "flat",
            Some(false) => "GREW",
            None => "too few samples",
        };
        put("rss_verdict", verdict.into());
        for d in &self.rss_details {
            put("  rss", d.clone());
        }
        for v in &self.violations {
            put("  VIOLATION", v.clone());
        }
    }
}

impl Report {
    /// Operations per second in the measured phase.
    pub fn ops_per_sec(&self) -> Option<f64> {
        self.ops.map(|n| per_sec(n, self.elapsed_secs))
    }

    /// Deliveries per second in the measured phase.
    pub fn delivered_per_sec(&self) -> Option<f64> {
        self.delivered.map(|n| per_sec(n, self.elapsed_secs))
    }

    /// Growth of server memory per open connection, bytes.
    pub fn server_bytes_per_conn(&self) -> Option<f64> {
        let (before, after) = (self.server_rss_kib_before?, self.server_rss_kib_after?);
        let conns = self.connected.filter(|&n| n > 0)?;
        Some((after as f64 - before as f64) * 1024.0 / conns as f64)
    }

    /// Server CPU microseconds per delivered message.
    pub fn server_cpu_us_per_msg(&self) -> Option<f64> {
        let delivered = self.delivered.filter(|&n| n > 0)?;
        Some(self.server_cpu_secs? * 1e6 / delivered as f64)
    }

    /// `sync`: messages fetched per second.
    pub fn fetched_per_sec(&self) -> Option<f64> {
        self.fetched.map(|n| per_sec(n, self.elapsed_secs))
    }

    /// `sync`: pages fetched per second.
    pub fn pages_per_sec(&self) -> Option<f64> {
        self.pages.map(|n| per_sec(n, self.elapsed_secs))
    }

    /// Total errors of all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        };
        put("scenario", json!(self.scenario));
        put("ok", json!(self.failed.is_none()));
        put("failed", json!(self.failed));
        put("users", json!(self.users));
        put("threads", json!(self.threads));
        put("legacy", json!(self.legacy));
        put("prefix", json!(self.prefix));
        put("setup_secs", json!(round(self.setup_secs)));
        put("elapsed_secs", json!(round(self.elapsed_secs)));
        put("ops", json!(self.ops));
        put("ops_per_sec", json!(self.ops_per_sec().map(round)));
        put("op_failures", json!(self.op_failures));
        put("connected", json!(self.connected));
        put("closed", json!(self.closed));
        put("sent", json!(self.sent));
        put("expected", json!(self.expected));
        put("delivered", json!(self.delivered));
        put(
            "delivered_per_sec",
            json!(self.delivered_per_sec().map(round)),
        );
        put("offline_delivered", json!(self.offline_delivered));
        put("lost", json!(self.lost));
        put("duplicated", json!(self.duplicated));
        put("reordered", json!(self.reordered));
        put("unexpected", json!(self.unexpected));
        put("stale", json!(self.stale));
        put(
            "latency_us",
            self.latency_us.map_or(Value::Null, |s| s.to_json()),
        );
        put(
            "group_latency_us",
            self.group_latency_us.map_or(Value::Null, |s| s.to_json()),
        );
        put("acked", json!(self.acked));
        put("ack_failed", json!(self.ack_failed));
        put("unacked", json!(self.unacked));
        put(
            "ack_latency_us",
            self.ack_latency_us.map_or(Value::Null, |s| s.to_json()),
        );
        put("synced", json!(self.synced));
        put("refetched", json!(self.refetched));
        put("pages", json!(self.pages));
        put("pages_per_sec", json!(self.pages_per_sec().map(round)));
        put("fetched", json!(self.fetched));
        put("fetched_per_sec", json!(self.fetched_per_sec().map(round)));
        put("errors", json!(self.error_count()));
        put("error_kinds", json!(self.errors));
        if !self.actions.is_empty() {
            put("actions", json!(self.actions));
        }
        put("server_rss_kib_before", json!(self.server_rss_kib_before));
        put("server_rss_kib_after", json!(self.server_rss_kib_after));
        put(
            "server_bytes_per_conn",
            json!(self.server_bytes_per_conn().map(round)),
        );
        put("server_cpu_secs", json!(self.server_cpu_secs.map(round)));
        put(
            "server_cpu_us_per_msg",
            json!(self.server_cpu_us_per_msg().map(round)),
        );
        put("offered_per_sec", json!(self.offered_per_sec.map(round)));
        put("achieved_per_sec", json!(self.achieved_per_sec.map(round)));
        put(
            "send_lag_us",
            self.send_lag_us.map_or(Value::Null, |s| s.to_json()),
        );
        if !self.warnings.is_empty() {
            put("warnings", json!(self.warnings));
        }
        put("state_file", json!(self.state_file));
        if let Some(soak) = &self.soak {
            put("soak", soak.to_json());
        }
        Value::Object(m)
    }

    /// The report as a table: a status line, then the figures in
    /// sections ([`SECTIONS`]), each value with its unit (`12,345.6 /s`,
    /// `1.23 ms`, `51,200 KiB`); the JSON's key names are the row names.
    /// Then the soak checks, the actions, the errors by kind and the
    /// warnings.
    pub fn table(&self) -> String {
        let status = match &self.failed {
            None => "ok".to_string(),
            Some(why) => format!("FAILED: {why}"),
        };
        let mut rows: Vec<(String, String)> =
            vec![("scenario".into(), format!("{} ({status})", self.scenario))];
        let Value::Object(fields) = self.to_json() else {
            return String::new();
        };
        let mut shown = std::collections::HashSet::new();
        for (title, keys) in SECTIONS {
            let section: Vec<(String, String)> = keys
                .iter()
                .filter_map(|&(key, unit)| {
                    let value = fields.get(key)?;
                    shown.insert(key);
                    Some((format!("  {key}"), unit.show(value)))
                })
                .collect();
            if !section.is_empty() {
                rows.push((format!("[{title}]"), String::new()));
                rows.extend(section);
            }
        }
        let rest: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| !shown.contains(k.as_str()) && !HIDDEN.contains(&k.as_str()))
            .map(|(k, v)| (format!("  {k}"), Unit::Plain.show(v)))
            .collect();
        if !rest.is_empty() {
            rows.push(("[other]".into(), String::new()));
            rows.extend(rest);
        }
        if let Some(soak) = &self.soak {
            rows.push(("[soak]".into(), String::new()));
            soak.rows(&mut rows);
        }
        if !self.actions.is_empty() {
            rows.push(("[actions]".into(), String::new()));
        }
        for (name, n) in &self.actions {
            rows.push((format!("  {name}"), thousands(*n as f64, 0)));
        }
        if !self.errors.is_empty() {
            rows.push(("[errors]".into(), String::new()));
        }
        for (kind, n) in &self.errors {
            rows.push((format!("  error: {kind}"), n.to_string()));
        }
        for w in &self.warnings {
            rows.push(("WARNING".into(), w.clone()));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let line = format!("{k:<width$}  {v}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// JSON fields the table shows elsewhere or not at all.
const HIDDEN: &[&str] = &[
    "scenario",
    "ok",
    "failed",
    "error_kinds",
    "actions",
    "soak",
    "warnings",
];

/// How a figure is shown in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// As the JSON has it.
    Plain,
    /// A count, with thousands separators.
    Count,
    /// Per second.
    Rate,
    /// Seconds.
    Secs,
    /// A latency summary in microseconds, shown in µs, ms or s.
    Latency,
    /// Microseconds.
    Micros,
    /// KiB.
    KiB,
    /// Bytes.
    Bytes,
}

/// The table's sections, in order: a title and its JSON keys with units.
const SECTIONS: &[(&str, &[(&str, Unit)])] = &[
    (
        "run",
        &[
            ("users", Unit::Count),
            ("threads", Unit::Count),
            ("legacy", Unit::Plain),
            ("prefix", Unit::Plain),
            ("setup_secs", Unit::Secs),
            ("elapsed_secs", Unit::Secs),
        ],
    ),
    (
        "throughput",
        &[
            ("ops", Unit::Count),
            ("ops_per_sec", Unit::Rate),
            ("op_failures", Unit::Count),
            ("sent", Unit::Count),
            ("delivered", Unit::Count),
            ("delivered_per_sec", Unit::Rate),
            ("offered_per_sec", Unit::Rate),
            ("achieved_per_sec", Unit::Rate),
            ("pages", Unit::Count),
            ("pages_per_sec", Unit::Rate),
            ("fetched", Unit::Count),
            ("fetched_per_sec", Unit::Rate),
        ],
    ),
    (
        "latency",
        &[
            ("latency_us", Unit::Latency),
            ("group_latency_us", Unit::Latency),
            ("ack_latency_us", Unit::Latency),
            ("send_lag_us", Unit::Latency),
        ],
    ),
    (
        "delivery",
        &[
            ("expected", Unit::Count),
            ("offline_delivered", Unit::Count),
            ("lost", Unit::Count),
            ("duplicated", Unit::Count),
            ("reordered", Unit::Count),
            ("unexpected", Unit::Count),
            ("stale", Unit::Count),
            ("acked", Unit::Count),
            ("ack_failed", Unit::Count),
            ("unacked", Unit::Count),
            ("synced", Unit::Count),
            ("refetched", Unit::Count),
        ],
    ),
    (
        "connections",
        &[
            ("connected", Unit::Count),
            ("closed", Unit::Count),
            ("errors", Unit::Count),
        ],
    ),
    (
        "server",
        &[
            ("server_rss_kib_before", Unit::KiB),
            ("server_rss_kib_after", Unit::KiB),
            ("server_bytes_per_conn", Unit::Bytes),
            ("server_cpu_secs", Unit::Secs),
            ("server_cpu_us_per_msg", Unit::Micros),
        ],
    ),
];

impl Unit {
    fn show(self, v: &Value) -> String {
        let n = v.as_f64();
        match (self, n) {
            (Unit::Count, Some(n)) => thousands(n, 0),
            (Unit::Rate, Some(n)) => format!("{} /s", thousands(n, 1)),
            (Unit::Secs, Some(n)) => format!("{n:.2} s"),
            (Unit::Micros, Some(n)) => duration_us(n),
            (Unit::KiB, Some(n)) => format!("{} KiB", thousands(n, 0)),
            (Unit::Bytes, Some(n)) => format!("{} B", thousands(n, 0)),
            (Unit::Latency, _) => latency(v),
            (_, _) => match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }
}

/// `p50 1.2 ms  p90 …  p99 …  p99.9 …  max …  mean …  (n 1,234)`.
fn latency(v: &Value) -> String {
    let field = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let mut parts: Vec<String> = [
        ("p50", "p50"),
        ("p90", "p90"),
        ("p99", "p99"),
        ("p999", "p99.9"),
        ("max", "max"),
        ("mean", "mean"),
    ]
    .iter()
    .map(|(k, label)| format!("{label} {}", duration_us(field(k))))
    .collect();
    parts.push(format!("(n {})", thousands(field("count"), 0)));
    parts.join("  ")
}

/// Microseconds in the unit that keeps 3 significant digits readable.
fn duration_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// `n` with `decimals` decimals and `,` between groups of three digits.
fn thousands(n: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, n.abs());
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(i, f)| (i, f));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if n < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_leaves_out_what_does_not_apply() {
        let r = Report {
            scenario: "chat".into(),
            elapsed_secs: 2.0,
            delivered: Some(100),
            lost: Some(0),
            ..Report::default()
        };
        let v = r.to_json();
        assert_eq!(v["delivered_per_sec"], 50.0);
        assert_eq!(v["lost"], 0);
        assert_eq!(v["errors"], 0);
        assert!(v.get("ops").is_none());
        assert!(v.get("server_bytes_per_conn").is_none());
        assert!(r.table().contains("delivered_per_sec"));
    }

    #[test]
    fn table_groups_the_figures_with_their_units() {
        let r = Report {
            scenario: "mixed".into(),
            users: 1000,
            elapsed_secs: 10.0,
            delivered: Some(123_456),
            lost: Some(0),
            latency_us: Some(Summary {
                count: 123_456,
                p50: 850,
                p90: 1_500,
                p99: 12_340,
                p999: 2_500_000,
                max: 3_000_000,
                mean: 900.0,
            }),
            server_rss_kib_after: Some(51_200),
            offered_per_sec: Some(45_000.0),
            achieved_per_sec: Some(20_000.0),
            warnings: vec!["the generator fell behind: …".into()],
            ..Report::default()
        };
        let t = r.table();
        let line = |key: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap_or_else(|| panic!("no {key}:\n{t}"))
                .to_owned()
        };
        assert!(t.find("[throughput]") < t.find("[latency]"), "{t}");
        assert!(t.find("[latency]") < t.find("[delivery]"), "{t}");
        assert!(line("delivered_per_sec").ends_with("12,345.6 /s"), "{t}");
        assert!(line("users").ends_with("1,000"), "{t}");
        assert!(line("elapsed_secs").ends_with("10.00 s"), "{t}");
        let lat = line("latency_us");
        for part in ["p50 850 µs", "p99 12.34 ms", "p99.9 2.50 s", "(n 123,456)"] {
            assert!(lat.contains(part), "{part}: {lat}");
        }
        assert!(line("server_rss_kib_after").ends_with("51,200 KiB"), "{t}");
        assert!(line("offered_per_sec").ends_with("45,000.0 /s"), "{t}");
        assert!(line("WARNING").contains("fell behind"), "{t}");
        let last = t.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("WARNING") && last.ends_with("behind: …"),
            "{t}"
        );
        assert!(
            !t.contains("[server]\n  server_rss_kib_before"),
            "absent figures are left out"
        );
        assert_eq!(thousands(-1234567.891, 2), "-1,234,567.89");
        assert_eq!(thousands(999.0, 0), "999");
    }

    #[test]
    fn memory_per_connection() {
        let r = Report {
            connected: Some(1000),
            server_rss_kib_before: Some(1000),
            server_rss_kib_after: Some(5000),
            ..Report::default()
        };
        assert_eq!(r.server_bytes_per_conn(), Some(4096.0));
    }
}
