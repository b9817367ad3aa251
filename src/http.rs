//! The HTTP surface: one HTTP/1.1 listener serving probes, status JSON and metrics.
//!
//! Endpoints (GET and HEAD; any other method gets 405 with `Allow: GET, HEAD`; other paths 404):
//!
//! - `/readyz`: 200 only while this process is leader *and* its validity deadline has not passed
//!   ([`LeaderState::is_leader_at`], judged at the moment of the request, so a paused or starved
//!   election loop never leaves a stale "ready"); 503 otherwise. The 200 carries
//!   `X-Elector-Fencing-Token`.
//! - `/livez`, `/healthz`: 200 while the election loop made progress within the liveness bound
//!   (lease duration + renew deadline) and is still running; 503 otherwise. Never depends on
//!   leadership or on the API server being reachable.
//! - `/readyz/pod-label`: readiness for the pod-label variant: 503 while the pod may carry the
//!   `leader` label ([`crate::pod_label::LabelStatus`]) but this process's claim is not valid (a
//!   partitioned ex-leader that cannot reset its label), or while `/livez` fails; 200 otherwise.
//!   Without `--pod-label` it answers as `/livez`.
//! - `/readyz/proxy`: readiness for the proxy variant (`--proxy-listen`): 200 while this
//!   replica's proxy is listening and can place requests (`/livez` passes and, with
//!   `--app-health`, the application is healthy), whoever leads; 503 with the reason otherwise,
//!   also when the proxy is off.
//! - `/`, `/status`: JSON built from the state by [`StatusBody`]: vapor-ware k8s-elector's fields
//!   (`is_leader`, `leader`, `node`, `timestamp`), the contrib leader-elector's `name`, and more.
//! - `/metrics`: OpenMetrics text; state-derived families are brought up to date first.
//!
//! [`bind`] and [`Server::serve`] are separate so tests can bind `127.0.0.1:0` and learn the port.
//! The server never stops accepting, so no number of idle or slow connections from other
//! addresses can starve a probe: a connection beyond the cap ([`MAX_CONNECTIONS`]) closes the
//! oldest connection of the peer holding the most, one beyond [`MAX_CONNECTIONS_PER_PEER`] from
//! one address closes that address's oldest, instead of waiting for a slot. Each new connection
//! gets its first poll before the next accept (a probe's request is answered at once). The listen
//! backlog is [`LISTEN_BACKLOG`], so a flood needs thousands of connections to fill the kernel's
//! accept queue and delay a probe's handshake. A request head must arrive within
//! [`HEADER_READ_TIMEOUT`] (1 s; probes and scrapers send theirs at once), also between requests
//! on a kept-alive connection. Running out of file descriptors sheds a connection rather than
//! spinning or ending the accept loop. Each connection runs in its own tracing span; shutdown
//! drains gracefully. Handlers are plain functions of ([`Method`], path, now) and are tested
//! without a socket.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use crate::clock::{WallClock, monotonic_ns};
use crate::config::Config;
use crate::metrics::ElectionMetrics;
use crate::pod_label::LabelStatus;
use crate::status::{LeaderState, StateReceiver};

/// Header carrying the fencing token on a 200 from `/readyz`.
pub const FENCING_TOKEN_HEADER: &str = "x-elector-fencing-token";
/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Most connections open at once; a new connection beyond it closes the busiest peer's oldest.
pub const MAX_CONNECTIONS: usize = 256;
/// Most connections open at once from one peer address; beyond it, that peer's oldest closes.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;
/// A client must send a complete request head within this time. Probes and scrapers send theirs
/// at once; a connection that sits silent this long is holding a slot for nothing.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Read buffer cap per connection (hyper's minimum is 8 KiB); requests here are a line and a few headers.
pub const MAX_BUF_SIZE: usize = 16 * 1024;
/// How long open connections may finish their current request after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// What went wrong with the listener.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound to the configured address.
    #[error("cannot listen on {addr}: {source}; pick another --http address or free the port")]
    Bind {
        /// The address `--http` asked for.
        addr: SocketAddr,
        /// The operating system's refusal (address in use, permission denied, ...).
        #[source]
        source: std::io::Error,
    },
    /// The listener was bound but the operating system would not tell its address.
    #[error("cannot read the bound address of the listener: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// Everything a handler reads: the published state, the metrics, and fixed facts of the election.
#[derive(Debug)]
pub struct Context {
    state: StateReceiver,
    registry: Arc<Registry>,
    metrics: ElectionMetrics,
    election: String,
    namespace: String,
    lock_type: String,
    liveness_bound: Duration,
    wall_clock: WallClock,
    pod_label: Option<LabelStatus>,
    app_health: Option<crate::app_health::HealthReceiver>,
    /// Exec mode's command, for the `child` object of the status JSON.
    child: Option<crate::exec::StatusReceiver>,
    endpoint_slice: Option<crate::endpoint_slice::StatusReceiver>,
    /// The leader-forwarding proxy is listening.
    proxy: bool,
}

impl Context {
    /// The context for a running sidecar.
    pub fn new(
        state: StateReceiver,
        registry: Arc<Registry>,
        metrics: ElectionMetrics,
        config: &Config,
    ) -> Self {
        Self::from_parts(
            state,
            registry,
            metrics,
            &config.election,
            &config.namespace,
            config.lock_type.as_str(),
            config.liveness_bound(),
        )
    }

    /// The context from its parts, for tests and embedders.
    pub fn from_parts(
        state: StateReceiver,
        registry: Arc<Registry>,
        metrics: ElectionMetrics,
        election: &str,
        namespace: &str,
        lock_type: &str,
        liveness_bound: Duration,
    ) -> Self {
        Self {
            state,
            registry,
            metrics,
            election: election.to_owned(),
            namespace: namespace.to_owned(),
            lock_type: lock_type.to_owned(),
            liveness_bound,
            wall_clock: WallClock::system(),
            pod_label: None,
            app_health: None,
            child: None,
            endpoint_slice: None,
            proxy: false,
        }
    }

