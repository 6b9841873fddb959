//! The merchant's payin reference.

use super::violations::{Violation, Violations};
use serde::Serialize;

const MAX_REFERENCE_LEN: usize = 64;

/// A merchant payin reference: 1–64 chars of `A-Za-z0-9-_.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        if raw.is_empty() {
            return Err(Violation::Required);
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        // A reference of dots alone would read as `.` or `..` in a Novasend URL path.
        let only_dots = raw.bytes().all(|b| b == b'.');
        if raw.len() > MAX_REFERENCE_LEN || !raw.bytes().all(allowed) || only_dots {
            return Err(Violation::ReferenceFormat);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Validates the reference of GetPayin and StreamPayinUpdates.
pub fn parse_lookup_reference(raw: &str) -> Result<Reference, Violations> {
    Reference::parse(raw).map_err(|v| Violations::single("reference", v))
}
