//! The fingerprint of a validated command, which idempotency records keep.

use serde::Serialize;
use sha2::{Digest, Sha256};

pub(super) fn fingerprint(operation: &str, command: &impl Serialize) -> String {
    let canonical = serde_json::to_vec(command).expect("commands serialize");
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}
