//! Terminal payins kept in this replica's memory. A terminal status never changes, so GetPayin
//! of a final payin need not reach Redis; what can still change (a refund) is announced by
//! the store to every replica, and the announcement replaces or drops the copy here. A copy is
//! also kept only for a short while, so a lost announcement costs at most that long.

use crate::domain::Payin;
use crate::store::{ChangeNotice, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How long a copy is trusted without an announcement.
const KEPT_FOR: Duration = Duration::from_secs(30);
/// Beyond this many copies, the cache starts over (it is only a shortcut).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct TerminalCache {
    entries: Mutex<HashMap<String, (Arc<Payin>, Instant)>>,
}

impl TerminalCache {
    /// A cache that follows the store's announcements until the store goes away.
    pub fn following(store: &Arc<dyn Store>) -> Arc<Self> {
        let cache = Arc::new(Self::default());
        tokio::spawn(follow(Arc::downgrade(&cache), store.changes()));
        cache
    }

    pub fn get(&self, reference: &str) -> Option<Arc<Payin>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(reference)
            .filter(|(_, at)| at.elapsed() < KEPT_FOR)
            .map(|(payin, _)| payin.clone())
    }

    /// Keeps `payin` if it is terminal and not older than the copy already kept.
    pub fn offer(&self, payin: &Payin) {
        if !payin.status.is_terminal() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries
            .get(&payin.reference)
            .is_some_and(|(kept, _)| kept.version > payin.version)
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            payin.reference.clone(),
            (Arc::new(payin.clone()), Instant::now()),
        );
    }

    fn forget(&self, reference: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(reference);
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Every announced change replaces (or drops) the copy; a gap in the announcements (the feed
/// reconnected, or this replica fell behind) drops every copy.
async fn follow(
    cache: std::sync::Weak<TerminalCache>,
    mut changes: broadcast::Receiver<ChangeNotice>,
) {
    loop {
        let notice = changes.recv().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        match notice {
            Ok(ChangeNotice::Changed(payin)) if payin.status.is_terminal() => {
                cache.forget(&payin.reference);
                cache.offer(&payin);
            }
            Ok(ChangeNotice::Changed(payin)) => cache.forget(&payin.reference),
            Ok(ChangeNotice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => cache.clear(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
