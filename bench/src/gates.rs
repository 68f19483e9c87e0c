//! What `chat-bench` does with a finished report besides printing it:
//! `--output FILE` (the JSON report to a file) and the pass/fail
//! thresholds `--max-p99 DURATION` and `--min-rate N`, which make the exit
//! status 1 when missed (as k6's thresholds do).

use std::path::PathBuf;
use std::time::Duration;

use crate::report::Report;

/// The report's destinations and thresholds, from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    /// `--output FILE`: write the JSON report there.
    pub output: Option<PathBuf>,
    /// `--max-p99`: the highest acceptable 99th-percentile latency.
    pub max_p99: Option<Duration>,
    /// `--min-rate`: the lowest acceptable rate (messages delivered per
    /// second, else operations per second).
    pub min_rate: Option<f64>,
}

impl Gates {
    /// The thresholds `report` missed, each as a sentence; empty: passed.
    /// A threshold whose figure the scenario does not measure is missed
    /// too (a gate that cannot be checked must not pass silently).
    pub fn misses(&self, report: &Report) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_p99 {
            let p99 = report
                .latency_us
                .or(report.group_latency_us)
                .or(report.ack_latency_us)
                .map(|s| Duration::from_micros(s.p99));
            match p99 {
                Some(p99) if p99 <= max => {}
                Some(p99) => out.push(format!("p99 latency {p99:?} is above --max-p99 {max:?}")),
                None => out.push("--max-p99: this scenario measured no latency".into()),
            }
        }
        if let Some(min) = self.min_rate {
            match report.delivered_per_sec().or_else(|| report.ops_per_sec()) {
                Some(rate) if rate >= min => {}
                Some(rate) => out.push(format!("rate {rate:.0}/s is below --min-rate {min}")),
                None => out.push("--min-rate: this scenario measured no rate".into()),
            }
        }
        out
    }

    /// Writes the JSON report to `--output`, if given.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, report: &Report) -> std::io::Result<()> {
        match &self.output {
            Some(path) => std::fs::write(path, format!("{}\n", report.to_json())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Summary;

    fn summary(p99: u64) -> Summary {
        Summary {
            count: 100,
            p50: 1,
            p90: 1,
            p99,
            p999: p99,
            max: p99,
            mean: 1.0,
        }
    }

    #[test]
    fn thresholds_pass_and_miss() {
        let report = Report {
            latency_us: Some(summary(4_000)),
            delivered: Some(60_000),
            elapsed_secs: 1.0,
            ..Report::default()
        };
        let rate = report.delivered_per_sec().expect("a rate");
        let gates = |p99_ms: u64, min: f64| Gates {
            output: None,
            max_p99: Some(Duration::from_millis(p99_ms)),
            min_rate: Some(min),
        };
        assert!(gates(5, rate - 1.0).misses(&report).is_empty());
        let missed = gates(3, rate + 1.0).misses(&report);
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert!(missed[0].contains("--max-p99") && missed[1].contains("--min-rate"));
        let none = Gates::default();
        assert!(none.misses(&Report::default()).is_empty());
        assert_eq!(
            gates(5, 1.0).misses(&Report::default()).len(),
            2,
            "unmeasured"
        );
    }

    #[test]
    fn output_writes_the_json() {
        let path = std::env::temp_dir().join(format!("bench-gates-{}.json", std::process::id()));
        let gates = Gates {
            output: Some(path.clone()),
            ..Gates::default()
        };
        gates.write(&Report::default()).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(v.is_object());
    }
}
