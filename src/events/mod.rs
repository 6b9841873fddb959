//! How status changes travel: webhooks and polling learn them, the store's compare-and-set
//! announces them, and streams carry them to callers, whichever replica each part runs on.

pub mod reconciler;
pub mod watchers;
pub mod webhook;
