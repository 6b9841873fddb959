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
/// At most this many copies (about 1.5 kB each); beyond, expired ones go, then all.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct TerminalCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    copies: HashMap<String, (Arc<Payin>, Instant)>,
    /// Bumped whenever copies are dropped, so that a payin read from the store before the
    /// drop is not kept after it.
    generation: u64,
}

impl TerminalCache {
    /// A cache that follows the store's announcements until the store goes away.
    pub fn following(store: &Arc<dyn Store>) -> Arc<Self> {
        let cache = Arc::new(Self::default());
        tokio::spawn(follow(Arc::downgrade(&cache), store.changes()));
        cache
    }

    pub fn get(&self, reference: &str) -> Option<Arc<Payin>> {
        let entries = self.lock();
        entries
            .copies
            .get(reference)
            .filter(|(_, at)| at.elapsed() < KEPT_FOR)
            .map(|(payin, _)| payin.clone())
    }

    /// Where copies stand now: a payin read from the store after this may be offered with it.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `payin`, read from the store at `generation`, if it is terminal, nothing was
    /// dropped since it was read, and it is not older than the copy already kept.
    pub fn offer(&self, payin: &Payin, generation: u64) {
        if !payin.status.is_terminal() {
            return;
        }
        let mut entries = self.lock();
        if entries.generation != generation
            || entries
                .copies
                .get(&payin.reference)
                .is_some_and(|(kept, _)| kept.version > payin.version)
        {
            return;
        }
        if entries.copies.len() >= MAX_ENTRIES {
            entries.copies.retain(|_, (_, at)| at.elapsed() < KEPT_FOR);
            if entries.copies.len() >= MAX_ENTRIES {
                entries.copies.clear();
            }
        }
        entries.copies.insert(
            payin.reference.clone(),
            (Arc::new(payin.clone()), Instant::now()),
        );
    }

    /// This replica saved `payin`: its copy is that, at once (the announcement follows).
    pub fn saved(&self, payin: &Payin) {
        self.forget(&payin.reference);
        let generation = self.generation();
        self.offer(payin, generation);
    }

    fn forget(&self, reference: &str) {
        let mut entries = self.lock();
        if entries.copies.remove(reference).is_some() {
            entries.generation += 1;
        }
    }

    fn clear(&self) {
        let mut entries = self.lock();
        entries.copies.clear();
        entries.generation += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
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
            Ok(ChangeNotice::Changed(payin)) if payin.status.is_terminal() => cache.saved(&payin),
            Ok(ChangeNotice::Changed(payin)) => cache.forget(&payin.reference),
            Ok(ChangeNotice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => cache.clear(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
