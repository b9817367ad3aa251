//! The leader-forwarding proxy (`--proxy-listen`): every request that arrives at any replica
//! reaches the current leader's application.
//!
//! It reads the published state ([`StateReceiver`]), never the election. Per request,
//! [`route::route`] decides from the state and the moment of asking: pass it to this pod's
//! application with `X-Elector-Fencing-Token` while this process's claim is valid (the rule of
//! `/readyz`), forward it to the leader's advertised address marked `X-Elector-Forwarded` (one
//! hop: a forwarded request is never forwarded again), or wait for the state to change.
//!
//! - **Waiting** is bounded: at most `--proxy-queue-limit` requests wait at once (beyond it a 503
//!   at once), each at most `--proxy-queue-timeout` from its arrival (then a 503); every 503 of
//!   the proxy carries `Retry-After`.
//! - **A handover costs no request.** A forwarded request that reaches a proxy which will not
//!   lead again (shutting down, or withdrawn from candidacy) is answered at once with a 503
//!   marked `X-Elector-Not-Leader`, before its body is read: it reached no application, so the
//!   forwarding proxy places it again once the state names another leader, if it has no body
//!   (a body already streamed cannot be sent twice; that 503 is passed back to the client).
//!   A connection refused before any byte was written is treated the same way. Nothing else is
//!   retried: idempotency is the application's business.
//! - **In-flight requests drain.** Requests passed to this pod's application are counted until
//!   their response body has been sent; [`Proxy::serving_locally`] lets the release wait for
//!   them. At shutdown the listener stays open until the election has finished (queued
//!   requests go to the new leader), then stops accepting and lets open requests finish until
//!   `--shutdown-timeout` after the stop: the drain adds nothing to the shutdown budget.
//! - **HTTP/1.1** with keep-alive, bodies streamed both ways, connections to the application and
//!   to other proxies pooled. **Upgrades** (`Connection: upgrade`, e.g. WebSocket) are passed to
//!   the leader's application and, on its `101`, tunnelled both ways. **HTTP/2** is not served:
//!   a connection that opens with the HTTP/2 preface (h2c prior knowledge) is answered with an
//!   HTTP/2 `GOAWAY` carrying `HTTP_1_1_REQUIRED` and closed.

mod forward;
mod metrics;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

pub use forward::{Body, FORWARDED_HEADER, NOT_LEADER_HEADER};
pub use metrics::{Outcome, ProxyMetrics};
pub use route::{Route, route};

use crate::status::{LeaderState, StateReceiver};
use forward::Mark;

/// A request head must arrive within this time (also between requests on a kept-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP/2 connection preface a client with prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty HTTP/2 SETTINGS frame (the server's preface), then GOAWAY (last stream 0, error
/// code 0xd HTTP_1_1_REQUIRED), per RFC 9113 §3.4 and §6.8.
const H2_GOAWAY_HTTP_1_1_REQUIRED: &[u8] = &[
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, no parameters
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, 8 bytes
    0, 0, 0, 0, // last stream id
    0, 0, 0, 0xd, // HTTP_1_1_REQUIRED
];

/// What the proxy needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This process's identity, sent in `X-Elector-Forwarded`.
    pub identity: String,
    /// The local application.
    pub upstream: SocketAddr,
    /// How long a request may wait for a leader.
    pub queue_timeout: Duration,
    /// How many requests may wait at once.
    pub queue_limit: u32,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address `--proxy-listen` asked for.
        addr: SocketAddr,
        /// The operating system's refusal.
        #[source]
        source: std::io::Error,
    },
    /// The listener was bound but the operating system would not tell its address.
    #[error("cannot read the bound address of the proxy listener: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// A bound proxy, not serving yet.
#[derive(Debug)]
pub struct Proxy {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    busy: watch::Receiver<bool>,
}

struct Shared {
    settings: Settings,
    /// `settings.upstream` as the request target, written once.
    upstream: String,
    state: StateReceiver,
    client: forward::Upstream,
    metrics: ProxyMetrics,
    waiting: AtomicU32,
    local: AtomicUsize,
    busy: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Binds `addr`; requests are placed by `state`.
pub async fn bind(
    addr: SocketAddr,
    settings: Settings,
    state: StateReceiver,
    metrics: ProxyMetrics,
) -> Result<Proxy, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(Error::LocalAddr)?;
    let (busy_tx, busy) = watch::channel(false);
    Ok(Proxy {
        listener,
        local_addr,
        busy,
        shared: Arc::new(Shared {
            upstream: settings.upstream.to_string(),
            settings,
            state,
            client: forward::upstream(),
            metrics,
            waiting: AtomicU32::new(0),
            local: AtomicUsize::new(0),
            busy: busy_tx,
        }),
    })
}

