//! The EndpointSlice: one `discovery.k8s.io/v1` slice per election, for a Service without a
//! selector, that names only the leader's address, so traffic follows leadership while every
//! pod's readiness stays its application's own.
//!
//! Follows the published state only, like the pod label. While this process leads
//! ([`LeaderState::is_leader_at`](crate::LeaderState::is_leader_at)) it writes the slice with its
//! own address and the configured ports: created when absent, otherwise replaced conditionally on
//! the resourceVersion it just read (a 409 means someone wrote in between: read again and retry).
//! It never writes while its claim is not valid, and no call outlives the claim. When leadership
//! ends (step-down, lapse of the claim, shutdown) it empties the slice, but only if the slice still
//! names this pod's address: a successor that already wrote its own address is left alone. The
//! successor overwrites whatever is there, so a leader that could not empty the slice (partitioned,
//! killed) is replaced by the next leader's first write. A failed write is retried every retry
//! period.
//!
//! The slice's shape ([`desired`]): labels `kubernetes.io/service-name: <service>`,
//! `endpointslice.kubernetes.io/managed-by: kube-elector.leader-endpoints` ([`MANAGED_BY`]; the
//! EndpointSlice controller leaves slices managed by others alone) and
//! `kube-elector/election: <election>`; `addressType` IPv4 or IPv6 from the pod IP (immutable:
//! a slice of the other family is an error naming the fix); one endpoint with the pod IP,
//! conditions ready, serving, not terminating, and a `targetRef` to the pod when its name is
//! known; or no endpoints at all once emptied.
//!
//! It publishes what it knows on a [`SliceStatus`] channel for `/status`, counts writes by
//! result in [`EndpointSliceMetrics`] and logs one line per write.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::{ElectionMetrics, EndpointSliceMetrics, SliceWriteResult, Verb};
use crate::status::StateReceiver;

/// `endpointslice.kubernetes.io/managed-by` on the slices this process writes.
pub const MANAGED_BY: &str = "kube-elector.leader-endpoints";
/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The label naming the election a slice follows.
pub const ELECTION_LABEL: &str = "kube-elector/election";
/// Writes in one attempt before giving up until the next retry (each 409 costs one).
const MAX_WRITES_PER_ATTEMPT: usize = 3;

/// A port's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP, the default.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The API's spelling: `TCP`, `UDP`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// One port of the slice: `name:port[/protocol]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    /// Must equal the Service port's name (kube-proxy matches them by name); empty only when it is
    /// the only port.
    pub name: String,
    /// The application's port on the pod.
    pub port: u16,
    /// The port's protocol.
    pub protocol: Protocol,
}

/// The slice's ports, as `--endpoint-slice-ports` gives them: `name:port[/protocol],...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePorts(pub Vec<SlicePort>);

