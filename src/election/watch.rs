//! The watch on the lock: one task keeps a watch open on the lock object and reports to the
//! election loop what it sees, and whether it is up.
//!
//! It resumes from the last resourceVersion after the server ends a watch, starts over from the
//! current state after `410 Gone`, treats a watch the server ends early as a failure (so a
//! flapping connection cannot make it spin), and backs off from the retry period up to the
//! lease duration, with jitter, while the watch fails.
//!
//! Why not kube-runtime's `watcher::watch_object` (and its `default_backoff`)? It reduces the
//! stream to `Option<K>` and hides the connection, and the election needs what that drops:
//!
//! - the DELETED event's last state: the highest fencing token the lock showed before it went,
//!   which a recreated lock must exceed ([`Change::Deleted`]);
//! - the resourceVersion of every event, deletions and bookmarks included, so out-of-order or
//!   repeated news is recognised as stale (`decide::freshness`);
//! - [`WatchNews::Connected`] and [`WatchNews::Lost`], so a follower polls exactly while the
//!   watch is down and stops when it is back (`watch_object` retries inside the stream, and its
//!   errors say nothing of when the watch is up again).

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Timing;
use super::lock::{Change, KubeLock, LockObject, WatchError};

/// How long a watch asks the server to keep it open before it is renewed.
const WATCH_SERVER_TIMEOUT: Duration = Duration::from_secs(290);

/// News from the watch task.
#[derive(Debug)]
pub enum WatchNews<K> {
    /// A watch was opened: news arrives from here on.
    Connected,
    /// The lock changed (or a bookmark moved on).
    Changed(Change<K>),
    /// The watch failed for this reason; it is retried after a backoff.
    Lost(String),
}

/// Keeps a watch open on the lock and reports what it sees; resumes from the last
/// resourceVersion after the server ends a watch, starts over from the current state after
/// `410 Gone`, and backs off (reporting the loss, so the loop polls) when the watch fails.
pub async fn watch_lock<K: LockObject>(lock: KubeLock<K>, timing: Timing, news: mpsc::Sender<WatchNews<K>>) {
    let mut version = String::new();
    let mut backoff = timing.retry_period;
    let max_backoff = timing.lease_duration.max(timing.retry_period);
    loop {
        let server_timeout = WATCH_SERVER_TIMEOUT.mul_f64(1.0 - rand::random::<f64>() * 0.1);
        let opened = Instant::now();
        let failure = match lock.watch(&version, server_timeout, timing.renew_deadline).await {
            Err(error) => Some(error.to_string()),
            Ok(mut stream) => {
                if news.send(WatchNews::Connected).await.is_err() {
                    return;
                }
                backoff = timing.retry_period;
                let mut failure = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(change) => {
                            match &change {
                                Change::Present(snapshot) => {
                                    version = snapshot.resource_version().unwrap_or_default()
                                }
                                Change::Deleted(Some(v), _) | Change::Bookmark(v) => version = v.clone(),
                                Change::Deleted(None, _) => {}
                            }
                            if news.send(WatchNews::Changed(change)).await.is_err() {
                                return;
                            }
                        }
                        Err(WatchError::Expired(reason)) => {
                            tracing::debug!(%reason, "watch expired; starting over from the current state");
                            version.clear();
                            break;
                        }
                        Err(WatchError::Failed(reason)) => {
                            failure = Some(reason);
                            break;
                        }
                    }
                }
                // A server ends a healthy watch only at its timeout; one that ends much sooner
                // is treated as a failure so a flapping connection cannot make this spin.
                if failure.is_none() && !version.is_empty() && opened.elapsed() < server_timeout / 2 {
                    failure = Some("the server closed the watch early".to_owned());
                }
                failure
            }
        };
        if let Some(reason) = failure {
            if news.send(WatchNews::Lost(reason)).await.is_err() {
                return;
            }
            tokio::time::sleep(backoff.mul_f64(1.0 + rand::random::<f64>() * super::JITTER_FACTOR)).await;
            backoff = backoff.saturating_mul(2).min(max_backoff);
        }
    }
}
