//! The in-process store, for a single replica (PAYMENTS_REDIS_URL unset). Same semantics as
//! Redis: one mutex makes every check-then-act atomic.

mod operations;
mod state;

use super::{CHANGE_FEED_CAPACITY, ChangeNotice};
use state::State;
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::broadcast;

pub struct MemoryStore {
    state: Mutex<State>,
    changes: broadcast::Sender<ChangeNotice>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            changes: broadcast::channel(CHANGE_FEED_CAPACITY).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        state.records.retain(|_, r| r.expires_at > now);
        state.claims.retain(|_, c| c.expires_at > now);
        state.payins.retain(|_, p| p.expires_at > now);
        state.provider_index.retain(|_, p| p.expires_at > now);
        state.poll_leases.retain(|_, l| l.expires_at > now);
        let State {
            open_payins,
            payins,
            refund_marks,
            ..
        } = &mut *state;
        open_payins.retain(|reference, _| payins.contains_key(reference));
        refund_marks.retain(|reference, _| payins.contains_key(reference));
        f(&mut state, now)
    }
}
