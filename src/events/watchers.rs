//! This replica's open watches: one entry per watched payin, fed from the store's change
//! announcements, with one poller per payin while anyone here watches it.

use crate::domain::{Language, ObservationSource};
use crate::payments::Payments;
use crate::store::{ChangeNotice, PollLease, Store};
use crate::telemetry::metrics::POLLS;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How long after another replica's lease ends this one tries to take the next.
const LEASE_MARGIN: Duration = Duration::from_millis(10);

/// Notices a single stream may fall behind by before it is told to resync.
const PER_WATCH_CAPACITY: usize = 8;

struct Entry {
    notices: broadcast::Sender<ChangeNotice>,
    watches: usize,
    poller: JoinHandle<()>,
}

pub struct Watchers {
    entries: Mutex<HashMap<String, Entry>>,
}

/// One open watch; dropping it (the stream ended or its client left) releases it.
pub struct Watch {
    pub notices: broadcast::Receiver<ChangeNotice>,
    reference: String,
    watchers: Arc<Watchers>,
}

impl Watchers {
    /// Starts relaying the store's announcements to this replica's watches.
    pub fn start(store: &Arc<dyn Store>) -> Arc<Self> {
        let watchers = Arc::new(Watchers {
            entries: Mutex::default(),
        });
        tokio::spawn(relay(store.changes(), Arc::downgrade(&watchers)));
        watchers
    }

    /// Opens a watch on `reference`. The first watch here starts `poller`; the last one to go
    /// stops it.
    pub fn watch(
        self: &Arc<Self>,
        reference: &str,
        poller: impl FnOnce() -> JoinHandle<()>,
    ) -> Watch {
        let mut entries = self.lock();
        let entry = entries
            .entry(reference.to_owned())
            .or_insert_with(|| Entry {
                notices: broadcast::channel(PER_WATCH_CAPACITY).0,
                watches: 0,
                poller: poller(),
            });
        entry.watches += 1;
        Watch {
            notices: entry.notices.subscribe(),
            reference: reference.to_owned(),
            watchers: self.clone(),
        }
    }

    /// Open watches on this replica.
    pub fn open_watches(&self) -> usize {
        self.lock().values().map(|e| e.watches).sum()
    }

    /// Payins with a poller on this replica.
    pub fn watched_payins(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deliver(&self, notice: ChangeNotice) {
        let entries = self.lock();
        match &notice {
            ChangeNotice::Changed(payin) => {
                if let Some(entry) = entries.get(&payin.reference) {
                    let _ = entry.notices.send(notice);
                }
            }
            ChangeNotice::Resync => {
                for entry in entries.values() {
                    let _ = entry.notices.send(ChangeNotice::Resync);
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut entries = self.watchers.lock();
        if let Some(entry) = entries.get_mut(&self.reference) {
            entry.watches -= 1;
            if entry.watches == 0 {
                entry.poller.abort();
                entries.remove(&self.reference);
            }
        }
    }
}

async fn relay(mut changes: broadcast::Receiver<ChangeNotice>, watchers: Weak<Watchers>) {
    loop {
        let notice = match changes.recv().await {
            Ok(notice) => notice,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "change relay fell behind; resyncing watches");
                ChangeNotice::Resync
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(watchers) = watchers.upgrade() else {
            return;
        };
        watchers.deliver(notice);
    }
}

/// Polls Novasend for a watched payin. Every replica with a watcher tries; the store's poll
/// lease lets one of them through per poll interval, however many watchers and replicas, and
/// tells the others when to try next, so each replica asks the store about once an interval.
pub async fn poll_while_watched(payments: Payments, reference: String) {
    let interval = payments.settings().poll_interval;
    // Before the first try, and after the store failed to answer.
    let retry = (interval / 4).max(Duration::from_millis(50));
    let mut pause = retry;
    loop {
        tokio::time::sleep(pause).await;
        match payments.store().try_poll_lease(&reference, interval).await {
            Ok(PollLease::Taken) => pause = interval,
            Ok(PollLease::HeldFor(left)) => {
                pause = left + LEASE_MARGIN;
                continue;
            }
            Err(e) => {
                tracing::debug!(reference, error = %e, "poll lease unavailable");
                pause = retry;
                continue;
            }
        }
        // Boxed: the read's state is large and would otherwise sit in every idle poller.
        let polled =
            Box::pin(payments.refresh(&reference, Language::En, ObservationSource::Poll)).await;
        metrics::counter!(POLLS, "source" => "stream", "result" => if polled.is_ok() { "ok" } else { "error" }).increment(1);
        match polled {
            Ok(Some(payin)) if payin.status.is_terminal() => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(reference, error = %e, "poll failed"),
        }
    }
}