impl Proxy {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// True while a request passed to this pod's application has not finished (its response
    /// body not yet sent): the release at shutdown waits for it to turn false.
    pub fn serving_locally(&self) -> watch::Receiver<bool> {
        self.busy.clone()
    }

    /// Serves until `shutdown` completes with a deadline, then stops accepting and lets open
    /// requests finish until that deadline (the end of the shutdown budget, so the proxy's drain
    /// does not add to `--shutdown-timeout`).
    pub async fn serve(self, shutdown: impl Future<Output = Instant>) {
        tokio::pin!(shutdown);
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        let deadline = loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                biased;
                deadline = &mut shutdown => break deadline,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: shed, do not spin.
                        tracing::warn!(%error, "proxy: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            let mut draining = drain_rx.clone();
            connections.spawn(async move {
                // Looked at on the connection's own task: a client that connects and says nothing
                // (a pool's spare connection, say) holds up only itself, not the accept loop, and
                // not the drain either.
                let http2 = tokio::select! {
                    http2 = speaks_http2(&stream) => http2,
                    _ = draining.wait_for(|draining| *draining) => return,
                };
                if http2 {
                    refuse_http2(stream).await;
                    return;
                }
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, std::convert::Infallible>(shared.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::pin!(connection);
                let ended = tokio::select! {
                    ended = connection.as_mut() => ended,
                    _ = async { draining.wait_for(|draining| *draining).await.map(|_| ()) } => {
                        // Finish the request in progress, then close.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = ended {
                    tracing::debug!(%peer, %error, "proxy: connection ended with an error");
                }
            });
        };
        drop(self.listener);
        drain_tx.send_replace(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, drained).await.is_err() {
            tracing::warn!("proxy: open requests did not finish within the shutdown timeout");
        }
    }
}

/// Whether the connection opens with the HTTP/2 preface (at least its first line's start).
async fn speaks_http2(stream: &TcpStream) -> bool {
    let mut head = [0u8; 3];
    match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut head)).await {
        Ok(Ok(3)) => head == H2_PREFACE[..3],
        _ => false,
    }
}

async fn refuse_http2(mut stream: TcpStream) {
    let _ = stream.write_all(H2_GOAWAY_HTTP_1_1_REQUIRED).await;
    let _ = stream.shutdown().await;
}

/// Counts a request while it waits for a leader.
struct Waiting<'a>(&'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let depth = self.0.waiting.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        self.0.metrics.set_depth(u64::from(depth));
    }
}

/// Counts a request passed to this pod's application until its response body is done.
struct Local(Arc<Shared>);

impl Local {
    fn new(shared: &Arc<Shared>) -> Self {
        if shared.local.fetch_add(1, Ordering::SeqCst) == 0 {
            shared.busy.send_replace(true);
        }
        Self(shared.clone())
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.0.local.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.busy.send_replace(false);
        }
    }
}

/// Where a request was placed: the routes that send it somewhere.
enum Placed {
    Local { token: u64 },
    Forward { to: String },
}

/// Why a request could not be placed.
enum Unplaced {
    QueueFull,
    TimedOut,
    /// A forwarded request at a proxy that will not lead again.
    WillNotLead,
    /// This replica's election has ended (shutdown) with the request still unplaced.
    ElectionEnded,
}

