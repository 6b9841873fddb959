//! The change feed: one pub/sub subscription per replica, relayed to its watchers.

use super::{CHANGES_CHANNEL, KindDescription, OPERATION_TIMEOUT};
use crate::domain::Payin;
use crate::store::ChangeNotice;
use futures_util::StreamExt;
use redis::RedisError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Relays the changes channel to this replica's watchers for as long as the store lives,
/// reconnecting (with a bounded pause) whenever Redis goes away. After every (re)connection
/// the watchers are told to resync, since announcements made meanwhile were lost.
pub async fn follow_changes(client: redis::Client, changes: broadcast::Sender<ChangeNotice>) {
    const PAUSE_MIN: Duration = Duration::from_millis(100);
    const PAUSE_MAX: Duration = Duration::from_secs(2);
    let mut pause = PAUSE_MIN;
    loop {
        let subscribed = tokio::time::timeout(OPERATION_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANGES_CHANNEL).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                pause = PAUSE_MIN;
                let _ = changes.send(ChangeNotice::Resync);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    match serde_json::from_slice::<Payin>(message.get_payload_bytes()) {
                        Ok(payin) => {
                            let _ = changes.send(ChangeNotice::Changed(Arc::new(payin)));
                        }
                        Err(e) => tracing::warn!("unreadable change announcement: {e}"),
                    }
                }
                tracing::warn!("redis change feed lost; reconnecting");
                let _ = changes.send(ChangeNotice::Resync);
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e.kind_description(), "redis change feed unavailable")
            }
            Err(_) => tracing::debug!("redis change feed connection timed out"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PAUSE_MAX);
    }
}
