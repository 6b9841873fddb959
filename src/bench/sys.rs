//! What the bench reads from Linux: CPU time and resident memory of a process (/proc), and a
//! description of the machine for the results file.

use std::path::Path;
use std::time::Duration;

/// Clock ticks per second of /proc/<pid>/stat's utime and stime.
#[derive(Debug, Clone, Copy)]
pub struct ClockTicks {
    pub per_second: u64,
    /// `false`: `getconf CLK_TCK` did not answer and 100 (Linux's USER_HZ) is assumed.
    pub measured: bool,
}

impl ClockTicks {
    pub fn read() -> Self {
        let answer = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0);
        match answer {
            Some(per_second) => Self {
                per_second,
                measured: true,
            },
            None => Self {
                per_second: 100,
                measured: false,
            },
        }
    }

    pub fn to_duration(self, ticks: u64) -> Duration {
        Duration::from_micros(ticks.saturating_mul(1_000_000) / self.per_second)
    }
}

/// utime + stime, in clock ticks, from the text of /proc/<pid>/stat.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields that follow start after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS in bytes, from the text of /proc/<pid>/status.
pub fn parse_status_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// CPU time a process has used so far (user + system).
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_cpu_ticks(&text).ok_or_else(|| format!("{path}: cannot read utime and stime"))
}

/// Resident memory of a process now.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_status_rss_bytes(&text).ok_or_else(|| format!("{path}: no VmRSS"))
}

/// The soft limit on open files of this process (children inherit it).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `model name` of the first CPU in /proc/cpuinfo.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// MemTotal in bytes, from /proc/meminfo.
pub fn parse_mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line["MemTotal:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// One line per fact about the machine and the software the bench ran.
pub fn machine_description(ticks: ClockTicks) -> Vec<String> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = parse_cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into());
    let memory = parse_mem_total_bytes(&read("/proc/meminfo")).map_or("unknown".into(), |b| {
        format!("{:.1} GiB", b as f64 / 1024f64.powi(3))
    });
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let redis = command_line("redis-server", &["--version"]).unwrap_or_else(|| "unknown".into());
    let ticks = if ticks.measured {
        format!("{} (getconf CLK_TCK)", ticks.per_second)
    } else {
        format!(
            "{} (assumed: getconf CLK_TCK did not answer)",
            ticks.per_second
        )
    };
    vec![
        format!("nproc: {cpus}"),
        format!("CPU: {model}"),
        format!("memory: {memory}"),
        format!("kernel: Linux {kernel}"),
        format!("redis-server: {redis}"),
        format!("clock ticks per second: {ticks}"),
    ]
}

/// The 1, 5 and 15 minute load averages (other work on the machine shows here).
pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line a local program prints, if it runs.
pub fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout)
        .ok()?
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// The commit the bench was built from, `-dirty` when the tree has changes.
pub fn git_commit(repo: &Path) -> String {
    let dir = repo.to_string_lossy();
    let Some(commit) = command_line("git", &["-C", &dir, "rev-parse", "--short=12", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let dirty = std::process::Command::new("git")
        .args(["-C", &dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_is_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 1386 0 0 0 \
                    731 269 0 0 20 0 9 0 123456 1234567 890 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1000));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_rss_is_read_in_kilobytes() {
        let status = "Name:\tpayments-gateway\nVmPeak:\t  200000 kB\nVmRSS:\t   81234 kB\n";
        assert_eq!(parse_status_rss_bytes(status), Some(81234 * 1024));
        assert_eq!(parse_status_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_model_and_memory_come_from_their_lines() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            parse_mem_total_bytes("MemTotal:        8147740 kB\nMemFree: 1 kB\n"),
            Some(8_147_740 * 1024)
        );
    }

    #[test]
    fn ticks_become_durations() {
        let ticks = ClockTicks {
            per_second: 100,
            measured: true,
        };
        assert_eq!(ticks.to_duration(250), Duration::from_millis(2500));
    }
}
