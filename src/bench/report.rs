//! The results: one row per figure (`name | measured | target | met`), context lines, and
//! the Markdown file in bench/results/ with the date, the commit and the machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct Row {
    pub name: String,
    pub measured: String,
    pub target: String,
    /// `None`: not measured (the reason is in `measured`).
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Raw figures behind the rows, one line each, by section.
    pub context: Vec<(String, Vec<String>)>,
}

impl Report {
    pub fn row(&mut self, name: &str, measured: String, target: &str, met: bool) {
        self.rows.push(Row {
            name: name.into(),
            measured,
            target: target.into(),
            met: Some(met),
        });
    }

    pub fn not_measured(&mut self, names: &[(&str, &str)], why: &str) {
        for (name, target) in names {
            self.rows.push(Row {
                name: (*name).into(),
                measured: format!("not measured: {why}"),
                target: (*target).into(),
                met: None,
            });
        }
    }

    pub fn context(&mut self, section: &str, line: String) {
        println!("  {section}: {line}");
        match self.context.iter_mut().find(|(s, _)| s == section) {
            Some((_, lines)) => lines.push(line),
            None => self.context.push((section.into(), vec![line])),
        }
    }

    /// The table, in Markdown (also readable in a terminal).
    pub fn table(&self) -> String {
        let mut out = String::from("| figure | measured | target | |\n|---|---|---|---|\n");
        for row in &self.rows {
            let verdict = match row.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {verdict} |",
                row.name, row.measured, row.target
            );
        }
        out
    }

    pub fn markdown(&self, header: &Header) -> String {
        let mut out = format!("# Benchmark, {}\n\n", header.date);
        let _ = writeln!(out, "- command: `{}`", header.command);
        let _ = writeln!(out, "- commit: {}", header.commit);
        let _ = writeln!(out, "- started: {}", header.started);
        let _ = writeln!(out, "- took: {:.0} s", header.took_seconds);
        for line in &header.machine {
            let _ = writeln!(out, "- {line}");
        }
        out.push_str("\n## Figures\n\n");
        out.push_str(&self.table());
        out.push_str("\n## Context\n");
        for (section, lines) in &self.context {
            let _ = write!(out, "\n### {section}\n\n");
            for line in lines {
                let _ = writeln!(out, "- {line}");
            }
        }
        out.push_str("\n## Method\n\n");
        out.push_str(METHOD);
        out
    }
}

pub struct Header {
    pub date: String,
    pub started: String,
    pub command: String,
    pub commit: String,
    pub machine: Vec<String>,
    pub took_seconds: f64,
}

/// How every figure was measured; docs/decisions.md says why.
const METHOD: &str = "\
Everything runs on this machine over loopback sockets, in one run: a private `redis-server`
(no persistence), the Novasend sandbox in its own process (no added latency), replicas of the
service and the bare baseline as child processes of the same binary, and the load generator
(tonic clients) in the bench process itself, sharing the same cores. Each group of figures
gets a fresh Redis, sandbox and replicas, stopped before the next group starts.

- Unary throughput (a, b, g): a closed loop of 64 calls in flight over 2 HTTP/2 connections,
  after a 1 s warm-up of each target; 3 rounds of 2 s windows that alternate bare, service,
  service with OTLP, so that drift on the shared machine hits every side alike; throughput =
  calls completed inside the windows / window time. The bare baseline answers the very `Payin`
  the service answered for the same reference (same encoded size). For (b) the service runs
  with `PAYMENTS_POLL_INTERVAL=1h` so that the non-terminal payin is served from Redis (a
  read), never refreshed from the sandbox. Single-call latency: 1 call in flight, 1 connection.
- CPU (c): utime + stime from /proc/<pid>/stat, before and after each measured window, over
  the calls completed in it; clock ticks from `getconf CLK_TCK`. CreatePayin with unique
  references and idempotency keys, 64 in flight over 2 connections, 2 rounds of 3 s windows,
  each followed by a window of the bare create: a child of the same binary, behind the same
  server builder, whose CreatePayin makes the same round trips with none of the work (a Redis
  script that does nothing, the same `POST /v1/payin/sessions` with the same headers and
  client settings, a second do-nothing script carrying the provider's answer and the encoded
  reply), on the same Redis and sandbox. Its CPU per create is the floor that tonic, redis-rs,
  reqwest and loopback TCP set on this machine.
- Added latency (c), on a fresh Redis, sandbox and service (the CPU windows leave some
  hundred thousand payins in the sandbox, whose further growth stalled it for up to a few
  hundred ms): callers at half the throughput sustained above (an open loop), 3 s
  calling the sandbox directly (reqwest, pooled HTTP/1.1 connections as the service's own
  client), then 3 s through the service; added = the quantile through the service minus the
  same quantile direct. Then one call at a time, each way.
- Streams (d): 10,000 payins created first; then 10,000 StreamPayinUpdates opened at once over
  200 connections, one per payin; time from the first open to the last SNAPSHOT received;
  VmRSS of the service (/proc/<pid>/status) 1 s after, all still open.
- Webhooks (e): 1,000 payins streamed on replica B; the bench accepts them on the sandbox's
  payment page at 200 per second; the sandbox sends its signed webhook to replica A, which
  re-reads the payin and announces the change; latency = from just before the accept request
  to the stream message on B.
- Polling (f): 1,000 other payins, 500 streamed on each replica, nothing changes; the
  sandbox's count of `GET /v1/payin/{reference}` over 3 poll intervals (5 s) after every
  snapshot arrived, divided by 1,000 × 3.
";

/// `bench/results/<date>-<description>.md`, with a time suffix if that name is taken.
pub fn write(
    dir: &Path,
    date: &str,
    time: &str,
    description: &str,
    text: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let slug: String = description
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut path = dir.join(format!("{date}-{slug}.md"));
    if path.exists() {
        path = dir.join(format!("{date}-{slug}-{time}.md"));
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_met_not_met_and_not_measured() {
        let mut report = Report::default();
        report.row("a", "0.91".into(), "≥ 0.8", true);
        report.row("b", "0.31".into(), "≥ 0.5", false);
        report.not_measured(&[("c", "≤ 80 µs")], "redis-server missing");
        let table = report.table();
        assert!(table.contains("| a | 0.91 | ≥ 0.8 | met |"));
        assert!(table.contains("| b | 0.31 | ≥ 0.5 | NOT met |"));
        assert!(
            table.contains("| c | not measured: redis-server missing | ≤ 80 µs | not measured |")
        );
    }
}