    /// The leader-forwarding proxy is listening: `/readyz/proxy` may answer 200.
    pub fn with_proxy(mut self) -> Self {
        self.proxy = true;
        self
    }

    /// Adds exec mode's `child` object (state, pid, started, restarts, last exit) to `/status`.
    pub fn with_child(mut self, status: crate::exec::StatusReceiver) -> Self {
        self.child = Some(status);
        self
    }

    /// Lets `/readyz/pod-label` follow what the pod label may say.
    pub fn with_pod_label(mut self, status: LabelStatus) -> Self {
        self.pod_label = Some(status);
        self
    }

    /// Shows the application's health (`--app-health`) in the status JSON.
    pub fn with_app_health(mut self, health: crate::app_health::HealthReceiver) -> Self {
        self.app_health = Some(health);
        self
    }

    /// Shows the EndpointSlice writer's status under `endpoint_slice` in the status JSON.
    pub fn with_endpoint_slice(mut self, status: crate::endpoint_slice::StatusReceiver) -> Self {
        self.endpoint_slice = Some(status);
        self
    }

    /// Uses `clock` for the wall-clock `timestamp` of the status JSON.
    pub fn with_wall_clock(mut self, clock: WallClock) -> Self {
        self.wall_clock = clock;
        self
    }

    /// Answers one request at the current time.
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        self.respond(request.method(), request.uri().path(), Instant::now())
    }

    /// Answers `method path` as of `now`. HEAD gets the GET answer's status and headers, no body.
    pub fn respond(&self, method: &Method, path: &str, now: Instant) -> Response<Full<Bytes>> {
        let route = match path {
            "/readyz" => Self::readyz,
            "/livez" | "/healthz" => Self::livez,
            "/readyz/pod-label" => Self::pod_label_readyz,
            "/readyz/proxy" => Self::proxy_readyz,
            "/" | "/status" => Self::status,
            "/metrics" => Self::metrics,
            _ => {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!("not found: {path}; try /status, /readyz, /livez or /metrics\n"),
                );
            }
        };
        if method != Method::GET && method != Method::HEAD {
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: use GET or HEAD\n".to_owned(),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let state = self.state.borrow().clone();
        let mut response = route(self, &state, now);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if method == Method::HEAD {
            let length = response.body().size_hint_exact();
            *response.body_mut() = Full::new(Bytes::new());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        response
    }

    fn readyz(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        if state.is_leader_at(now) {
            let Some(token) = state.fencing_token else {
                return plain(
                    StatusCode::OK,
                    format!("leader: {} (no fencing token)\n", state.identity),
                );
            };
            let mut response = plain(
                StatusCode::OK,
                format!("leader: {} (fencing token {token})\n", state.identity),
            );
            response
                .headers_mut()
                .insert(FENCING_TOKEN_HEADER, HeaderValue::from(token));
            return response;
        }
        let reason = if state.shutting_down {
            "not leader: shutting down".to_owned()
        } else if state.claims_leadership() {
            "not leader: the claim's validity deadline has passed without a renew".to_owned()
        } else {
            match &state.leader {
                Some(leader) => format!("not leader: leader is {leader}"),
                None => "not leader: no leader".to_owned(),
            }
        };
        plain(StatusCode::SERVICE_UNAVAILABLE, reason + "\n")
    }

    fn livez(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        if self.state.has_changed().is_err() {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not live: the election loop has stopped\n".to_owned(),
            );
        }
        let idle = now.saturating_duration_since(state.last_progress);
        if idle > self.liveness_bound {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not live: no progress from the election loop for {} ms (bound {} ms)\n",
                    idle.as_millis(),
                    self.liveness_bound.as_millis()
                ),
            );
        }
        plain(
            StatusCode::OK,
            format!("ok: last progress {} ms ago\n", idle.as_millis()),
        )
    }

    fn proxy_readyz(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        if !self.proxy {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the proxy is off (no --proxy-listen)\n".to_owned(),
            );
        }
        let live = self.livez(state, now);
        if live.status() != StatusCode::OK {
            return live;
        }
        if let Some(health) = &self.app_health {
            let health = health.borrow();
            if health.state != crate::app_health::AppState::Healthy {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: the application is {}\n", health.state.as_str()),
                );
            }
        }
        plain(
            StatusCode::OK,
            match &state.leader {
                Some(leader) => format!("ready: proxying to the leader, {leader}\n"),
                None => "ready: proxying; requests wait for a leader\n".to_owned(),
            },
        )
    }

    fn pod_label_readyz(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        let live = self.livez(state, now);
        if live.status() != StatusCode::OK {
            return live;
        }
        let may_be_leader = self.pod_label.as_ref().is_some_and(|status| *status.borrow());
        if may_be_leader && !state.is_leader_at(now) {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the pod may still be labelled leader but this process's claim is not \
                 valid (the label could not be reset yet)\n"
                    .to_owned(),
            );
        }
        plain(
            StatusCode::OK,
            "ok: the pod label does not claim more than this process holds\n".to_owned(),
        )
    }

    fn status(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        let mut body = StatusBody::new(
            state,
            now,
            self.wall_clock.now(),
            &self.election,
            &self.namespace,
            &self.lock_type,
        )
        .with_app_health(self.app_health.as_ref().map(|health| health.borrow().clone()));
        body.endpoint_slice = self.endpoint_slice.as_ref().map(|status| status.borrow().clone());
        let encoded = match &self.child {
            None => serde_json::to_vec(&body),
            Some(child) => serde_json::to_value(&body).and_then(|mut value| {
                value["child"] = serde_json::to_value(&*child.borrow())?;
                serde_json::to_vec(&value)
            }),
        };
        match encoded {
            Ok(mut json) => {
                json.push(b'\n');
                with_type(StatusCode::OK, JSON, json)
            }
            Err(error) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the status: {error}\n"),
            ),
        }
    }

    fn metrics(&self, state: &LeaderState, now: Instant) -> Response<Full<Bytes>> {
        self.metrics.observe_state(state, now);
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            Ok(()) => with_type(StatusCode::OK, OPENMETRICS_CONTENT_TYPE, text.into_bytes()),
            Err(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n".to_owned(),
            ),
        }
    }
}

