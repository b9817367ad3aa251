//! What the outputs that follow leadership share: the pod label, the pod deletion cost and the
//! EndpointSlice each keep one thing outside the process in step with "is this process leader
//! now?", retrying a failed write every retry period and noticing a claim that lapses with no
//! news (a timer at its deadline), until shutdown.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::time::{Instant, sleep_until};

use crate::metrics::{ElectionMetrics, Verb};
use crate::status::StateReceiver;

/// Calls `apply(leading)` whenever leadership (computed when asked, on the monotonic clock)
/// differs from what was last applied, until `shutdown` or the state's sender is gone. A failed
/// apply (`false`) is tried again a `retry` period later. Returns what was last applied (`None`
/// if nothing was), for the caller's last word at shutdown.
pub(crate) async fn follow<F, Fut>(
    state: &mut StateReceiver,
    retry: Duration,
    shutdown: impl Future<Output = ()>,
    mut apply: F,
) -> Option<bool>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::pin!(shutdown);
    let mut applied: Option<bool> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let snapshot = state.borrow_and_update().clone();
        let leading = snapshot.is_leader_at(now);
        if applied != Some(leading) && retry_at.is_none_or(|at| at <= now) {
            if apply(leading).await {
                applied = Some(leading);
                retry_at = None;
            } else {
                retry_at = Some(crate::clock::later(Instant::now(), retry));
            }
            continue;
        }
        let lapse = snapshot.valid_until.filter(|_| leading);
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            changed = state.changed() => if changed.is_err() { break },
            () = sleep_until(lapse.unwrap_or(now)), if lapse.is_some() => {}
            () = sleep_until(retry_at.unwrap_or(now)), if retry_at.is_some() => {}
        }
    }
    applied
}

/// One JSON merge patch of the pod `pod`, abandoned after `timeout` and counted in `metrics`;
/// the error says why, for a log line.
pub(crate) async fn patch_pod(
    api: &Api<Pod>,
    pod: &str,
    body: serde_json::Value,
    metrics: &ElectionMetrics,
    timeout: Duration,
) -> Result<(), String> {
    let patch = Patch::Merge(body);
    let params = PatchParams::default();
    let request = api.patch(pod, &params, &patch);
    match metrics.call(Verb::Patch, timeout, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(status))) => Err(format!("{} {}", status.code, status.message)),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}
