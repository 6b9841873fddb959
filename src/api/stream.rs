//! StreamPayinUpdates: a producer task per stream → mpsc → the response stream. The task
//! stops when the client goes away, when the payin reaches a terminal status, or when the
//! server shuts down (after the drain period, with UNAVAILABLE).

use super::{convert, error};
use crate::domain::{Language, ObservationSource, Payin, PayinStatus};
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
    tokio::spawn(produce(
        open,
        payments.clone(),
        watch,
        snapshot,
        sender,
        streams.closing.clone(),
        language,
    ));
    Ok(ReceiverStream::new(receiver).map(unbox as fn(Box<Item>) -> Item))
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
    _open: OpenStream,
    payments: Payments,
    mut watch: Watch,
    snapshot: Payin,
    sender: mpsc::Sender<Box<Item>>,
    mut closing: watch::Receiver<bool>,
    language: Language,
) {
    let reference = snapshot.reference.clone();
    let mut sequence = 1;
    if sender
        .send(Box::new(Ok(update(
            &snapshot,
            None,
            pb::UpdateSource::Snapshot,
            sequence,
        ))))
        .await
        .is_err()
    {
        return;
    }
    let mut last = snapshot.progress();
    if snapshot.status.is_terminal() {
        return;
    }
    // A re-read now and then catches an announcement lost while the feed reconnected, and
    // notices a store outage so that the stream never hangs on it.
    let check_every = payments.settings().poll_interval;
    let outage_limit = (check_every * 2).max(Duration::from_secs(2));
    let mut store_down_since: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            () = sender.closed() => return,
            () = closed(&mut closing) => {
                let _ = sender.send(Box::new(Err(Status::unavailable(language.pick(
                    "the server is shutting down; reopen the stream",
                    "le serveur s'arrête ; rouvrez le flux",
                ))))).await;
                return;
            }
            notice = watch.notices.recv() => match notice {
                Ok(ChangeNotice::Changed(payin)) => Some(Arc::unwrap_or_clone(payin)),
                Ok(ChangeNotice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(check_every) => None,
        };
        let payin = match next {
            Some(announced) => announced,
            // Boxed: the read's state would otherwise sit in every idle stream's task.
            None => match Box::pin(payments.store().load_payin(&reference)).await {
                Ok(Some(stored)) => {
                    store_down_since = None;
                    stored
                }
                Ok(None) => {
                    store_down_since = None;
                    continue;
                }
                Err(e) => {
                    let since = *store_down_since.get_or_insert_with(Instant::now);
                    tracing::warn!(reference, error = %e, "stream cannot read the store");
                    if since.elapsed() >= outage_limit {
                        let _ = sender
                            .send(Box::new(Err(error::store_unavailable(&e, language))))
                            .await;
                        return;
                    }
                    continue;
                }
            },
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
        if sender.send(Box::new(Ok(message))).await.is_err() || payin.status.is_terminal() {
            return;
        }
        last = progress;
    }
}

/// Completes when the drain period is over (or the server is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}
