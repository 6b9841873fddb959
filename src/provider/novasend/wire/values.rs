//! Novasend's loosely typed fields (numbers that may be strings, `{}` for none, messages
//! nested in arrays and objects), read tolerantly.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub(super) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(map) => {
            let field = map
                .get("field")
                .or_else(|| map.get("property"))
                .map(text_of);
            let message = map
                .get("message")
                .or_else(|| map.get("error"))
                .map(text_of)
                .unwrap_or_default();
            match field {
                Some(f) if !f.is_empty() => format!("{f}: {message}"),
                _ => message,
            }
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.is_empty())
}

/// Amounts are whole currency units; Novasend sends numbers, sometimes as strings.
pub(super) fn whole_units(raw: Option<&Value>) -> Result<i64, String> {
    let as_float = |f: f64| {
        if f.is_finite() && f.abs() < 9e15 {
            Ok(f.round() as i64)
        } else {
            Err(format!("amount {f} is out of range"))
        }
    };
    match raw {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(i),
            None => as_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("amount `{s}` is not a number"))
            .and_then(as_float),
        Some(other) => Err(format!("amount {other} is not a number")),
    }
}

pub(super) fn decimal_string(raw: Option<&Value>) -> String {
    match raw {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn timestamp(raw: Option<&str>) -> Option<DateTime<Utc>> {
    raw.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}