/// The status JSON. Field names are a compatibility contract: k8s-elector reads `is_leader`,
/// `leader`, `node`, `timestamp`; the contrib leader-elector reads `name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    /// This process is leader now (leader and validity deadline not passed).
    pub is_leader: bool,
    /// The holder named by the lock, `""` if none.
    pub leader: String,
    /// This process's identity.
    pub node: String,
    /// Wall-clock time of the answer, RFC 3339 UTC to the second (`2019-05-02T18:28:51Z`).
    pub timestamp: String,
    /// The holder again, under the contrib leader-elector's name.
    pub name: String,
    /// The election's name, which is the lock object's name.
    pub election: String,
    /// The namespace the lock object lives in.
    pub namespace: String,
    /// The lock kind's plural API name: `leases`, `configmaps` or `endpoints`.
    pub lock_type: String,
    /// The fencing token while leader, else `null`.
    pub fencing_token: Option<u64>,
    /// When this process became leader (RFC 3339), while it claims leadership.
    pub leader_since: Option<String>,
    /// Milliseconds of validity left on the claim (0 once passed), `null` while not claiming.
    pub valid_for_ms: Option<u64>,
    /// The message of the last failed step, `null` once an attempt goes through.
    pub last_error: Option<String>,
    /// The moment of the answer on `CLOCK_MONOTONIC`, comparable with other processes' logs.
    pub monotonic_ns: u64,
    /// The claim's validity deadline on `CLOCK_MONOTONIC`, while claiming.
    pub valid_until_monotonic_ns: Option<u64>,
    /// Transition count of the most recently observed lock record.
    pub observed_transitions: Option<u64>,
    /// This process's incarnation (fresh at every start).
    #[serde(default)]
    pub incarnation: String,
    /// Another live process's incarnation holding the lock under this identity, while it does.
    #[serde(default)]
    pub identity_conflict: Option<String>,
    /// The EndpointSlice writer's view, with `--endpoint-slice` only (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_slice: Option<crate::endpoint_slice::SliceStatus>,
    /// Whether this process stands for election (false while its application is unhealthy).
    #[serde(default = "standing_by_default")]
    pub candidate: bool,
    /// The application's health check (`--app-health`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_health: Option<AppHealthBody>,
}

fn standing_by_default() -> bool {
    true
}

/// The application's health in the status JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHealthBody {
    /// `starting` (not passed yet), `healthy` or `unhealthy`.
    pub state: String,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Passed checks in a row.
    pub consecutive_successes: u32,
    /// Why the most recent failed check failed, if any has.
    pub last_error: Option<String>,
}

impl StatusBody {
    /// The DTO for `state` as of `now` (monotonic) and `wall` (wall clock).
    pub fn new(
        state: &LeaderState,
        now: Instant,
        wall: jiff::Timestamp,
        election: &str,
        namespace: &str,
        lock_type: &str,
    ) -> Self {
        let leader = state.leader.clone().unwrap_or_default();
        let valid_until = state.valid_until.filter(|_| state.claims_leadership());
        let to_u64 = |ns: u128| u64::try_from(ns).unwrap_or(u64::MAX);
        Self {
            is_leader: state.is_leader_at(now),
            name: leader.clone(),
            leader,
            node: state.identity.clone(),
            timestamp: rfc3339_seconds(wall),
            election: election.to_owned(),
            namespace: namespace.to_owned(),
            lock_type: lock_type.to_owned(),
            fencing_token: state.fencing_token_at(now),
            leader_since: state
                .leader_since
                .filter(|_| state.claims_leadership())
                .map(|at| at.to_string()),
            valid_for_ms: valid_until.map(|deadline| {
                u64::try_from(deadline.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
            }),
            last_error: state.last_error.clone(),
            monotonic_ns: to_u64(monotonic_ns(now)),
            valid_until_monotonic_ns: valid_until.map(|deadline| to_u64(monotonic_ns(deadline))),
            observed_transitions: state.observed_transitions,
            incarnation: state.incarnation.clone(),
            identity_conflict: state.identity_conflict.clone(),
            candidate: state.candidate,
            app_health: None,
            endpoint_slice: None,
        }
    }

    /// Adds the application's health, when it is checked.
    pub fn with_app_health(mut self, health: Option<crate::app_health::Health>) -> Self {
        self.app_health = health.map(|health| AppHealthBody {
            state: health.state.as_str().to_owned(),
            consecutive_failures: health.consecutive_failures,
            consecutive_successes: health.consecutive_successes,
            last_error: health.last_error,
        });
        self
    }
}

/// `2019-05-02T18:28:51Z`: UTC, truncated to the second.
fn rfc3339_seconds(at: jiff::Timestamp) -> String {
    match jiff::Timestamp::from_second(at.as_second()) {
        Ok(seconds) => seconds.to_string(),
        Err(_) => at.to_string(),
    }
}

trait SizeHintExact {
    fn size_hint_exact(&self) -> u64;
}

impl SizeHintExact for Full<Bytes> {
    fn size_hint_exact(&self) -> u64 {
        hyper::body::Body::size_hint(self).exact().unwrap_or(0)
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, TEXT, body.into_bytes())
}

/// Resource bounds of the server; [`Limits::default`] is what the sidecar uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A client must send a complete request head within this time, also between requests on a
    /// kept-alive connection.
    pub header_read_timeout: Duration,
    /// Most connections open at once; a new one beyond it closes the oldest connection of the peer
    /// holding the most.
    pub max_connections: usize,
    /// Most connections open at once from one peer address; a new one beyond it closes that
    /// peer's oldest connection.
    pub max_connections_per_peer: usize,
    /// How long open connections may finish their current request after shutdown begins.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_peer: MAX_CONNECTIONS_PER_PEER,
            drain_timeout: DRAIN_TIMEOUT,
        }
    }
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: Limits,
}