impl fmt::Display for SlicePorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|port| {
                let name = if port.name.is_empty() {
                    String::new()
                } else {
                    format!("{}:", port.name)
                };
                format!("{name}{}/{}", port.port, port.protocol.as_str())
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl SlicePorts {
    /// Parses `name:port[/protocol],...` (protocol TCP, UDP or SCTP, default TCP; a single port
    /// may omit its name). The rule a refusal states follows the value in the error message.
    pub fn parse(text: &str) -> Result<Self, String> {
        const FORMAT: &str = "the format is NAME:PORT[/PROTOCOL], comma-separated, e.g. http:8080 or \
                              http:8080/TCP,dns:53/UDP; each NAME must equal the Service port's name";
        let mut ports = Vec::new();
        let items: Vec<&str> = text.split(',').map(str::trim).collect();
        if text.trim().is_empty() {
            return Err(format!("names no port; {FORMAT}"));
        }
        for item in &items {
            let (name, rest) = match item.split_once(':') {
                Some((name, rest)) => (name, rest),
                None => ("", *item),
            };
            let (number, protocol) = match rest.split_once('/') {
                Some((number, protocol)) => (number, Some(protocol)),
                None => (rest, None),
            };
            let protocol = match protocol.map(str::to_ascii_uppercase).as_deref() {
                None | Some("TCP") => Protocol::Tcp,
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                Some(other) => {
                    return Err(format!(
                        "has protocol {other:?} in {item:?}: use TCP, UDP or SCTP; {FORMAT}"
                    ));
                }
            };
            let port = match number.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    return Err(format!(
                        "has port {number:?} in {item:?}: use 1 to 65535; {FORMAT}"
                    ));
                }
            };
            let label_ok = name.len() <= 63
                && name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !name.starts_with('-')
                && !name.ends_with('-');
            if !label_ok {
                return Err(format!(
                    "has name {name:?} in {item:?}: a port name is lower-case letters, digits and '-' \
                     (a DNS-1123 label); {FORMAT}"
                ));
            }
            if name.is_empty() && items.len() > 1 {
                return Err(format!(
                    "has {item:?} without a name: with several ports every one needs the Service port's name; {FORMAT}"
                ));
            }
            if ports.iter().any(|p: &SlicePort| p.name == name) {
                return Err(format!(
                    "names port {name:?} twice: names must be unique; {FORMAT}"
                ));
            }
            ports.push(SlicePort {
                name: name.to_owned(),
                port,
                protocol,
            });
        }
        Ok(Self(ports))
    }
}

/// What this process writes: the slice's identity and this pod's part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceTarget {
    /// The slice's name.
    pub name: String,
    /// Its namespace (the election's).
    pub namespace: String,
    /// The Service it belongs to.
    pub service: String,
    /// The election it follows.
    pub election: String,
    /// This pod's IP.
    pub address: IpAddr,
    /// The application's ports.
    pub ports: SlicePorts,
    /// This pod's name, for the endpoint's `targetRef`.
    pub pod_name: Option<String>,
}

impl SliceTarget {
    /// `IPv4` or `IPv6`, from the pod IP.
    pub fn address_type(&self) -> &'static str {
        match self.address {
            IpAddr::V4(_) => "IPv4",
            IpAddr::V6(_) => "IPv6",
        }
    }
}

