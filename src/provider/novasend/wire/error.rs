//! Novasend's error bodies, reduced to one line for the caller.

use super::values::text_of;
use crate::provider::redact_phone_numbers;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ErrorBody {
    error: Option<Value>,
    message: Option<Value>,
    sub_errors: Option<Value>,
    correlation_id: Option<Value>,
}

/// Novasend's error JSON `{error, statusCode, correlationId, message, subErrors}`, reduced to
/// one line for the caller, with phone numbers masked. Returns the correlation id for logs.
pub fn parse_error(bytes: &[u8], status: u16) -> (String, Option<String>) {
    let body: ErrorBody = serde_json::from_slice(bytes).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    for value in [body.message.as_ref(), body.error.as_ref()]
        .into_iter()
        .flatten()
    {
        let text = text_of(value);
        if !text.is_empty() {
            parts.push(text);
            break;
        }
    }
    if let Some(Value::Array(subs)) = &body.sub_errors {
        parts.extend(subs.iter().map(text_of).filter(|t| !t.is_empty()));
    }
    if parts.is_empty() {
        parts.push(format!("HTTP {status}"));
    }
    let correlation_id = body
        .correlation_id
        .as_ref()
        .map(text_of)
        .filter(|c| !c.is_empty());
    (
        redact_phone_numbers(&parts.join("; ")),
        correlation_id.map(|id| redact_phone_numbers(&id)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_bodies() {
        let body = r#"{"error":"Unprocessable Entity","statusCode":422,"correlationId":"c-1","message":"Validation failed","subErrors":[{"field":"msisdn","message":"+2250700000042 is not reachable"}]}"#;
        let (message, correlation) = parse_error(body.as_bytes(), 422);
        assert_eq!(
            message,
            "Validation failed; msisdn: **********0042 is not reachable"
        );
        assert_eq!(correlation.as_deref(), Some("c-1"));
        assert_eq!(parse_error(b"<html>", 502).0, "HTTP 502");
        assert_eq!(parse_error(br#"{"message":["a","b"]}"#, 400).0, "a; b");
    }
}
