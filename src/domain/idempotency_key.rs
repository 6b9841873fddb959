//! The caller's idempotency key.

use super::violations::{MAX_TEXT_CHARS, Violation};

pub const IDEMPOTENCY_METADATA: &str = "x-idempotency-key";

/// The caller's idempotency key: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Takes the key from the request field or the metadata: one is needed, and both must
    /// agree when both are sent.
    pub fn from_field_or_metadata(field: &str, metadata: Option<&str>) -> Result<Self, Violation> {
        let raw = match (field, metadata) {
            ("", None) => return Err(Violation::Required),
            ("", Some(meta)) => meta,
            (field, None) => field,
            (field, Some(meta)) if field == meta => field,
            (_, Some(_)) => return Err(Violation::IdempotencyKeyMismatch),
        };
        let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if raw.is_empty() || raw.len() > MAX_TEXT_CHARS || !printable {
            return Err(Violation::IdempotencyKeyFormat);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_from_field_or_metadata() {
        use IdempotencyKey as K;
        assert_eq!(
            K::from_field_or_metadata("", None),
            Err(Violation::Required)
        );
        assert_eq!(K::from_field_or_metadata("a", None).unwrap().as_str(), "a");
        assert_eq!(
            K::from_field_or_metadata("", Some("m")).unwrap().as_str(),
            "m"
        );
        assert_eq!(
            K::from_field_or_metadata("k", Some("k")).unwrap().as_str(),
            "k"
        );
        assert_eq!(
            K::from_field_or_metadata("k", Some("other")),
            Err(Violation::IdempotencyKeyMismatch)
        );
        assert_eq!(
            K::from_field_or_metadata(&"k".repeat(256), None),
            Err(Violation::IdempotencyKeyFormat)
        );
        assert!(K::from_field_or_metadata(&"k".repeat(255), None).is_ok());
        assert_eq!(
            K::from_field_or_metadata("clé", None),
            Err(Violation::IdempotencyKeyFormat)
        );
        assert_eq!(
            K::from_field_or_metadata("a\tb", None),
            Err(Violation::IdempotencyKeyFormat)
        );
    }
}