/// The slice as this process wants it: naming this pod while `leading`, empty otherwise.
pub fn desired(target: &SliceTarget, leading: bool) -> EndpointSlice {
    let labels = [
        (SERVICE_NAME_LABEL, target.service.as_str()),
        (MANAGED_BY_LABEL, MANAGED_BY),
        (ELECTION_LABEL, target.election.as_str()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let endpoints = if leading {
        vec![Endpoint {
            addresses: vec![target.address.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            target_ref: target.pod_name.as_ref().map(|pod| ObjectReference {
                kind: Some("Pod".to_owned()),
                name: Some(pod.clone()),
                namespace: Some(target.namespace.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    let ports = target
        .ports
        .0
        .iter()
        .map(|port| EndpointPort {
            name: Some(port.name.clone()),
            port: Some(i32::from(port.port)),
            protocol: Some(port.protocol.as_str().to_owned()),
            ..Default::default()
        })
        .collect();
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        address_type: target.address_type().to_owned(),
        endpoints,
        ports: Some(ports),
    }
}

/// Whether `slice` names `address` in any endpoint.
pub fn names(slice: &EndpointSlice, address: IpAddr) -> bool {
    let address = address.to_string();
    slice.endpoints.iter().any(|e| e.addresses.contains(&address))
}

/// Whether `current` already says what `want` says (endpoints, ports, labels, address type), so
/// no write is needed.
pub fn same_content(current: &EndpointSlice, want: &EndpointSlice) -> bool {
    let labels_hold = want.metadata.labels.iter().flatten().all(|(key, value)| {
        current
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(key))
            == Some(value)
    });
    labels_hold
        && current.address_type == want.address_type
        && current.endpoints == want.endpoints
        && current.ports.as_deref().unwrap_or_default() == want.ports.as_deref().unwrap_or_default()
}

/// What one attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Created the slice naming this pod.
    Created,
    /// Replaced the slice's content with this pod's address.
    Updated,
    /// Emptied a slice that named this pod.
    Emptied,
    /// The slice already said what it should; nothing written.
    Unchanged,
    /// Stepping down, and the slice does not name this pod (absent, empty, or a successor's).
    NotOurs,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Emptied => "emptied",
            Outcome::Unchanged => "unchanged",
            Outcome::NotOurs => "not-ours",
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the slice failed.
    #[error("reading EndpointSlice {name}: {source}")]
    Read {
        /// The slice's name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// Creating or replacing the slice failed with something other than a lost race.
    #[error("writing EndpointSlice {name}: {source}")]
    Write {
        /// The slice's name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The existing slice has the other address family, which cannot change.
    #[error(
        "EndpointSlice {name} has addressType {found} but this pod's IP is {wanted}: addressType is \
         immutable; delete the slice (or use another --endpoint-slice name)"
    )]
    AddressType {
        /// The slice's name.
        name: String,
        /// The slice's address type.
        found: String,
        /// This pod's.
        wanted: &'static str,
    },
    /// Every write of the attempt lost a race (409).
    #[error("EndpointSlice {name} changed under every one of {MAX_WRITES_PER_ATTEMPT} writes (409 Conflict)")]
    Conflicts {
        /// The slice's name.
        name: String,
    },
    /// A call did not answer in time, or the claim ended before the write.
    #[error("EndpointSlice {name}: {what}")]
    Abandoned {
        /// The slice's name.
        name: String,
        /// What was abandoned and why.
        what: String,
    },
}

/// What `/status` shows of the slice.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SliceStatus {
    /// The slice's name.
    pub name: String,
    /// Whether the slice may name this pod, as far as this process knows: true from the moment a
    /// write naming it is sent until a read or write shows it does not.
    pub may_name_this_pod: bool,
    /// The last attempt's outcome (`created`, `updated`, `emptied`, `unchanged`, `not-ours`,
    /// `failed`), `null` before the first.
    pub last_result: Option<String>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// Receiving half of the slice status, for the HTTP surface.
pub type StatusReceiver = watch::Receiver<SliceStatus>;

/// Writes one EndpointSlice as leadership goes.
pub struct SliceWriter {
    api: Api<EndpointSlice>,
    target: SliceTarget,
    metrics: ElectionMetrics,
    writes: EndpointSliceMetrics,
    timeout: Duration,
    shutdown_budget: Duration,
    status: watch::Sender<SliceStatus>,
}

impl SliceWriter {
    /// Writes `target` through `client`, each call abandoned after `timeout` (and at the end of
    /// the claim) and counted in `metrics`, each write counted in `writes`; no call until
    /// [`SliceWriter::run`]. The status starts as "may name this pod": after a restart the slice
    /// may still carry this pod's address.
    pub fn new(
        client: Client,
        target: SliceTarget,
        metrics: ElectionMetrics,
        writes: EndpointSliceMetrics,
        timeout: Duration,
    ) -> (Self, StatusReceiver) {
        let (status, receiver) = watch::channel(SliceStatus {
            name: target.name.clone(),
            may_name_this_pod: true,
            last_result: None,
            last_error: None,
        });
        let writer = Self {
            api: Api::namespaced(client, &target.namespace),
            target,
            metrics,
            writes,
            timeout,
            shutdown_budget: timeout,
            status,
        };
        (writer, receiver)
    }

    /// The writer and its status when `config` has `--endpoint-slice` (the rules in
    /// [`crate::config`] ensure its Service, ports and pod IP come with it); each call is bounded
    /// by the renew deadline, like the pod label's patch, and the emptying at shutdown by half the
    /// shutdown timeout (the other half is the release delay's and the release's). Registers
    /// [`EndpointSliceMetrics`] in `registry`.
    pub fn from_config(
        config: &crate::config::Config,
        client: &Client,
        metrics: &ElectionMetrics,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Option<(Self, StatusReceiver)> {
        let (Some(name), Some(service), Some(ports), Some(address)) = (
            &config.endpoint_slice,
            &config.endpoint_slice_service,
            &config.endpoint_slice_ports,
            config.pod_ip,
        ) else {
            return None;
        };
        let target = SliceTarget {
            name: name.clone(),
            namespace: config.namespace.clone(),
            service: service.clone(),
            election: config.election.clone(),
            address,
            ports: ports.clone(),
            pod_name: config.pod_name.clone(),
        };
        let writes = EndpointSliceMetrics::register(registry, &config.election, &config.namespace);
        let (writer, status) = Self::new(
            client.clone(),
            target,
            metrics.clone(),
            writes,
            config.timing.renew_deadline,
        );
        Some((writer.with_shutdown_budget(config.shutdown_timeout / 2), status))
    }

    /// Bounds the whole emptying attempt at shutdown (reads, writes and retries after a 409) by
    /// `budget`, so that the release, which waits for it, still fits in the shutdown timeout.
    pub fn with_shutdown_budget(mut self, budget: Duration) -> Self {
        self.shutdown_budget = budget;
        self
    }

    /// The time a call may take now: the timeout, and while leading no later than the claim's end.
    fn budget(&self, state: &StateReceiver, leading: bool) -> Result<Duration, Error> {
        if !leading {
            return Ok(self.timeout);
        }
        let snapshot = state.borrow().clone();
        let now = Instant::now();
        if !snapshot.is_leader_at(now) {
            return Err(self.abandoned("the claim ended before the write"));
        }
        let left = snapshot
            .valid_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        Ok(self.timeout.min(left))
    }

    fn abandoned(&self, what: &str) -> Error {
        Error::Abandoned {
            name: self.target.name.clone(),
            what: what.to_owned(),
        }
    }

    /// One attempt to make the slice say `leading`.
    async fn attempt(&self, state: &StateReceiver, leading: bool) -> Result<Outcome, Error> {
        let name = &self.target.name;
        let want = desired(&self.target, leading);
        for _ in 0..MAX_WRITES_PER_ATTEMPT {
            let budget = self.budget(state, leading)?;
            let current = match self.metrics.call(Verb::Get, budget, self.api.get_opt(name)).await {
                Ok(Ok(current)) => current,
                Ok(Err(source)) => {
                    return Err(Error::Read {
                        name: name.clone(),
                        source,
                    });
                }
                Err(_) => return Err(self.abandoned(&format!("read timed out after {budget:?}"))),
            };
            let write = match current {
                None if !leading => return Ok(Outcome::NotOurs),
                Some(current) if !leading && !names(&current, self.target.address) => {
                    return Ok(Outcome::NotOurs);
                }
                Some(current) if current.address_type != want.address_type => {
                    return Err(Error::AddressType {
                        name: name.clone(),
                        found: current.address_type,
                        wanted: self.target.address_type(),
                    });
                }
                Some(current) if same_content(&current, &want) => return Ok(Outcome::Unchanged),
                None => None,
                Some(current) => Some(current.metadata.resource_version),
            };
            let budget = self.budget(state, leading)?;
            if leading {
                self.status.send_modify(|status| status.may_name_this_pod = true);
            }
            let params = PostParams::default();
            let (verb, result, outcome) = match write {
                None => {
                    let result = self
                        .metrics
                        .call(Verb::Create, budget, self.api.create(&params, &want));
                    (Verb::Create, result.await, Outcome::Created)
                }
                Some(resource_version) => {
                    let mut body = want.clone();
                    body.metadata.resource_version = resource_version;
                    let result =
                        self.metrics
                            .call(Verb::Update, budget, self.api.replace(name, &params, &body));
                    let outcome = if leading {
                        Outcome::Updated
                    } else {
                        Outcome::Emptied
                    };
                    (Verb::Update, result.await, outcome)
                }
            };
            match result {
                Ok(Ok(_)) => return Ok(outcome),
                // Someone wrote in between (or created it first): read again.
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                    self.writes.write(SliceWriteResult::Conflict);
                    tracing::info!(slice = %name, verb = verb.as_str(), "EndpointSlice changed meanwhile; reading it again");
                }
                Ok(Err(source)) => {
                    return Err(Error::Write {
                        name: name.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(self.abandoned(&format!("{} timed out after {budget:?}", verb.as_str())));
                }
            }
        }
        Err(Error::Conflicts { name: name.clone() })
    }

    /// Runs one attempt and reports it (status, metrics, one log line).
    async fn apply(&self, state: &StateReceiver, leading: bool) -> bool {
        let result = self.attempt(state, leading).await;
        let name = &self.target.name;
        let address = self.target.address;
        match &result {
            Ok(outcome) => {
                let counted = match outcome {
                    Outcome::Created => Some(SliceWriteResult::Created),
                    Outcome::Updated => Some(SliceWriteResult::Updated),
                    Outcome::Emptied => Some(SliceWriteResult::Emptied),
                    Outcome::Unchanged | Outcome::NotOurs => None,
                };
                if let Some(counted) = counted {
                    self.writes.write(counted);
                }
                tracing::info!(slice = %name, %address, leading, result = outcome.as_str(), "EndpointSlice written");
            }
            Err(error) => {
                self.writes.write(SliceWriteResult::Failed);
                tracing::warn!(slice = %name, %address, leading, %error, "could not write the EndpointSlice; retrying");
            }
        }
        self.status.send_modify(|status| match &result {
            Ok(outcome) => {
                status.may_name_this_pod = leading;
                status.last_result = Some(outcome.as_str().to_owned());
                status.last_error = None;
            }
            Err(error) => {
                status.last_result = Some("failed".to_owned());
                status.last_error = Some(error.to_string());
            }
        });
        result.is_ok()
    }

    /// Keeps the slice in step with the state until `shutdown`, then empties it if it names this
    /// pod (one attempt, bounded by the timeout).
    pub async fn run(self, mut state: StateReceiver, retry: Duration, shutdown: impl Future<Output = ()>) {
        // `apply` reads the claim before each call; `follow` holds the receiver it awaits.
        let claim = state.clone();
        let applied = crate::leadership_output::follow(&mut state, retry, shutdown, |leading| {
            self.apply(&claim, leading)
        })
        .await;
        if applied != Some(false) {
            let emptied = tokio::time::timeout(self.shutdown_budget, self.apply(&state, false)).await;
            if !matches!(emptied, Ok(true)) {
                tracing::warn!(
                    slice = %self.target.name,
                    budget = ?self.shutdown_budget,
                    "could not empty the EndpointSlice on shutdown; the release goes ahead and the next \
                     leader overwrites it"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str) -> SliceTarget {
        SliceTarget {
            name: "web-leader".into(),
            namespace: "ns".into(),
            service: "web".into(),
            election: "web".into(),
            address: address.parse().unwrap(),
            ports: SlicePorts::parse("http:8080").unwrap(),
            pod_name: Some("web-0".into()),
        }
    }

    #[test]
    fn the_leader_slice_names_only_this_pod_with_the_documented_shape() {
        let slice = desired(&target("10.1.2.3"), true);
        let json = serde_json::to_value(&slice).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-leader", "namespace": "ns", "labels": {
                    "kubernetes.io/service-name": "web",
                    "endpointslice.kubernetes.io/managed-by": "kube-elector.leader-endpoints",
                    "kube-elector/election": "web"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.2.3"],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "ns"}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            })
        );
        assert!(names(&slice, "10.1.2.3".parse().unwrap()));
        assert!(!names(&slice, "10.1.2.4".parse().unwrap()));
        let empty = desired(&target("10.1.2.3"), false);
        assert!(empty.endpoints.is_empty(), "a follower's slice has no endpoints");
        assert_eq!(desired(&target("fd00::7"), true).address_type, "IPv6");
    }

    #[test]
    fn same_content_ignores_metadata_the_server_adds_but_not_another_address() {
        let mut stored = desired(&target("10.1.2.3"), true);
        stored.metadata.resource_version = Some("7".into());
        stored.metadata.uid = Some("u".into());
        assert!(same_content(&stored, &desired(&target("10.1.2.3"), true)));
        assert!(!same_content(&stored, &desired(&target("10.1.2.4"), true)));
        assert!(!same_content(&stored, &desired(&target("10.1.2.3"), false)));
    }

    #[test]
    fn ports_parse_with_names_protocols_and_clear_refusals() {
        let ports = SlicePorts::parse("http:8080,dns:53/udp").unwrap();
        assert_eq!(ports.to_string(), "http:8080/TCP,dns:53/UDP");
        assert_eq!(SlicePorts::parse("8080").unwrap().to_string(), "8080/TCP");
        for (bad, says) in [
            ("", "names no port"),
            ("http:0", "use 1 to 65535"),
            ("http:99999", "use 1 to 65535"),
            ("http:80/ICMP", "use TCP, UDP or SCTP"),
            ("Http:80", "DNS-1123 label"),
            ("80,grpc:90", "every one needs the Service port's name"),
            ("a:1,a:2", "names port \"a\" twice"),
        ] {
            let error = SlicePorts::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: expected {says:?} in {error:?}");
        }
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::{Config, Host};

    fn load(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["kube-elector", "--election", "web", "--id", "a"];
        argv.extend_from_slice(args);
        Config::load_with(argv, &[], &Host::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_slice_settings_are_read_checked_and_printed() {
        let env = [("POD_IP".to_owned(), "fd00::5".to_owned())];
        let config = Config::load_with(
            [
                "kube-elector",
                "--election=web",
                "--id=a",
                "--endpoint-slice=web-leader",
                "--endpoint-slice-service=web",
                "--endpoint-slice-ports=http:8080",
            ],
            &env,
            &Host::default(),
        )
        .unwrap();
        assert_eq!(config.pod_ip, Some("fd00::5".parse().unwrap()), "POD_IP is read");
        let printed = config.render();
        for line in [
            "endpoint-slice: \"web-leader\"",
            "endpoint-slice-service: \"web\"",
            "endpoint-slice-ports: \"http:8080/TCP\"",
            "pod-ip: \"fd00::5\"",
        ] {
            assert!(
                printed.contains(line),
                "--print-config lacks {line:?}:\n{printed}"
            );
        }
    }

    #[test]
    fn a_slice_without_what_it_needs_or_its_parts_without_a_slice_are_refused() {
        let error = load(&[
            "--endpoint-slice",
            "s",
            "--endpoint-slice-ports",
            "http:80",
            "--pod-ip",
            "10.0.0.1",
        ])
        .unwrap_err();
        assert!(error.contains("endpoint-slice-service is required"), "{error}");
        let error = load(&[
            "--endpoint-slice",
            "s",
            "--endpoint-slice-service",
            "web",
            "--endpoint-slice-ports",
            "http:80",
        ])
        .unwrap_err();
        assert!(
            error.contains("pod-ip is required") && error.contains("status.podIP"),
            "{error}"
        );
        let error = load(&["--endpoint-slice-service", "web"]).unwrap_err();
        assert!(error.contains("pass --endpoint-slice NAME too"), "{error}");
        let error = load(&["--pod-ip", "10.0.0"]).unwrap_err();
        assert!(
            error.contains("pod-ip \"10.0.0\"") && error.contains("IPv4 or IPv6"),
            "{error}"
        );
        let error = load(&["--endpoint-slice-ports", "http:80/ICMP"]).unwrap_err();
        assert!(
            error.contains("endpoint-slice-ports") && error.contains("TCP, UDP or SCTP"),
            "{error}"
        );
    }
}
