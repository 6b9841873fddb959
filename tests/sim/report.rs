//! The report of one seed: what ran, what was injected, and which invariant broke how.

use super::invariants::Violations;
use super::record::{CallRecord, StreamEnd, StreamRecord};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

pub const INVARIANTS: [(&str, &str); 6] = [
    ("I1", "at most one payin created upstream per reference"),
    (
        "I2",
        "at most one refund upstream per payin, never above its amount",
    ),
    (
        "I3",
        "every call answered with a contract code within its deadline",
    ),
    (
        "I4",
        "no stream moves backwards; each ends after its terminal status or with a contract error",
    ),
    (
        "I5",
        "after quiescence, GetPayin equals the provider's truth",
    ),
    (
        "I6",
        "every replay of a key equals the first answer byte for byte",
    ),
];

pub struct Report {
    pub seed: u64,
    pub replicas: usize,
    pub took: Duration,
    pub setup_error: Option<String>,
    pub calls: Vec<CallRecord>,
    pub streams: Vec<StreamRecord>,
    pub faults: Vec<String>,
    pub webhooks: String,
    pub journal_writes: usize,
    pub violations: Violations,
    pub log_dir: String,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.setup_error.is_none() && self.violations.values().all(Vec::is_empty)
    }

    pub fn replay_command(&self) -> String {
        format!(
            "SIM_SEEDS={} cargo test --test simulation seeded_fault_simulation -- --nocapture",
            self.seed
        )
    }

    /// One line for a summary: the seed and the invariants it broke.
    pub fn summary_line(&self) -> String {
        if let Some(error) = &self.setup_error {
            return format!("seed {}: SETUP FAILED: {error}", self.seed);
        }
        let broken: Vec<String> = self
            .violations
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, v)| format!("{name}×{}", v.len()))
            .collect();
        if broken.is_empty() {
            format!("seed {}: ok ({:.0?})", self.seed, self.took)
        } else {
            format!(
                "seed {}: VIOLATED {} ({:.0?})",
                self.seed,
                broken.join(" "),
                self.took
            )
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "=== simulation seed {} — {} replicas, {:.1?} ===",
            self.seed, self.replicas, self.took
        );
        if let Some(error) = &self.setup_error {
            let _ = writeln!(out, "setup failed: {error}");
        }
        let _ = writeln!(out, "calls by code:");
        for (op, codes) in self.code_counts() {
            let _ = writeln!(out, "  {op}: {codes}");
        }
        let _ = writeln!(out, "streams: {}", self.stream_summary());
        let _ = writeln!(out, "{}", self.webhooks);
        let _ = writeln!(out, "writes the sandbox processed: {}", self.journal_writes);
        let _ = writeln!(out, "faults injected ({}):", self.faults.len());
        for fault in &self.faults {
            let _ = writeln!(out, "  {fault}");
        }
        for (name, meaning) in INVARIANTS {
            let found = self.violations.get(name).map_or(&[][..], Vec::as_slice);
            let verdict = if found.is_empty() { "ok" } else { "VIOLATED" };
            let _ = writeln!(out, "{name} ({meaning}): {verdict}");
            for violation in found.iter().take(25) {
                let _ = writeln!(out, "    {violation}");
            }
            if found.len() > 25 {
                let _ = writeln!(out, "    … and {} more", found.len() - 25);
            }
        }
        if !self.is_clean() {
            let _ = writeln!(out, "logs of the processes: {}", self.log_dir);
            let _ = writeln!(out, "replay: {}", self.replay_command());
        }
        out
    }

    fn code_counts(&self) -> BTreeMap<String, String> {
        let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for call in &self.calls {
            let code = match &call.answer {
                Some(answer) => format!("{:?}", answer.code),
                None => "NO ANSWER".into(),
            };
            *counts
                .entry(format!("{:?}", call.op))
                .or_default()
                .entry(code)
                .or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(op, codes)| {
                let line: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
                (op, line.join(", "))
            })
            .collect()
    }

    fn stream_summary(&self) -> String {
        let mut ends: BTreeMap<String, usize> = BTreeMap::new();
        for stream in &self.streams {
            let end = match &stream.end {
                StreamEnd::Ok => "OK".to_owned(),
                StreamEnd::Error(code, _) => format!("{code:?}"),
                StreamEnd::StillOpen => "still open".to_owned(),
            };
            *ends.entry(end).or_default() += 1;
        }
        let messages: usize = self.streams.iter().map(|s| s.steps.len()).sum();
        format!(
            "{} subscriptions, {messages} messages, ended {ends:?}",
            self.streams.len()
        )
    }
}
