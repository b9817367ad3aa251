//! kube-sim: a stand-in for the Kubernetes API server, faithful in the parts leader election
//! touches, for end-to-end, chaos and benchmark runs without a cluster.
//!
//! It serves, over HTTPS (CA generated at start) or plain HTTP on 127.0.0.1:
//! `coordination.k8s.io/v1` Leases, core v1 ConfigMaps, Endpoints, Pods and Events, and
//! `events.k8s.io/v1` Events — get, list, create, update, patch (merge, strategic merge, JSON
//! patch), delete and watch — with one global resourceVersion, optimistic concurrency (409
//! Conflict), the real validation rules and messages (422 Invalid), bearer-token authentication
//! (401), a run-time authorization table (403), a bounded watch history (410 Expired), watch
//! bookmarks, and per-client fault injection. Every applied write is logged with its
//! CLOCK_MONOTONIC time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::Error> {
//! use kube_sim::{Fault, Sim, SimOptions};
//! let sim = Sim::start(SimOptions::new(["a", "b", "c"])).await?;
//! let _url = sim.url();                      // https://127.0.0.1:PORT
//! let _kc = sim.kubeconfig_path("a");         // a kubeconfig for client "a"
//! sim.set_fault("a", Fault { latency_ms: 200, ..Fault::default() });
//! sim.clear_fault("a");
//! sim.deny("a", "update", "leases");          // 403 for client a's updates
//! let _counts = sim.requests();               // {"a": {"update leases": 3, ...}}
//! let _writes = sim.writes();                 // every applied write, in order
//! let _objects = sim.objects();               // every stored object
//! sim.compact();                              // older resourceVersions now get 410
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules, one responsibility each: [`server`] (listener, TLS, auth, faults at connection level),
//! [`router`] (paths and verbs), [`api`] (the verbs), [`store`] (objects, resourceVersion,
//! history, watch fan-out), [`validation`], [`status`] (Status bodies and messages), [`patch`],
//! [`selectors`], [`resource`] (per-type rules), [`discovery`] (generated from the kind table),
//! [`negotiate`] (`Accept` → JSON, `Table` or aggregated discovery), [`table`] (server-side
//! printing for `kubectl get`), [`openapi`] (what kubectl's validation reads), [`field_validation`], [`protobuf`] (request bodies), [`faults`], [`accounting`], [`tls`] (CA and
//! kubeconfigs), [`admin`] (the `/sim/` admin API). See `sim/README.md` for the binary, the admin
//! API and the list of what is faithful and what is simplified.

#![forbid(unsafe_code)]

pub mod accounting;
pub mod admin;
pub mod api;
pub mod discovery;
pub mod faults;
pub mod field_validation;
pub mod negotiate;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resource;
pub mod router;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use accounting::{RequestCounts, WriteRecord};
pub use faults::{FailSpec, Fault, WatchMode};

use crate::resource::Kind;
use crate::server::Shared;
use crate::store::{Plan, Store};

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--clients: at least one client name is needed")]
    NoClients,
    #[error("--clients: {name:?} is not usable as a pod name: {reason}")]
    BadClient { name: String, reason: String },
    #[error("--clients: {0:?} is listed twice")]
    DuplicateClient(String),
    #[error("--namespaces: {name:?} is not a valid namespace name: {reason}")]
    BadNamespace { name: String, reason: String },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::Error),
    #[error("kubeconfig directory {path}: {source}")]
    KubeconfigDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the pod for client {client}: {source}")]
    Seed {
        client: String,
        #[source]
        source: status::ApiError,
    },
}

/// How to start a [`Sim`].
#[derive(Debug, Clone)]
pub struct SimOptions {
    clients: Vec<String>,
    plain_http: bool,
    kubeconfig_dir: Option<PathBuf>,
    namespaces: Vec<String>,
    bookmark_interval: Duration,
    history: usize,
    listen: SocketAddr,
}

impl SimOptions {
    /// Options for these clients: HTTPS on `127.0.0.1:0`, kubeconfigs in a temp dir the `Sim`
    /// owns, bookmarks every 10s, history of 1000 events.
    pub fn new<I, S>(clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            clients: clients.into_iter().map(Into::into).collect(),
            plain_http: false,
            kubeconfig_dir: None,
            namespaces: Vec::new(),
            bookmark_interval: Duration::from_secs(10),
            history: 1000,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Serve plain HTTP instead of HTTPS.
    pub fn plain_http(mut self, yes: bool) -> Self {
        self.plain_http = yes;
        self
    }

    /// Write kubeconfigs here instead of a temp dir.
    pub fn kubeconfig_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.kubeconfig_dir = Some(dir.into());
        self
    }

    /// Extra namespaces besides `default` and `kube-system`.
    pub fn namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Interval between watch BOOKMARK events.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Number of events kept for watch resumption.
    pub fn history(mut self, events: usize) -> Self {
        self.history = events;
        self
    }

    /// Listen address (must be loopback in practice; port 0 picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
}

/// A running simulator. Dropping it stops the server and removes an owned temp dir.
#[derive(Debug)]
pub struct Sim {
    url: String,
    shared: Arc<Shared>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    kubeconfig_dir: PathBuf,
    tokens: BTreeMap<String, String>,
    ca_pem: Option<String>,
    _tempdir: Option<tempfile::TempDir>,
}