/// Binds the listener; `127.0.0.1:0` picks a free port (see [`Server::local_addr`]).
pub async fn bind(addr: SocketAddr) -> Result<Server, Error> {
    let listener = listen(addr).map_err(|source| Error::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(Error::LocalAddr)?;
    Ok(Server {
        listener,
        local_addr,
        limits: Limits::default(),
    })
}

/// The kernel's queue of connections not yet accepted: the most a flood can fill before a new
/// connection's handshake is dropped (and retried by the client only a second later). Linux caps
/// it at `net.core.somaxconn` (4096 by default since 5.4); tokio's default is 1024.
pub const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open connections finish
    /// their current request (up to [`Limits::drain_timeout`]) and returns.
    ///
    /// The loop never stops accepting: a connection beyond [`Limits::max_connections`] closes the
    /// busiest peer's oldest connection, one beyond [`Limits::max_connections_per_peer`] its own
    /// peer's oldest, so a client that connects and asks at once (a kubelet probe) is served
    /// however many idle or slow connections other addresses hold. Running out of file
    /// descriptors (EMFILE, ENFILE) sheds the same way, or backs off briefly when there is
    /// nothing to shed.
    pub async fn serve(self, context: Context, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let context = Arc::new(context);
        let limits = self.limits;
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut open = OpenConnections::default();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                    open.finished(match done {
                        Ok((id, ())) => id,
                        Err(error) => error.id(),
                    });
                    continue;
                }
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        if out_of_descriptors(&error) {
                            if open.shed_oldest(open.busiest_peer()).is_some() {
                                tracing::debug!(%error, "out of file descriptors; closed the oldest connection");
                                // Let the aborted task drop its socket (and the loop reap it)
                                // before accepting again, rather than shedding every connection.
                                tokio::task::yield_now().await;
                                continue;
                            }
                            tracing::warn!(%error, "out of file descriptors with no connection to close; backing off");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        } else {
                            // A connection reset before accept and the like: not fatal.
                            tracing::debug!(%error, "accepting an HTTP connection failed");
                        }
                        continue;
                    }
                },
            };
            if open.of_peer(peer.ip()) >= limits.max_connections_per_peer.max(1) {
                open.shed_oldest(Some(peer.ip()));
                tracing::debug!(%peer, "per-peer connection cap reached; closed that peer's oldest connection");
            } else if open.len() >= limits.max_connections.max(1) {
                open.shed_oldest(open.busiest_peer());
                tracing::debug!(%peer, "connection cap reached; closed the busiest peer's oldest connection");
            }
            let span = tracing::debug_span!("http_connection", %peer);
            let context = context.clone();
            let drain = drain_rx.clone();
            let task = connections
                .spawn(serve_connection(stream, context, drain, limits.header_read_timeout).instrument(span));
            open.add(peer.ip(), task);
            // Give the new connection its first poll before the next accept: a probe's request
            // is usually there already and is answered at once, before a burst of accepts from
            // a flood could make it the oldest connection and shed it.
            tokio::task::yield_now().await;
        }
        drop(self.listener);
        let _ = drain_tx.send(true);
        let drained = tokio::time::timeout(limits.drain_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::debug!(
                open = connections.len(),
                "closing HTTP connections still open after the drain timeout"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Pause after an EMFILE/ENFILE that could not be relieved by closing a connection: the pending
/// connection stays in the backlog, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accept errors that mean "no descriptor left" rather than "this one connection failed".
fn out_of_descriptors(error: &std::io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(error.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM))
}

/// The open connections in accept order, by peer, with the handle that closes each.
#[derive(Debug, Default)]
struct OpenConnections {
    next: u64,
    /// Accept sequence number -> (peer, task). Oldest first.
    by_age: BTreeMap<u64, (IpAddr, AbortHandle)>,
    by_task: HashMap<tokio::task::Id, u64>,
    per_peer: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    fn len(&self) -> usize {
        self.by_age.len()
    }

    fn of_peer(&self, peer: IpAddr) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// The peer holding the most connections: the one to shed from when the server is full, so
    /// a flood from a few addresses cannot push out a client that holds one connection.
    fn busiest_peer(&self) -> Option<IpAddr> {
        self.per_peer
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(peer, _)| *peer)
    }

    fn add(&mut self, peer: IpAddr, task: AbortHandle) {
        let seq = self.next;
        self.next += 1;
        self.by_task.insert(task.id(), seq);
        self.by_age.insert(seq, (peer, task));
        *self.per_peer.entry(peer).or_default() += 1;
    }

    /// Forgets a connection whose task ended (by itself, or after being shed).
    fn finished(&mut self, task: tokio::task::Id) {
        if let Some(seq) = self.by_task.remove(&task) {
            self.forget(seq);
        }
    }

    fn forget(&mut self, seq: u64) -> Option<(IpAddr, AbortHandle)> {
        let (peer, task) = self.by_age.remove(&seq)?;
        if let Some(count) = self.per_peer.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some((peer, task))
    }

    /// Closes the oldest connection (of `peer`, if given; of anyone if `peer` holds none);
    /// returns its peer.
    fn shed_oldest(&mut self, peer: Option<IpAddr>) -> Option<IpAddr> {
        let seq = self
            .by_age
            .iter()
            .find(|(_, (from, _))| peer.is_none_or(|peer| *from == peer))
            .map(|(seq, _)| *seq)?;
        let (from, task) = self.forget(seq)?;
        // Aborting drops the connection's socket, which closes it; the task is reaped later.
        task.abort();
        Some(from)
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    context: Arc<Context>,
    mut drain: watch::Receiver<bool>,
    header_read_timeout: Duration,
) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = context.handle(&request);
        tracing::trace!(method = %request.method(), path = request.uri().path(), status = response.status().as_u16());
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_BUF_SIZE);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        }
        _ = async { drain.wait_for(|draining| *draining).await.map(|_| ()) } => {
            connection.as_mut().graceful_shutdown();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error while draining");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StateSender;
    use http_body_util::BodyExt;

    const BOUND: Duration = Duration::from_secs(25);

    struct Fixture {
        tx: StateSender,
        context: Context,
    }

    fn fixture() -> Fixture {
        let (tx, rx) = crate::status::channel("pod-a");
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let context = Context::from_parts(rx, Arc::new(registry), metrics, "demo", "ns", "leases", BOUND)
            .with_wall_clock(WallClock::fixed("2019-05-02T18:28:51.734Z".parse().unwrap()));
        Fixture { tx, context }
    }

    fn lead(tx: &StateSender, now: Instant, valid_for: Duration) {
        tx.send_modify(|state| {
            state.set_claims_leadership(true);
            state.leader = Some("pod-a".into());
            state.fencing_token = Some(42);
            state.leader_since = Some("2019-05-02T18:20:00Z".parse().unwrap());
            state.valid_until = Some(now + valid_for);
            state.observed_transitions = Some(42);
            state.last_progress = now;
        });
    }

    fn follow(tx: &StateSender, now: Instant, leader: &str) {
        tx.send_modify(|state| {
            state.set_claims_leadership(false);
            state.leader = Some(leader.into());
            state.fencing_token = None;
            state.leader_since = None;
            state.valid_until = None;
            state.observed_transitions = Some(43);
            state.last_progress = now;
        });
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn readyz_follows_leadership_and_lapses_at_the_deadline_without_an_update() {
        let f = fixture();
        let now = Instant::now();
        let response = f.context.respond(&Method::GET, "/readyz", now);
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a fresh process is not ready"
        );
        assert_eq!(body(response).await, "not leader: no leader\n");

        lead(&f.tx, now, Duration::from_secs(10));
        let response = f.context.respond(&Method::GET, "/readyz", now);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(FENCING_TOKEN_HEADER).map(|v| v.as_bytes()),
            Some(&b"42"[..])
        );
        assert_eq!(body(response).await, "leader: pod-a (fencing token 42)\n");

        // No state update, but the deadline passes: not ready any more, and no token.
        tokio::time::advance(Duration::from_secs(10)).await;
        let response = f.context.respond(&Method::GET, "/readyz", Instant::now());
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a lapsed claim must not be ready"
        );
        assert!(
            response.headers().get(FENCING_TOKEN_HEADER).is_none(),
            "no token on 503"
        );
        assert_eq!(
            body(response).await,
            "not leader: the claim's validity deadline has passed without a renew\n"
        );

        follow(&f.tx, Instant::now(), "pod-b");
        let response = f.context.respond(&Method::GET, "/readyz", Instant::now());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(response).await, "not leader: leader is pod-b\n");
    }

    #[tokio::test(start_paused = true)]
    async fn livez_depends_on_progress_only_and_fails_when_the_loop_is_gone() {
        let f = fixture();
        let start = Instant::now();
        follow(&f.tx, start, "pod-b");
        let response = f.context.respond(&Method::GET, "/livez", start + BOUND);
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "exactly at the bound is still live"
        );
        let response = f
            .context
            .respond(&Method::GET, "/healthz", start + BOUND + Duration::from_millis(1));
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "past the bound without progress"
        );
        assert_eq!(
            body(response).await,
            "not live: no progress from the election loop for 25001 ms (bound 25000 ms)\n"
        );

        // Leadership does not matter: a lapsed leader with recent progress is live.
        let later = start + Duration::from_secs(60);
        lead(&f.tx, later - Duration::from_secs(20), Duration::from_secs(1));
        let response = f.context.respond(&Method::GET, "/livez", later);
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "progress 20s ago is within the 25s bound"
        );

        drop(f.tx);
        let response = f.context.respond(&Method::GET, "/livez", later);
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a stopped loop is not live"
        );
        assert_eq!(body(response).await, "not live: the election loop has stopped\n");
    }

    #[tokio::test(start_paused = true)]
    async fn status_json_reads_as_each_compatible_tool_expects() {
        /// Exactly vapor-ware k8s-elector's fields.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct K8sElector {
            is_leader: bool,
            leader: String,
            node: String,
            timestamp: String,
        }
        /// The contrib leader-elector's single field.
        #[derive(Debug, Deserialize)]
        struct ContribLeaderElector {
            name: String,
        }

        let f = fixture();
        let now = Instant::now();
        lead(&f.tx, now, Duration::from_millis(7500));
        let response = f.context.respond(&Method::GET, "/status", now);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), JSON);
        let text = body(response).await;

        let k8s: K8sElector = serde_json::from_str(&text).unwrap();
        assert!(k8s.is_leader, "is_leader in {text}");
        assert_eq!((k8s.leader.as_str(), k8s.node.as_str()), ("pod-a", "pod-a"));
        assert_eq!(k8s.timestamp, "2019-05-02T18:28:51Z", "second precision, UTC");
        let contrib: ContribLeaderElector = serde_json::from_str(&text).unwrap();
        assert_eq!(contrib.name, "pod-a");

        let full: StatusBody = serde_json::from_str(&text).unwrap();
        assert_eq!(full.fencing_token, Some(42));
        assert_eq!(full.valid_for_ms, Some(7500));
        assert_eq!(full.leader_since.as_deref(), Some("2019-05-02T18:20:00Z"));
        assert_eq!(
            full.valid_until_monotonic_ns.map(|d| d - full.monotonic_ns),
            Some(7_500_000_000)
        );
        assert_eq!(
            (
                full.election.as_str(),
                full.namespace.as_str(),
                full.lock_type.as_str()
            ),
            ("demo", "ns", "leases")
        );

        // Every documented field is present (nulls included), so tools can rely on the shape.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "is_leader",
            "leader",
            "node",
            "timestamp",
            "name",
            "election",
            "namespace",
            "lock_type",
            "fencing_token",
            "leader_since",
            "valid_for_ms",
            "last_error",
            "monotonic_ns",
            "valid_until_monotonic_ns",
            "observed_transitions",
        ] {
            assert!(keys.contains(&key), "missing {key} in {text}");
        }
        assert!(
            value["last_error"].is_null(),
            "last_error is null when there is none: {text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn status_of_a_follower_has_nulls_and_an_empty_leader_when_none() {
        let f = fixture();
        let now = Instant::now();
        let text = body(f.context.respond(&Method::GET, "/", now)).await;
        let full: StatusBody = serde_json::from_str(&text).unwrap();
        assert!(!full.is_leader);
        assert_eq!(
            (full.leader.as_str(), full.name.as_str(), full.node.as_str()),
            ("", "", "pod-a")
        );
        assert_eq!(
            (
                full.fencing_token,
                full.valid_for_ms,
                full.valid_until_monotonic_ns
            ),
            (None, None, None)
        );
        assert_eq!(full.leader_since, None);
        assert_eq!(full.monotonic_ns, u64::try_from(monotonic_ns(now)).unwrap());

        // A lapsed claim: not leader, no token, zero validity left.
        lead(&f.tx, now, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        f.tx.send_modify(|state| state.last_error = Some("renew timed out".into()));
        let text = body(f.context.respond(&Method::GET, "/status", Instant::now())).await;
        let full: StatusBody = serde_json::from_str(&text).unwrap();
        assert!(!full.is_leader, "lapsed claim: {text}");
        assert_eq!(full.fencing_token, None, "no token once lapsed: {text}");
        assert_eq!(full.valid_for_ms, Some(0), "{text}");
        assert_eq!(full.last_error.as_deref(), Some("renew timed out"));
    }

    #[tokio::test(start_paused = true)]
    async fn status_shows_candidacy_and_the_application_health_only_when_checked() {
        let f = fixture();
        let text = body(f.context.respond(&Method::GET, "/status", Instant::now())).await;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["candidate"], true, "{text}");
        assert!(
            json.get("app_health").is_none(),
            "no app_health without a check: {text}"
        );

        let (health_tx, health_rx) = tokio::sync::watch::channel(crate::app_health::Health::new(2, 1));
        let context = fixture().context.with_app_health(health_rx);
        health_tx.send_modify(|health| health.record(Err("GET http://127.0.0.1:1/ answered 503".into())));
        let text = body(context.respond(&Method::GET, "/status", Instant::now())).await;
        let full: StatusBody = serde_json::from_str(&text).unwrap();
        let health = full.app_health.expect("app_health with a check");
        assert_eq!(
            (
                health.state.as_str(),
                health.consecutive_failures,
                health.consecutive_successes
            ),
            ("starting", 1, 0)
        );
        assert_eq!(
            health.last_error.as_deref(),
            Some("GET http://127.0.0.1:1/ answered 503")
        );

        f.tx.send_modify(|state| state.candidate = false);
        let text = body(f.context.respond(&Method::GET, "/status", Instant::now())).await;
        let full: StatusBody = serde_json::from_str(&text).unwrap();
        assert!(!full.candidate, "{text}");
        let metrics = body(f.context.respond(&Method::GET, "/metrics", Instant::now())).await;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("elector_candidate{") && l.ends_with(" 0")),
            "{metrics}"
        );
        assert!(
            !metrics.contains("elector_app_healthy"),
            "absent without --app-health: {metrics}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_are_openmetrics_and_mirror_the_state_at_scrape_time() {
        let f = fixture();
        let now = Instant::now();
        lead(&f.tx, now, Duration::from_secs(5));
        let response = f.context.respond(&Method::GET, "/metrics", now);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            OPENMETRICS_CONTENT_TYPE
        );
        let text = body(response).await;
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF:\n{text}");
        assert!(
            text.contains("elector_is_leader{election=\"demo\",namespace=\"ns\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("elector_fencing_token{election=\"demo\",namespace=\"ns\"} 42\n"),
            "{text}"
        );

        let text = body(
            f.context
                .respond(&Method::GET, "/metrics", now + Duration::from_secs(5)),
        )
        .await;
        assert!(
            text.contains("elector_is_leader{election=\"demo\",namespace=\"ns\"} 0\n"),
            "lapsed:\n{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pod_label_readiness_fails_while_a_stale_leader_label_may_remain() {
        let (label_tx, label_rx) = watch::channel(false);
        let f = fixture();
        let context = f.context.with_pod_label(label_rx);
        let now = Instant::now();
        let ask = |now| context.respond(&Method::GET, "/readyz/pod-label", now).status();
        follow(&f.tx, now, "pod-b");
        assert_eq!(ask(now), StatusCode::OK, "a follower without the label is ready");

        lead(&f.tx, now, Duration::from_secs(2));
        label_tx.send_replace(true);
        assert_eq!(
            ask(now),
            StatusCode::OK,
            "a valid leader carrying the label is ready"
        );

        // Partitioned: the claim lapses, the label cannot be reset.
        let lapsed = now + Duration::from_secs(2);
        assert_eq!(
            ask(lapsed),
            StatusCode::SERVICE_UNAVAILABLE,
            "an ex-leader that may still carry the label must not be ready"
        );
        // The label reset succeeded.
        label_tx.send_replace(false);
        assert_eq!(ask(lapsed), StatusCode::OK, "ready again once the label is reset");

        // Liveness still gates it.
        let stuck = now + BOUND + Duration::from_secs(1);
        assert_eq!(ask(stuck), StatusCode::SERVICE_UNAVAILABLE, "not live, not ready");
    }

    #[tokio::test(start_paused = true)]
    async fn pod_label_readiness_without_a_pod_label_is_liveness() {
        let f = fixture();
        let now = Instant::now();
        lead(&f.tx, now, Duration::from_secs(2));
        let ask = |now| f.context.respond(&Method::GET, "/readyz/pod-label", now).status();
        assert_eq!(ask(now + Duration::from_secs(3)), StatusCode::OK);
        assert_eq!(
            ask(now + BOUND + Duration::from_secs(1)),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_readiness_is_every_healthy_replica_whoever_leads() {
        let now = Instant::now();
        let off = fixture();
        follow(&off.tx, now, "pod-b");
        let answer = off.context.respond(&Method::GET, "/readyz/proxy", now);
        assert_eq!(
            answer.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "the proxy is off"
        );

        let (health_tx, health_rx) = watch::channel(crate::app_health::Health::new(1, 1));
        let f = fixture();
        let context = f.context.with_proxy().with_app_health(health_rx);
        let ask = |now| context.respond(&Method::GET, "/readyz/proxy", now).status();
        follow(&f.tx, now, "pod-b");
        assert_eq!(
            ask(now),
            StatusCode::SERVICE_UNAVAILABLE,
            "the application has not passed a check"
        );
        health_tx.send_modify(|health| health.record(Ok(())));
        assert_eq!(
            ask(now),
            StatusCode::OK,
            "a follower with a healthy application is ready"
        );
        lead(&f.tx, now, Duration::from_secs(2));
        assert_eq!(
            ask(now + Duration::from_secs(3)),
            StatusCode::OK,
            "a lapsed claim does not matter"
        );
        health_tx.send_modify(|health| health.record(Err("down".into())));
        assert_eq!(
            ask(now),
            StatusCode::SERVICE_UNAVAILABLE,
            "an unhealthy application is not"
        );
        health_tx.send_modify(|health| health.record(Ok(())));
        assert_eq!(
            ask(now + BOUND + Duration::from_secs(1)),
            StatusCode::SERVICE_UNAVAILABLE,
            "not live, not ready"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn methods_paths_and_head() {
        let f = fixture();
        let now = Instant::now();
        for path in [
            "/",
            "/status",
            "/readyz",
            "/readyz/pod-label",
            "/livez",
            "/healthz",
            "/metrics",
        ] {
            for method in [
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
                Method::OPTIONS,
            ] {
                let response = f.context.respond(&method, path, now);
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
                assert_eq!(
                    response.headers().get(header::ALLOW).unwrap(),
                    "GET, HEAD",
                    "{method} {path}"
                );
            }
            let get = f.context.respond(&Method::GET, path, now);
            let head = f.context.respond(&Method::HEAD, path, now);
            assert_eq!(head.status(), get.status(), "HEAD {path} answers like GET");
            assert_eq!(
                head.headers().get(header::CONTENT_TYPE),
                get.headers().get(header::CONTENT_TYPE)
            );
            let get_length = body(get).await.len().to_string();
            assert_eq!(
                head.headers().get(header::CONTENT_LENGTH).unwrap(),
                get_length.as_str(),
                "HEAD {path}"
            );
            assert_eq!(body(head).await, "", "HEAD {path} has no body");
        }
        for path in ["/nope", "/readyz/", "/metrics/x"] {
            let response = f.context.respond(&Method::GET, path, now);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        }
        let request = Request::builder().uri("/readyz?verbose=1").body(()).unwrap();
        assert_eq!(
            f.context.handle(&request).status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "query is ignored"
        );
    }

    // ---- over a real socket (loopback), on the real clock -------------------------------------

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Generous bound for things that should happen at once, for a loaded 2-core machine.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn assert_send<T: Send>(value: T) -> T {
        value
    }

    async fn start(
        limits: Limits,
    ) -> (
        SocketAddr,
        StateSender,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), Error>>,
    ) {
        let f = fixture();
        let server = bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_limits(limits);
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "local_addr reports the real port");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = assert_send(server.serve(f.context, async move {
            let _ = stop_rx.await;
        }));
        (addr, f.tx, stop_tx, tokio::spawn(serving))
    }

    /// Sends one request on a fresh connection and reads the whole answer (the server closes).
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
            .await
            .expect("answer in time")
            .unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn serves_over_loopback_and_stops_on_shutdown() {
        let (addr, tx, stop, serving) = start(Limits::default()).await;
        lead(&tx, Instant::now(), Duration::from_secs(60));

        let answer = exchange(
            addr,
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "expected 200, got:\n{answer}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("x-elector-fencing-token: 42\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\nleader: pod-a (fencing token 42)\n"),
            "{answer}"
        );

        let answer = exchange(
            addr,
            "HEAD /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let (head, rest) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let length: usize = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .expect("HEAD carries the GET length")
            .parse()
            .unwrap();
        assert!(length > 100, "the JSON length, got {length}");
        assert_eq!(rest, "", "HEAD has no body");

        let answer = exchange(
            addr,
            "DELETE /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("allow: get, head\r\n"),
            "{answer}"
        );

        stop.send(()).unwrap();
        let result = tokio::time::timeout(PATIENCE, serving)
            .await
            .expect("serve returns after shutdown");
        assert!(matches!(result, Ok(Ok(()))), "serve ended with {result:?}");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed after shutdown"
        );
    }

    #[tokio::test]
    async fn a_silent_client_is_dropped_after_the_header_read_timeout() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let (addr, _tx, _stop, _serving) = start(limits).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /readyz HTTP/1.1\r\n").await.unwrap(); // never finishes the head
        let mut answer = Vec::new();
        // Well under the 5s default, so this fails if the configured timeout were not applied;
        // still 40 times the configured 100ms, for a loaded machine.
        let read = tokio::time::timeout(Duration::from_secs(4), stream.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok(),
            "the server must close a connection whose head never completes within 100ms"
        );
    }

    /// A connection from `source` (a loopback address) to `addr`.
    async fn connect_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// Whether the server closed `stream` (EOF or reset) within `PATIENCE`.
    async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// Whether `stream` is still open: nothing to read and no EOF yet.
    fn still_open(stream: &tokio::net::TcpStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Asks `path` on `stream` (HTTP/1.1, connection close) and returns the answer.
    async fn ask(mut stream: tokio::net::TcpStream, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
            .await
            .expect("answered in time")
            .unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_read_timeout_too() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let (addr, _tx, _stop, _serving) = start(limits).await;
        // Connects and sends nothing at all, as an idle flood does.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_by_server(&mut stream).await,
            "a connection that never sends a byte must be closed by the header read timeout"
        );
    }

    #[tokio::test]
    async fn idle_connections_beyond_the_cap_cannot_starve_a_probe() {
        let limits = Limits {
            max_connections: 8,
            max_connections_per_peer: 1_000,
            header_read_timeout: Duration::from_secs(60), // the cap alone must keep probes served
            ..Limits::default()
        };
        let (addr, tx, _stop, _serving) = start(limits).await;
        lead(&tx, Instant::now(), Duration::from_secs(600));
        let mut idle = Vec::new();
        for _ in 0..64 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        for round in 0..3 {
            let answer = ask(tokio::net::TcpStream::connect(addr).await.unwrap(), "/readyz").await;
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "round {round}: /readyz must answer with 64 idle connections held against a cap of 8, got:\n{answer}"
            );
        }
        // The oldest idle connections made room; the newest are still open.
        assert!(
            closed_by_server(&mut idle[0]).await,
            "the oldest idle connection is shed"
        );
        assert!(
            still_open(idle.last().unwrap()),
            "the newest idle connection is kept"
        );
    }

    #[tokio::test]
    async fn a_peer_over_its_cap_loses_its_own_oldest_connection() {
        let limits = Limits {
            max_connections: 100,
            max_connections_per_peer: 2,
            header_read_timeout: Duration::from_secs(60),
            ..Limits::default()
        };
        let (addr, tx, _stop, _serving) = start(limits).await;
        lead(&tx, Instant::now(), Duration::from_secs(600));
        // The other peer's connection is the oldest of all.
        let other = connect_from("127.0.0.1", addr).await;
        let mut first = connect_from("127.0.0.2", addr).await;
        let second = connect_from("127.0.0.2", addr).await;
        // Let the server accept all three before the third from 127.0.0.2 arrives.
        let _ = ask(connect_from("127.0.0.3", addr).await, "/livez").await;
        let answer = ask(connect_from("127.0.0.2", addr).await, "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            closed_by_server(&mut first).await,
            "the peer's oldest connection makes room for its new one"
        );
        assert!(still_open(&second), "the peer's newer connection stays");
        assert!(still_open(&other), "another peer's connection is not touched");
    }

    #[tokio::test]
    async fn a_full_server_sheds_from_the_busiest_peer_not_the_oldest_connection() {
        let limits = Limits {
            max_connections: 4,
            max_connections_per_peer: 100,
            header_read_timeout: Duration::from_secs(60),
            ..Limits::default()
        };
        let (addr, tx, _stop, _serving) = start(limits).await;
        lead(&tx, Instant::now(), Duration::from_secs(600));
        // A quiet client's connection is the oldest of all; a flooding peer fills the rest.
        let quiet = connect_from("127.0.0.3", addr).await;
        let mut flood_oldest = connect_from("127.0.0.2", addr).await;
        let mut flood = Vec::new();
        for _ in 0..2 {
            flood.push(connect_from("127.0.0.2", addr).await);
        }
        let answer = ask(connect_from("127.0.0.1", addr).await, "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            closed_by_server(&mut flood_oldest).await,
            "the busiest peer's oldest connection makes room"
        );
        assert!(
            still_open(&quiet),
            "the quiet client's connection survives, though it is the oldest"
        );
    }

    #[tokio::test]
    async fn bind_names_the_address_it_could_not_use() {
        let taken = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let error = bind(taken.local_addr()).await.expect_err("the port is taken");
        let message = error.to_string();
        assert!(
            message.contains(&taken.local_addr().to_string()) && message.contains("--http"),
            "{message}"
        );
    }

    /// The served exposition, process metrics included, passes `promtool check metrics` (through
    /// scripts/check-metrics-lint.sh). Skipped, with a note, where promtool is not installed,
    /// except in CI (`CI` set), where `make test` installs it and its absence is a failure.
    #[tokio::test]
    async fn metrics_exposition_is_promtool_clean() {
        let (tx, rx) = crate::status::channel("pod-a");
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        assert!(
            crate::process_metrics::register(&mut registry),
            "Linux has /proc/self"
        );
        metrics.api_request(crate::metrics::Verb::Get, Some(200), Duration::from_millis(4));
        metrics.api_request(crate::metrics::Verb::Update, None, Duration::from_secs(2));
        metrics.renew(crate::metrics::RenewResult::Success, Duration::from_millis(6));
        metrics.slowpath();
        metrics.became_leader();
        metrics.observed_leader_change();
        metrics.observed_leader_change();
        let context = Context::from_parts(rx, Arc::new(registry), metrics, "demo", "ns", "leases", BOUND);
        let now = Instant::now();
        lead(&tx, now, Duration::from_secs(10));
        tx.send_modify(|state| {
            state.last_renew = Some(jiff::Timestamp::now());
        });
        let text = body(context.respond(&Method::GET, "/metrics", now)).await;

        kube_elector_harness::tools::assert_metrics_lint_clean(&text);
    }
}
