//! Parsers the components share.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("`{raw}` is not a host:port socket address"))
}

pub(super) fn parse_duration(raw: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|_| format!("`{raw}` is not a duration such as 500ms, 5s, 10m or 24h"))?;
    if d < min || d > max {
        return Err(format!(
            "{} is outside {} ..= {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A secret from its variable or from the file its `_FILE` variable names (Kubernetes
/// secret mounts). The error names the variable, never the value.
pub(crate) fn read_secret(
    variable: &str,
    value: &Option<String>,
    file: &Option<String>,
) -> Result<Option<SecretString>, String> {
    let value = value.as_deref().filter(|v| !v.is_empty());
    let file = file.as_deref().filter(|f| !f.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(format!(
            "{variable}: set either {variable} or {variable}_FILE, not both"
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v.to_owned()))),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(content) if !content.trim().is_empty() => {
                Ok(Some(SecretString::from(content.trim().to_owned())))
            }
            Ok(_) => Err(format!("{variable}_FILE: `{path}` is empty")),
            Err(e) => Err(format!(
                "{variable}_FILE: cannot read `{path}`: {}",
                e.kind()
            )),
        },
        (None, None) => Ok(None),
    }
}
