//! Fault injection: added latency, an error status, a dropped connection or a malformed body
//! (each before or after the request is processed), for a count or a share of API requests.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Waits `latency_ms`, then serves normally.
    Latency,
    /// Answers `status` with Novasend's error JSON, without processing.
    Status,
    /// Drops the connection without processing.
    Drop,
    /// Processes the request, then drops the connection instead of answering.
    DropAfter,
    /// Answers 200 with a body that is not JSON, without processing.
    Malformed,
    /// Processes the request, then answers its success status (or 200) with a body that is
    /// not JSON: the write happened, the caller cannot tell.
    MalformedAfter,
}

/// One fault rule, as given to `--fault`, `SANDBOX_FAULTS` or `POST /_sandbox/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Applies to this many requests, then retires. Neither count nor share: every request.
    #[serde(default)]
    pub count: Option<u32>,
    /// Applies to this share of requests (0..=1), spread evenly: 0.5 is every second one.
    #[serde(default)]
    pub share: Option<f64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Only requests whose method matches (GET, POST).
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose path starts with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(skip)]
    credit: f64,
}

impl Fault {
    /// Parses `kind=status,status=503,count=2,method=POST,path_prefix=/v1/payin/sessions`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut fault = Fault {
            kind: FaultKind::Latency,
            count: None,
            share: None,
            status: None,
            latency_ms: None,
            method: None,
            path_prefix: None,
            credit: 0.0,
        };
        let mut kind = None;
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let bad = || format!("`{value}` is not a valid {key}");
            match key {
                "kind" => {
                    kind = Some(
                        serde_json::from_value(serde_json::Value::String(value.into()))
                            .map_err(|_| bad())?,
                    )
                }
                "count" => fault.count = Some(value.parse().map_err(|_| bad())?),
                "share" => fault.share = Some(value.parse().map_err(|_| bad())?),
                "status" => fault.status = Some(value.parse().map_err(|_| bad())?),
                "latency_ms" => fault.latency_ms = Some(value.parse().map_err(|_| bad())?),
                "method" => fault.method = Some(value.to_ascii_uppercase()),
                "path_prefix" => fault.path_prefix = Some(value.into()),
                _ => return Err(format!("unknown fault setting `{key}`")),
            }
        }
        fault.kind = kind
            .ok_or("a fault needs kind=latency|status|drop|drop_after|malformed|malformed_after")?;
        fault.check()?;
        Ok(fault)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.share.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err("share must be between 0 and 1".into());
        }
        if self.kind == FaultKind::Status && !self.status.is_some_and(|s| (400..=599).contains(&s))
        {
            return Err("a status fault needs status=400..599".into());
        }
        if self.kind == FaultKind::Latency && self.latency_ms.is_none_or(|ms| ms > 120_000) {
            return Err("a latency fault needs latency_ms=0..120000".into());
        }
        Ok(())
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.unwrap_or(0))
    }

    /// Whether this fault hits a request, spending its count or share if so.
    fn hits(&mut self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method)
            || self
                .path_prefix
                .as_deref()
                .is_some_and(|p| !path.starts_with(p))
            || self.count == Some(0)
        {
            return false;
        }
        if let Some(share) = self.share {
            self.credit += share;
            if self.credit < 1.0 {
                return false;
            }
            self.credit -= 1.0;
        }
        if let Some(count) = self.count.as_mut() {
            *count -= 1;
        }
        true
    }

    fn spent(&self) -> bool {
        self.count == Some(0)
    }
}

/// The active fault rules, first match wins.
#[derive(Debug, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.0.clone()
    }

    /// The fault that hits this request, if any.
    pub fn pick(&mut self, method: &str, path: &str) -> Option<Fault> {
        let hit = self
            .0
            .iter_mut()
            .find_map(|f| f.hits(method, path).then(|| f.clone()));
        self.0.retain(|f| !f.spent());
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_spends_counts_and_shares() {
        let mut faults = Faults::default();
        faults.add(Fault::parse("kind=status,status=503,count=2,method=post").unwrap());
        assert!(faults.pick("GET", "/v1/payin/x").is_none());
        assert_eq!(
            faults.pick("POST", "/v1/payin/sessions").unwrap().status,
            Some(503)
        );
        assert!(faults.pick("POST", "/v1/payin/sessions").is_some());
        assert!(faults.pick("POST", "/v1/payin/sessions").is_none());

        faults.add(Fault::parse("kind=drop,share=0.5,path_prefix=/v1/payin/sessions").unwrap());
        let hits: Vec<bool> = (0..4)
            .map(|_| faults.pick("POST", "/v1/payin/sessions").is_some())
            .collect();
        assert_eq!(hits, vec![false, true, false, true]);

        assert_eq!(
            Fault::parse("kind=malformed_after,count=1").unwrap().kind,
            FaultKind::MalformedAfter
        );
        assert!(Fault::parse("kind=status").is_err());
        assert!(Fault::parse("kind=latency").is_err());
        assert!(Fault::parse("kind=explode").is_err());
        assert!(Fault::parse("kind=drop,share=2").is_err());
        assert!(Fault::parse("count=1").is_err());
    }
}
