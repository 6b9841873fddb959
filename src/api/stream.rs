//! StreamPayinUpdates: a producer task per stream → mpsc → the response stream. The task
//! stops when the client goes away, when the payin reaches a terminal status, or when the
//! server shuts down (after the drain period, with UNAVAILABLE).

use super::{convert, error};
use crate::domain::{Language, ObservationSource, Payin, PayinStatus, Progress};
use crate::events::watchers::{Watch, Watchers, poll_while_watched};
use crate::payments::Payments;
use crate::proto as pb;
use crate::store::ChangeNotice;
use crate::telemetry::metrics::{OPEN_STREAMS, SHED};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Messages a slow client may leave unread before the producer waits for it.
const STREAM_BUFFER: usize = 16;

/// What streams share: where changes come from, the signal that ends them at shutdown, and
/// the bound on how many may be open.
#[derive(Clone)]
pub struct Streams {
    pub watchers: Arc<Watchers>,
    /// Turns true when the drain period is over.
    pub closing: watch::Receiver<bool>,
    pub open: Arc<AtomicUsize>,
    pub max_open: usize,
}

/// Counts an open stream for as long as its producer runs.
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn try_open(streams: &Streams) -> Option<Self> {
        let admitted = streams
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < streams.max_open).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| {
            metrics::gauge!(OPEN_STREAMS).increment(1.0);
            OpenStream(streams.open.clone())
        })
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(OPEN_STREAMS).decrement(1.0);
    }
}

type Item = Result<pb::PayinUpdate, Status>;

/// Messages wait boxed in the channel: a channel's block holds 32 slots whatever its bound,
/// and an unboxed update is large, so 10,000 streams would keep hundreds of MB of slots.
pub type UpdateStream = futures_util::stream::Map<ReceiverStream<Box<Item>>, fn(Box<Item>) -> Item>;

fn unbox(item: Box<Item>) -> Item {
    *item
}

/// Opens a stream on `reference`: NOT_FOUND (or another error) before any message, else the
/// snapshot at once and the changes after it.
pub async fn open(
    payments: &Payments,
    streams: &Streams,
    reference: &str,
    language: Language,
) -> Result<UpdateStream, Status> {
    let Some(open) = OpenStream::try_open(streams) else {
        metrics::counter!(SHED, "reason" => "max_streams").increment(1);
        return Err(Status::resource_exhausted(language.pick(
            "too many open streams on this server; retry later",
            "trop de flux ouverts sur ce serveur ; réessayez plus tard",
        )));
    };
    // Subscribe first, then read: a change between the two is then seen, never lost.
    let watch = streams.watchers.watch(reference, || {
        tokio::spawn(poll_while_watched(payments.clone(), reference.to_owned()))
    });
    let snapshot = payments
        .get(reference, false, language)
        .await
        .map_err(|e| error::to_status(&e, language))?;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let first = update(&snapshot, None, pb::UpdateSource::Snapshot, 1);
    // The channel is new and empty: the snapshot always fits.
    let _ = sender.try_send(Box::new(Ok(first)));
    // After a terminal snapshot the stream ends (the sender goes with this function).
    if !snapshot.status.is_terminal() {
        tokio::spawn(produce(
            Producer {
                _open: open,
                payments: payments.clone(),
                reference: snapshot.reference.clone(),
                sender,
                language,
            },
            watch,
            snapshot.progress(),
            streams.closing.clone(),
        ));
    }
    Ok(ReceiverStream::new(receiver).map(unbox as fn(Box<Item>) -> Item))
}

/// What a stream's task holds for its whole life, kept small: 10,000 of them may be open.
struct Producer {
    _open: OpenStream,
    payments: Payments,
    reference: String,
    sender: mpsc::Sender<Box<Item>>,
    language: Language,
}

impl Producer {
    /// Sends one message; `false` when the client is gone. Boxed, so that the send's state
    /// is not part of every idle stream's task.
    async fn send(&self, item: Item) -> bool {
        Box::pin(self.sender.send(Box::new(item))).await.is_ok()
    }

    /// The payin as stored now; `None` when there is nothing new to read (or the store is
    /// away, which `outage` tracks).
    async fn reread(&self, outage: &mut Option<Instant>, limit: Duration) -> Reread {
        match Box::pin(self.payments.store().load_payin(&self.reference)).await {
            Ok(stored) => {
                *outage = None;
                stored.map_or(Reread::Nothing, |p| Reread::Payin(Arc::new(p)))
            }
            Err(e) => {
                let since = *outage.get_or_insert_with(Instant::now);
                tracing::warn!(reference = self.reference, error = %e, "stream cannot read the store");
                if since.elapsed() >= limit {
                    Reread::GiveUp(error::store_unavailable(&e, self.language))
                } else {
                    Reread::Nothing
                }
            }
        }
    }
}

enum Reread {
    Payin(Arc<Payin>),
    Nothing,
    GiveUp(Status),
}

fn update(
    payin: &Payin,
    previous: Option<PayinStatus>,
    source: pb::UpdateSource,
    sequence: u64,
) -> pb::PayinUpdate {
    pb::PayinUpdate {
        payin: Some(convert::payin(payin)),
        previous_status: previous.map_or(pb::PayinStatus::Unspecified, convert::payin_status)
            as i32,
        sequence,
        source: source as i32,
        observed_at: Some(convert::timestamp(payin.updated_at)),
    }
}

fn source(observed: ObservationSource) -> pb::UpdateSource {
    match observed {
        ObservationSource::Api => pb::UpdateSource::Api,
        ObservationSource::Webhook => pb::UpdateSource::Webhook,
        ObservationSource::Poll => pb::UpdateSource::Poll,
    }
}

async fn produce(
    producer: Producer,
    mut watch: Watch,
    mut last: Progress,
    mut closing: watch::Receiver<bool>,
) {
    let mut sequence = 1;
    // A re-read now and then catches an announcement lost while the feed reconnected, and
    // notices a store outage so that the stream never hangs on it.
    let check_every = producer.payments.settings().poll_interval;
    let outage_limit = (check_every * 2).max(Duration::from_secs(2));
    let mut store_down_since: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            () = producer.sender.closed() => return,
            () = closed(&mut closing) => {
                producer.send(Err(Status::unavailable(producer.language.pick(
                    "the server is shutting down; reopen the stream",
                    "le serveur s'arrête ; rouvrez le flux",
                )))).await;
                return;
            }
            notice = watch.notices.recv() => match notice {
                Ok(ChangeNotice::Changed(payin)) => Reread::Payin(payin),
                Ok(ChangeNotice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    producer.reread(&mut store_down_since, outage_limit).await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(check_every) => {
                producer.reread(&mut store_down_since, outage_limit).await
            }
        };
        let payin = match next {
            Reread::Payin(payin) => payin,
            Reread::Nothing => continue,
            Reread::GiveUp(status) => {
                producer.send(Err(status)).await;
                return;
            }
        };
        // Announcements from several replicas may cross: an older state is never sent after
        // a newer one, status then confirmation then transaction. (Versions are not
        // compared: they restart if Redis loses its data.)
        let progress = payin.progress();
        if progress == last || !last.may_become(&progress) {
            continue;
        }
        sequence += 1;
        let message = update(
            &payin,
            Some(last.status),
            source(payin.last_source),
            sequence,
        );
        if !producer.send(Ok(message)).await || payin.status.is_terminal() {
            return;
        }
        last = progress;
    }
}

/// Completes when the drain period is over (or the server is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}
