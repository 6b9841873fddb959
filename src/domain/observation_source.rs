//! Where the service's knowledge of a payin came from.

use serde::{Deserialize, Serialize};

/// How this service learned what it knows about a payin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObservationSource {
    /// A caller's call (create, get, refund).
    #[default]
    Api,
    /// A Novasend webhook, followed by a read.
    Webhook,
    /// Polling (for a stream, or the background reconciler).
    Poll,
}
