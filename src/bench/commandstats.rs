//! Redis's own count of the commands it ran (INFO commandstats): how many a create costs,
//! and Redis's time inside each, next to the CPU its process spent.

use std::collections::BTreeMap;

/// Calls and microseconds (inside the command) per command name.
#[derive(Debug, Default, Clone)]
pub struct CommandStats(BTreeMap<String, (u64, u64)>);

impl CommandStats {
    pub async fn read(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self::parse(&info))
    }

    /// Lines like `cmdstat_evalsha:calls=12,usec=340,usec_per_call=28.33,...`.
    fn parse(info: &str) -> Self {
        let stats = info
            .lines()
            .filter_map(|line| {
                let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |wanted: &str| {
                    fields.split(',').find_map(|f| {
                        let (k, v) = f.split_once('=')?;
                        (k == wanted).then(|| v.parse::<u64>().ok()).flatten()
                    })
                };
                Some((name.to_owned(), (field("calls")?, field("usec")?)))
            })
            .collect();
        Self(stats)
    }

    /// What ran between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        let delta = self
            .0
            .iter()
            .map(|(name, &(calls, usec))| {
                let (c0, u0) = before.0.get(name).copied().unwrap_or_default();
                (
                    name.clone(),
                    (calls.saturating_sub(c0), usec.saturating_sub(u0)),
                )
            })
            .filter(|(_, (calls, _))| *calls > 0)
            .collect();
        Self(delta)
    }

    /// Counts `other`'s calls and time too.
    pub fn add(&mut self, other: &Self) {
        for (name, &(calls, usec)) in &other.0 {
            let (c, u) = self.0.entry(name.clone()).or_default();
            *c += calls;
            *u += usec;
        }
    }

    /// `evalsha 2.00 (9.1 µs each), …` per one of `per` operations, most called first.
    pub fn per_operation(&self, per: u64) -> String {
        let mut rows: Vec<_> = self.0.iter().collect();
        rows.sort_by_key(|(_, (calls, _))| std::cmp::Reverse(*calls));
        rows.iter()
            .map(|(name, (calls, usec))| {
                format!(
                    "{name} {:.2} ({:.1} µs each)",
                    *calls as f64 / per.max(1) as f64,
                    *usec as f64 / (*calls).max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calls_and_time_per_command() {
        let before = CommandStats::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n",
        );
        let after = CommandStats::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=30,usec=300,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\ncmdstat_ping:calls=1,usec=1,usec_per_call=1.00\r\n",
        );
        let mut delta = after.since(&before);
        assert_eq!(
            delta.per_operation(10),
            "evalsha 2.00 (10.0 µs each), ping 0.10 (1.0 µs each)"
        );
        delta.add(&after.since(&before));
        assert_eq!(
            delta.per_operation(20),
            "evalsha 2.00 (10.0 µs each), ping 0.10 (1.0 µs each)"
        );
    }
}