fn random_token() -> String {
    let b: [u8; 24] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_names(opts: &SimOptions) -> Result<(), Error> {
    if opts.clients.is_empty() {
        return Err(Error::NoClients);
    }
    let mut seen = BTreeSet::new();
    for c in &opts.clients {
        if let Some(reason) = validation::dns1123_subdomain(c).into_iter().next() {
            return Err(Error::BadClient {
                name: c.clone(),
                reason,
            });
        }
        if !seen.insert(c) {
            return Err(Error::DuplicateClient(c.clone()));
        }
    }
    for n in &opts.namespaces {
        if n.is_empty()
            || n.len() > 63
            || !n.split('.').count().eq(&1)
            || !validation::dns1123_subdomain(n).is_empty()
        {
            return Err(Error::BadNamespace {
                name: n.clone(),
                reason: "must be a DNS-1123 label".into(),
            });
        }
    }
    Ok(())
}

impl Sim {
    /// Binds, writes the kubeconfigs, creates one Pod per client in `default`, and serves.
    pub async fn start(opts: SimOptions) -> Result<Sim, Error> {
        check_names(&opts)?;
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
        let (pki, scheme) = if opts.plain_http {
            (None, "http")
        } else {
            (Some(tls::generate()?), "https")
        };
        let url = format!("{scheme}://{addr}");

        let (tempdir, kubeconfig_dir) = match &opts.kubeconfig_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| Error::KubeconfigDir {
                    path: d.clone(),
                    source,
                })?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("kube-sim-")
                    .tempdir()
                    .map_err(|source| Error::KubeconfigDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let tokens: BTreeMap<String, String> =
            opts.clients.iter().map(|c| (c.clone(), random_token())).collect();
        let ca_pem = pki.as_ref().map(|p| p.ca_pem.clone());
        for (client, token) in &tokens {
            let yaml = tls::kubeconfig(&url, client, token, ca_pem.as_deref())?;
            tls::write_kubeconfig(&kubeconfig_dir, client, &yaml)?;
        }
        if let Some(pem) = &ca_pem {
            let path = kubeconfig_dir.join("ca.crt");
            std::fs::write(&path, pem).map_err(|source| Error::KubeconfigDir { path, source })?;
        }

        let mut namespaces = vec!["default".to_owned(), "kube-system".to_owned()];
        namespaces.extend(opts.namespaces.iter().cloned());
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            store: Store::new(opts.history, namespaces),
            faults: faults::Faults::default(),
            accounting: accounting::Accounting::default(),
            authz: Mutex::new(BTreeMap::new()),
            tokens: tokens.iter().map(|(c, t)| (t.clone(), c.clone())).collect(),
            clients: opts.clients.clone(),
            bookmark_interval: opts.bookmark_interval,
            shutdown: shutdown_rx,
        });
        for client in &opts.clients {
            let pod = serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": client, "namespace": "default"},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
                "status": {"phase": "Running", "podIP": "127.0.0.1", "qosClass": "BestEffort"},
            });
            shared
                .store
                .write(Kind::Pod, "default", client, "sim", "create", |_, _| {
                    Ok(Plan::Put(pod))
                })
                .map_err(|source| Error::Seed {
                    client: client.clone(),
                    source,
                })?;
        }
        let tls = pki.map(|p| tokio_rustls::TlsAcceptor::from(p.server_config));
        let task = tokio::spawn(server::serve(listener, tls, shared.clone()));
        tracing::info!(%url, clients = ?opts.clients, "kube-sim serving");
        Ok(Sim {
            url,
            shared,
            shutdown_tx,
            task: Some(task),
            kubeconfig_dir,
            tokens,
            ca_pem,
            _tempdir: tempdir,
        })
    }

    /// Base URL, e.g. `https://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Directory holding `<client>.kubeconfig` (and `ca.crt` over HTTPS).
    pub fn kubeconfig_dir(&self) -> &Path {
        &self.kubeconfig_dir
    }

    /// The kubeconfig of a client.
    pub fn kubeconfig_path(&self, client: &str) -> PathBuf {
        self.kubeconfig_dir.join(format!("{client}.kubeconfig"))
    }

    /// The bearer token of a client.
    pub fn token(&self, client: &str) -> Option<&str> {
        self.tokens.get(client).map(String::as_str)
    }

    /// The CA certificate (PEM), when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Sets (replaces) a client's fault.
    pub fn set_fault(&self, client: &str, fault: Fault) {
        self.shared.faults.set(client, fault);
    }

    /// Clears a client's fault.
    pub fn clear_fault(&self, client: &str) {
        self.shared.faults.clear(client);
    }

    /// Denies `verb` on `resource` (plural, e.g. `leases`) for a client.
    pub fn deny(&self, client: &str, verb: &str, resource: &str) {
        let mut authz = self.shared.authz.lock().unwrap_or_else(|p| p.into_inner());
        authz
            .entry(client.to_owned())
            .or_default()
            .insert(format!("{verb} {resource}"));
    }

    /// Lifts every denial of a client.
    pub fn allow_all(&self, client: &str) {
        self.shared
            .authz
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(client);
    }

    /// Request counts per client and `"verb resource"`.
    pub fn requests(&self) -> RequestCounts {
        self.shared.accounting.snapshot()
    }

    /// Connections accepted since start (or the last reset): every client that reached the
    /// listener, whether or not it sent a request or authenticated.
    pub fn connections(&self) -> u64 {
        self.shared.accounting.connections()
    }

    /// Resets the request counts and the connection count.
    pub fn reset_requests(&self) {
        self.shared.accounting.reset();
    }

    /// The whole write log.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.store.writes(0)
    }

    /// The write log after sequence number `seq`.
    pub fn writes_since(&self, seq: u64) -> Vec<WriteRecord> {
        self.shared.store.writes(seq)
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<serde_json::Value> {
        self.shared.store.objects()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// Forgets watch history: watches from an older resourceVersion get 410 Expired.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// Stops serving: ends watch streams and hung requests, closes connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