impl Shared {
    /// Where the request goes, waiting for the state to change while it cannot be placed.
    async fn place(
        &self,
        forwarded: bool,
        refused_by: Option<&str>,
        deadline: Instant,
    ) -> Result<Placed, Unplaced> {
        let mut state = self.state.clone();
        let decide = |state: &LeaderState| route(state, Instant::now(), forwarded, refused_by);
        let mut waiting = None;
        loop {
            match decide(&state.borrow_and_update()) {
                Route::Local { token } => return Ok(Placed::Local { token }),
                Route::Forward { to } => return Ok(Placed::Forward { to }),
                Route::NotLeader => return Err(Unplaced::WillNotLead),
                Route::Wait => {}
            }
            if waiting.is_none() {
                let before = self.waiting.fetch_add(1, Ordering::SeqCst);
                let guard = Waiting(self);
                if before >= self.settings.queue_limit {
                    return Err(Unplaced::QueueFull);
                }
                self.metrics.queued(u64::from(before) + 1);
                waiting = Some(guard);
            }
            match tokio::time::timeout_at(deadline, state.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Unplaced::ElectionEnded),
                Err(_) => return Err(Unplaced::TimedOut),
            }
        }
    }

    fn reject(&self, response: Response<Body>) -> Response<Body> {
        self.metrics.count(Outcome::Rejected);
        response
    }

    async fn handle(self: Arc<Self>, mut request: Request<Incoming>) -> Response<Body> {
        let arrived = Instant::now();
        let deadline = arrived + self.settings.queue_timeout;
        let forwarded = request.headers().contains_key(FORWARDED_HEADER);
        let client_upgrade = forward::is_upgrade(request.headers()).then(|| hyper::upgrade::on(&mut request));
        let (parts, body) = request.into_parts();
        let bodiless = body.is_end_stream();
        let mut body = Some(body.boxed_unsync());
        let mut refused_by: Option<String> = None;
        loop {
            let placed = match self.place(forwarded, refused_by.as_deref(), deadline).await {
                Ok(placed) => placed,
                Err(Unplaced::QueueFull) => {
                    return self.reject(forward::answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "no leader to take the request, and {} requests are already waiting for one \
                             (--proxy-queue-limit)\n",
                            self.settings.queue_limit
                        ),
                    ));
                }
                Err(Unplaced::TimedOut) => {
                    return self.reject(forward::answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "no leader took the request within {} ms (--proxy-queue-timeout)\n",
                            self.settings.queue_timeout.as_millis()
                        ),
                    ));
                }
                Err(Unplaced::ElectionEnded) => {
                    return self.reject(forward::answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "this replica is shutting down and no new leader was seen in time\n".to_owned(),
                    ));
                }
                Err(Unplaced::WillNotLead) => {
                    let mut response = forward::answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{} is not the leader and will not lead\n", self.settings.identity),
                    );
                    if let Ok(value) = hyper::header::HeaderValue::from_str(&self.settings.identity) {
                        response.headers_mut().insert(NOT_LEADER_HEADER, value);
                    }
                    return self.reject(response);
                }
            };
            let (target, mark, outcome) = match &placed {
                Placed::Local { token } => (self.upstream.as_str(), Mark::Token(*token), Outcome::Local),
                Placed::Forward { to } => (
                    to.as_str(),
                    Mark::ForwardedBy(&self.settings.identity),
                    Outcome::Forwarded,
                ),
            };
            let send_body = body.take().unwrap_or_else(forward::empty);
            let outgoing = match forward::outgoing(&parts, send_body, target, mark) {
                Ok(outgoing) => outgoing,
                Err(reason) => return self.reject(forward::answer(StatusCode::BAD_GATEWAY, reason + "\n")),
            };
            let local = matches!(outcome, Outcome::Local).then(|| Local::new(&self));
            let sent = Instant::now();
            let mut response = match self.client.request(outgoing).await {
                Ok(response) => response,
                Err(error) => {
                    // Refused before any byte was written: it reached no one, place it again
                    // (elsewhere: not back to this address until the state changes).
                    let unsent = error.is_connect();
                    if unsent && bodiless && matches!(outcome, Outcome::Forwarded) {
                        refused_by = Some(target.to_owned());
                        continue;
                    }
                    let status = if unsent {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::BAD_GATEWAY
                    };
                    let why = error_chain(&error);
                    tracing::debug!(%target, error = %why, "proxy: request failed");
                    return self.reject(forward::answer(
                        status,
                        format!("{target} did not answer: {why}\n"),
                    ));
                }
            };
            let upstream_time = sent.elapsed();
            if matches!(outcome, Outcome::Forwarded)
                && bodiless
                && response.headers().contains_key(NOT_LEADER_HEADER)
            {
                refused_by = Some(target.to_owned());
                continue;
            }
            self.metrics.count(outcome);
            if response.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(client_upgrade) = client_upgrade
            {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(async move {
                    if let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await) {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(client),
                            &mut TokioIo::new(upstream),
                        )
                        .await;
                    }
                });
                self.metrics
                    .added(arrived.elapsed().saturating_sub(upstream_time));
                return forward::passed_back(response, |_| forward::empty());
            }
            let response = forward::passed_back(response, move |incoming| {
                // The local count ends when the body is done (or dropped): the closure owns it.
                incoming
                    .map_err(move |error| {
                        let _ = &local;
                        error
                    })
                    .boxed_unsync()
            });
            self.metrics
                .added(arrived.elapsed().saturating_sub(upstream_time));
            return response;
        }
    }
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
