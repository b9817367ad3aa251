//! The sidecar's configuration: the [`Config`] struct, layered loading and validation.
//!
//! Layers, later wins, field by field: built-in defaults < config file (`--config PATH` or
//! `ELECTOR_CONFIG`, YAML or TOML by extension, keys spelled like the flags) < environment
//! (`ELECTOR_*`, which beats the compatibility names `LEASE_NAME`, `NAMESPACE`, `POD_NAMESPACE`,
//! `POD_NAME`, `POD_UID`, `KUBECONFIG`) < command-line flags.
//!
//! Nothing the user gave is silently ignored: an unknown key in the file or an unknown `ELECTOR_*`
//! variable is an error (except Kubernetes' service-link variables such as `ELECTOR_SERVICE_HOST`,
//! which the kubelet injects for a Service named `elector`). Every error is one line naming the
//! field, the value, where it came from and the fix; [`Error::exit_code`] is 2 for all of them
//! (0 for `--help` and `--version`).
//!
//! `--ttl` is k8s-elector's shorthand: it sets lease duration = TTL, renew deadline = ⅔ TTL and
//! retry period = TTL / 7.5 (15s → 15s/10s/2s) in the layer where it is given. Giving `ttl` and an
//! explicit timing in the same layer is a conflict; across layers the usual precedence applies.
//!
//! Every duration has bounds, checked here so that nothing later can overflow: the timings as
//! in [`crate::election::Timing`] (lease duration 1s to 24h, which fits the Lease's int32
//! seconds), `shutdown-timeout` above 0 and at most [`MAX_SHUTDOWN_TIMEOUT`] (1h),
//! `release-delay` from 0 to half the shutdown timeout (the other half is the release write's).
//!
//! For optional values (`kubeconfig`, `leader-file`, `pod-label`, `pod-name`) an empty string in a
//! higher layer means "none", so a flag or variable can switch off what the file set.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::election::{FollowMode, LockType, Timing, TimingError};

/// Pod label key used by a bare `--pod-label`.
pub const DEFAULT_POD_LABEL: &str = "kube-elector/role";
/// Where Kubernetes mounts the pod's namespace.
pub const IN_CLUSTER_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest shutdown timeout accepted; a pod's grace period is rarely more than minutes.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Default wait between stepping down and releasing at shutdown: one readiness-probe period of
/// the shipped manifests, so the Service stops routing to this pod about when a successor can
/// lead (see the README's "Shutdown" section).
pub const DEFAULT_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effective, validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Name of the lock object: a non-empty DNS-1123 subdomain.
    pub election: String,
    pub namespace: String,
    pub identity: String,
    pub lock_type: LockType,
    pub timing: Timing,
    pub follow: FollowMode,
    pub http: SocketAddr,
    /// `None`: in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    pub leader_file: Option<PathBuf>,
    /// Label key set to `leader`/`follower` on this pod; requires `pod_name`.
    pub pod_label: Option<String>,
    pub pod_name: Option<String>,
    /// This pod's UID (downward API `metadata.uid`), part of the incarnation.
    pub pod_uid: Option<String>,
    pub release_on_shutdown: bool,
    /// Bound on the whole shutdown (release delay and release included).
    pub shutdown_timeout: Duration,
    /// Wait between stepping down and writing the release, at most half of `shutdown_timeout`.
    pub release_delay: Duration,
    /// Emit "became leader" / "stopped leading" Events.
    pub events: bool,
    pub log_format: LogFormat,
    /// A level or `tracing` directives; `RUST_LOG` overrides it.
    pub log_level: String,
    /// `--print-config` was given: print [`Config::render`] and exit instead of running.
    pub print_config: bool,
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

/// Why a configuration is refused. Every message is complete on its own (one line).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// clap's own outcome: a usage error, or `--help` / `--version` (exit code 0).
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("invalid configuration: {field} {value:?} (from {origin}) {rule}")]
    InvalidValue {
        field: &'static str,
        value: String,
        origin: Origin,
        rule: String,
    },
    #[error("invalid configuration: {field} is required: {fix}")]
    Missing { field: &'static str, fix: String },
    #[error(
        "invalid configuration: {first} (from {first_origin}) conflicts with {second} (from {second_origin}): {fix}"
    )]
    Conflict {
        first: &'static str,
        first_origin: Origin,
        second: &'static str,
        second_origin: Origin,
        fix: String,
    },
    #[error("invalid configuration: timing ({origins}): {reason}")]
    Timing { origins: String, reason: TimingError },
    #[error("invalid configuration: config file {path}: cannot read it: {reason}")]
    FileUnreadable { path: PathBuf, reason: std::io::Error },
    #[error(
        "invalid configuration: config file {path}: unsupported extension; name it *.yaml, *.yml or *.toml"
    )]
    FileFormat { path: PathBuf },
    #[error("invalid configuration: config file {path}: cannot parse it as {format}: {reason}")]
    FileUnparseable {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("invalid configuration: config file {path}: unknown key {key:?}{hint}; known keys: {known}")]
    FileUnknownKey {
        path: PathBuf,
        key: String,
        hint: String,
        known: String,
    },
    #[error(
        "invalid configuration: config file {path}: key {key:?} must be a single value, not a list or table"
    )]
    FileNotScalar { path: PathBuf, key: String },
    #[error("invalid configuration: unknown environment variable {name}{hint}; known: {known}")]
    UnknownEnv {
        name: String,
        hint: String,
        known: String,
    },
}

impl Error {
    /// The process exit code for this outcome: 0 for `--help`/`--version`, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Cli(error) => u8::try_from(error.exit_code()).unwrap_or(2),
            _ => 2,
        }
    }

    /// `--help` or `--version`: print to stdout and exit successfully.
    pub fn is_help_or_version(&self) -> bool {
        matches!(self, Error::Cli(error) if matches!(
            error.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ))
    }
}

/// Facts about the host used for defaults, detected once; tests pass their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// Contents of the in-cluster namespace file, if mounted.
    pub in_cluster_namespace: Option<String>,
    /// The kernel's host name.
    pub hostname: Option<String>,
}

impl Host {
    /// Reads the in-cluster namespace file and the kernel host name.
    pub fn detect() -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Self {
            in_cluster_namespace: read(IN_CLUSTER_NAMESPACE_FILE),
            hostname: read("/proc/sys/kernel/hostname").or_else(|| read("/etc/hostname")),
        }
    }
}

/// Every configurable field, by its flag / file-key name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Election,
    Namespace,
    Id,
    LockType,
    LeaseDuration,
    RenewDeadline,
    RetryPeriod,
    Ttl,
    Follow,
    Http,
    Kubeconfig,
    LeaderFile,
    PodLabel,
    PodName,
    PodUid,
    ReleaseOnShutdown,
    ShutdownTimeout,
    ReleaseDelay,
    Events,
    LogFormat,
    LogLevel,
}

impl Key {
    const ALL: [Key; 21] = [
        Key::Election,
        Key::Namespace,
        Key::Id,
        Key::LockType,
        Key::LeaseDuration,
        Key::RenewDeadline,
        Key::RetryPeriod,
        Key::Ttl,
        Key::Follow,
        Key::Http,
        Key::Kubeconfig,
        Key::LeaderFile,
        Key::PodLabel,
        Key::PodName,
        Key::PodUid,
        Key::ReleaseOnShutdown,
        Key::ShutdownTimeout,
        Key::ReleaseDelay,
        Key::Events,
        Key::LogFormat,
        Key::LogLevel,
    ];

    /// Flag name without dashes, and the config file key.
    fn name(self) -> &'static str {
        match self {
            Key::Election => "election",
            Key::Namespace => "namespace",
            Key::Id => "id",
            Key::LockType => "lock-type",
            Key::LeaseDuration => "lease-duration",
            Key::RenewDeadline => "renew-deadline",
            Key::RetryPeriod => "retry-period",
            Key::Ttl => "ttl",
            Key::Follow => "follow",
            Key::Http => "http",
            Key::Kubeconfig => "kubeconfig",
            Key::LeaderFile => "leader-file",
            Key::PodLabel => "pod-label",
            Key::PodName => "pod-name",
            Key::PodUid => "pod-uid",
            Key::ReleaseOnShutdown => "release-on-shutdown",
            Key::ShutdownTimeout => "shutdown-timeout",
            Key::ReleaseDelay => "release-delay",
            Key::Events => "events",
            Key::LogFormat => "log-format",
            Key::LogLevel => "log-level",
        }
    }

    /// `ELECTOR_` + the name in upper snake case.
    fn env(self) -> String {
        format!("ELECTOR_{}", self.name().to_ascii_uppercase().replace('-', "_"))
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// One value as given, with its origin.
#[derive(Clone, Debug)]
struct Given {
    value: String,
    origin: Origin,
}

type Layer = BTreeMap<Key, Given>;

/// Command-line flags. Every value stays a string here so that all layers are parsed and reported
/// the same way.
#[derive(Debug, Parser)]
#[command(
    name = "kube-elector",
    version,
    about = "Leader-election sidecar for Kubernetes: one leader per election, readiness gating, \
             a leader file, metrics and fencing tokens.",
    after_help = "Precedence, later wins: defaults < config file < environment (ELECTOR_* beats \
                  LEASE_NAME, NAMESPACE, POD_NAMESPACE, POD_NAME, POD_UID, KUBECONFIG) < flags.\n\
                  Durations need a unit: 500ms, 15s, 1m, 1m30s, 1h.\n\
                  Config file keys are the flag names (lease-duration: 15s); unknown keys and \
                  unknown ELECTOR_* variables are errors."
)]
struct Cli {
    #[arg(
        long,
        value_name = "NAME",
        help = "Name of the lock object, a DNS-1123 subdomain; required \
        [env: ELECTOR_ELECTION, LEASE_NAME]"
    )]
    election: Option<String>,
    #[arg(
        long,
        value_name = "NAMESPACE",
        help = "Namespace of the lock object [env: ELECTOR_NAMESPACE, \
        NAMESPACE, POD_NAMESPACE] [default: the pod's namespace in-cluster, else \"default\"]"
    )]
    namespace: Option<String>,
    #[arg(
        long,
        value_name = "ID",
        help = "Identity of this process in the election [env: ELECTOR_ID] \
        [default: the pod name (POD_NAME or --pod-name), else the host name]"
    )]
    id: Option<String>,
    #[arg(
        long,
        value_name = "TYPE",
        help = "Kind of lock object: leases, configmaps or endpoints \
        [env: ELECTOR_LOCK_TYPE] [default: leases]"
    )]
    lock_type: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "How long others wait after the last renew before \
        taking over; whole seconds [env: ELECTOR_LEASE_DURATION] [default: 15s]"
    )]
    lease_duration: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "How long the leader keeps leading without a successful \
        renew; below lease-duration [env: ELECTOR_RENEW_DEADLINE] [default: 10s]"
    )]
    renew_deadline: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "Interval between renews and follower retries \
        [env: ELECTOR_RETRY_PERIOD] [default: 2s]"
    )]
    retry_period: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "k8s-elector shorthand: lease-duration = TTL, \
        renew-deadline = 2/3 TTL, retry-period = TTL/7.5; not together with those flags \
        [env: ELECTOR_TTL]"
    )]
    ttl: Option<String>,
    #[arg(
        long,
        value_name = "MODE",
        help = "How followers learn of changes: watch or poll \
        [env: ELECTOR_FOLLOW] [default: watch]"
    )]
    follow: Option<String>,
    #[arg(
        long,
        value_name = "ADDR",
        help = "Listen address of the HTTP server (/readyz, /livez, /status, \
        /metrics); :PORT means all interfaces [env: ELECTOR_HTTP] [default: 0.0.0.0:8080]"
    )]
    http: Option<String>,
    #[arg(
        long,
        value_name = "PATH",
        help = "Kubeconfig file; without it the in-cluster configuration is \
        used [env: ELECTOR_KUBECONFIG, KUBECONFIG]"
    )]
    kubeconfig: Option<String>,
    #[arg(
        long,
        value_name = "PATH",
        help = "File that exists, holding the leader's identity, only \
        while this process leads, e.g. /tmp/leader_status [env: ELECTOR_LEADER_FILE] [default: none]"
    )]
    leader_file: Option<String>,
    #[arg(long, value_name = "KEY", num_args = 0..=1, default_missing_value = DEFAULT_POD_LABEL,
        help = "Label this pod KEY=leader|follower; a bare flag uses kube-elector/role; needs the pod \
        name [env: ELECTOR_POD_LABEL] [default: none]")]
    pod_label: Option<String>,
    #[arg(
        long,
        value_name = "NAME",
        help = "Name of this pod, for --pod-label and the default identity \
        [env: ELECTOR_POD_NAME, POD_NAME]"
    )]
    pod_name: Option<String>,
    #[arg(
        long,
        value_name = "UID",
        help = "UID of this pod, so that a restarted container takes its predecessor's lock back at \
        once [env: ELECTOR_POD_UID, POD_UID]"
    )]
    pod_uid: Option<String>,
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true",
        help = "Release the lock on shutdown so a follower takes over at once \
        [env: ELECTOR_RELEASE_ON_SHUTDOWN] [default: true]")]
    release_on_shutdown: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "Bound on the whole shutdown, release delay and release included; at most 1h \
        [env: ELECTOR_SHUTDOWN_TIMEOUT] [default: 5s]"
    )]
    shutdown_timeout: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = "Wait between stepping down (readiness 503, leader file and \
        pod label gone) and releasing the lock at shutdown; at most half of shutdown-timeout \
        [env: ELECTOR_RELEASE_DELAY] [default: 1s]"
    )]
    release_delay: Option<String>,
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true",
        help = "Emit \"became leader\" / \"stopped leading\" Events [env: ELECTOR_EVENTS] [default: true]")]
    events: Option<String>,
    #[arg(
        long,
        value_name = "FORMAT",
        help = "Log format: text or json [env: ELECTOR_LOG_FORMAT] \
        [default: text]"
    )]
    log_format: Option<String>,
    #[arg(
        long,
        value_name = "LEVEL",
        help = "Log level or tracing directives; RUST_LOG overrides it \
        [env: ELECTOR_LOG_LEVEL] [default: info]"
    )]
    log_level: Option<String>,
    #[arg(
        long,
        value_name = "PATH",
        help = "Config file, YAML (.yaml, .yml) or TOML (.toml); keys are \
        the flag names [env: ELECTOR_CONFIG]"
    )]
    config: Option<String>,
    #[arg(long, help = "Print the effective configuration as YAML and exit")]
    print_config: bool,
}

impl Cli {
    fn layer(&self) -> Layer {
        let values = [
            (Key::Election, &self.election),
            (Key::Namespace, &self.namespace),
            (Key::Id, &self.id),
            (Key::LockType, &self.lock_type),
            (Key::LeaseDuration, &self.lease_duration),
            (Key::RenewDeadline, &self.renew_deadline),
            (Key::RetryPeriod, &self.retry_period),
            (Key::Ttl, &self.ttl),
            (Key::Follow, &self.follow),
            (Key::Http, &self.http),
            (Key::Kubeconfig, &self.kubeconfig),
            (Key::LeaderFile, &self.leader_file),
            (Key::PodLabel, &self.pod_label),
            (Key::PodName, &self.pod_name),
            (Key::PodUid, &self.pod_uid),
            (Key::ReleaseOnShutdown, &self.release_on_shutdown),
            (Key::ShutdownTimeout, &self.shutdown_timeout),
            (Key::ReleaseDelay, &self.release_delay),
            (Key::Events, &self.events),
            (Key::LogFormat, &self.log_format),
            (Key::LogLevel, &self.log_level),
        ];
        values
            .into_iter()
            .filter_map(|(key, value)| {
                value.as_ref().map(|value| {
                    (
                        key,
                        Given {
                            value: value.clone(),
                            origin: Origin::Flag(key.name()),
                        },
                    )
                })
            })
            .collect()
    }
}

/// Compatibility variables, lowest priority within the environment layer.
const COMPAT_ENV: [(&str, Key); 6] = [
    ("LEASE_NAME", Key::Election),
    ("NAMESPACE", Key::Namespace),
    ("POD_NAMESPACE", Key::Namespace),
    ("POD_NAME", Key::PodName),
    ("POD_UID", Key::PodUid),
    ("KUBECONFIG", Key::Kubeconfig),
];
const CONFIG_ENV: &str = "ELECTOR_CONFIG";

impl Config {
    /// Parses args (args[0] = program name) and layers env + file. `env` is the process environment
    /// as pairs. Returns `Err` for `--help`/`--version` too (clap's own) so main can print and exit.
    pub fn load<I, T>(args: I, env: &[(String, String)]) -> Result<Config, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::load_with(args, env, &Host::detect())
    }

    /// [`Config::load`] with the host facts given instead of detected.
    pub fn load_with<I, T>(args: I, env: &[(String, String)], host: &Host) -> Result<Config, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        let flags = cli.layer();
        let (env_layer, env_config) = env_layer(env)?;
        let config_path = match (&cli.config, env_config) {
            (Some(path), _) => Some(Given {
                value: path.clone(),
                origin: Origin::Flag("config"),
            }),
            (None, Some(given)) => Some(given),
            (None, None) => None,
        };
        let file = match config_path {
            Some(given) => file_layer(&given)?,
            None => Layer::new(),
        };
        let layers = [&file, &env_layer, &flags];
        let resolved = Resolved { layers };
        resolved.build(host, cli.print_config)
    }

    /// Effective configuration for `--print-config`: YAML with every field, readable back as a
    /// config file.
    pub fn render(&self) -> String {
        fn quoted(value: &str) -> String {
            // A JSON string is a valid YAML double-quoted scalar.
            serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
        }
        fn optional(value: Option<String>) -> String {
            value.map_or_else(|| "null".to_owned(), |value| quoted(&value))
        }
        let path = |path: &Option<PathBuf>| path.as_ref().map(|p| p.to_string_lossy().into_owned());
        let lines = [
            ("election", quoted(&self.election)),
            ("namespace", quoted(&self.namespace)),
            ("id", quoted(&self.identity)),
            ("lock-type", quoted(self.lock_type.as_str())),
            (
                "lease-duration",
                quoted(&format_duration(self.timing.lease_duration)),
            ),
            (
                "renew-deadline",
                quoted(&format_duration(self.timing.renew_deadline)),
            ),
            ("retry-period", quoted(&format_duration(self.timing.retry_period))),
            ("follow", quoted(self.follow.as_str())),
            ("http", quoted(&self.http.to_string())),
            ("kubeconfig", optional(path(&self.kubeconfig))),
            ("leader-file", optional(path(&self.leader_file))),
            ("pod-label", optional(self.pod_label.clone())),
            ("pod-name", optional(self.pod_name.clone())),
            ("pod-uid", optional(self.pod_uid.clone())),
            ("release-on-shutdown", self.release_on_shutdown.to_string()),
            (
                "shutdown-timeout",
                quoted(&format_duration(self.shutdown_timeout)),
            ),
            ("release-delay", quoted(&format_duration(self.release_delay))),
            ("events", self.events.to_string()),
            ("log-format", quoted(self.log_format.as_str())),
            ("log-level", quoted(&self.log_level)),
        ];
        let mut out = String::from("# kube-elector effective configuration\n");
        for (key, value) in lines {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(&value);
            out.push('\n');
        }
        out
    }

    /// How long `/livez` tolerates no progress from the election loop: lease duration + renew
    /// deadline. The loop reports progress after every step, and at least every retry period
    /// while idle; its longest step is one attempt, which takes at most one renew deadline
    /// ([`Timing::attempt_budget`]; a leader's calls stop at its claim's end, which is at most a
    /// renew deadline away). So the bound covers the worst attempt with a lease duration to
    /// spare for a starved CPU.
    pub fn liveness_bound(&self) -> Duration {
        let worst_attempt = self.timing.attempt_budget().max(self.timing.renew_deadline);
        self.timing.lease_duration.saturating_add(worst_attempt)
    }
}

/// Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<NAME>]`, `<SERVICE>_PORT`
/// and `<SERVICE>_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]` for every Service in the namespace; a
/// Service named `elector…` must not stop the sidecar from starting.
fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_PORT") || name.contains("_SERVICE_PORT") {
        return true;
    }
    // `_PORT_<digits>_<TCP|UDP|SCTP>` anywhere.
    name.match_indices("_PORT_").any(|(at, _)| {
        let rest = &name[at + "_PORT_".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0
            && ["_TCP", "_UDP", "_SCTP"]
                .iter()
                .any(|proto| rest[digits..].starts_with(proto))
    })
}

/// The environment layer (`ELECTOR_*` over the compatibility names) and the config file path.
fn env_layer(env: &[(String, String)]) -> Result<(Layer, Option<Given>), Error> {
    let mut compat = Layer::new();
    let mut compat_names: BTreeMap<Key, &'static str> = BTreeMap::new();
    let mut elector = Layer::new();
    let mut config = None;
    for (name, value) in env {
        if let Some(suffix) = name.strip_prefix("ELECTOR_") {
            if name == CONFIG_ENV {
                config = Some(Given {
                    value: value.clone(),
                    origin: Origin::Env(name.clone()),
                });
                continue;
            }
            let key = Key::ALL.into_iter().find(|key| key.env() == *name);
            match key {
                Some(key) => {
                    elector.insert(
                        key,
                        Given {
                            value: value.clone(),
                            origin: Origin::Env(name.clone()),
                        },
                    );
                }
                None if is_service_link(name) => {}
                None => {
                    let mut known: Vec<String> = Key::ALL.iter().map(|key| key.env()).collect();
                    known.push(CONFIG_ENV.to_owned());
                    let hint = closest(
                        suffix,
                        &known.iter().map(|k| &k["ELECTOR_".len()..]).collect::<Vec<_>>(),
                    )
                    .map(|k| format!(" (did you mean ELECTOR_{k}?)"))
                    .unwrap_or_default();
                    return Err(Error::UnknownEnv {
                        name: name.clone(),
                        hint,
                        known: known.join(", "),
                    });
                }
            }
            continue;
        }
        let Some(&(compat_name, key)) = COMPAT_ENV.iter().find(|(compat_name, _)| compat_name == name) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let given = Given {
            value: value.clone(),
            origin: Origin::Env(name.clone()),
        };
        // Two compatibility names for one field (NAMESPACE, POD_NAMESPACE) must agree.
        if let Some((previous_name, previous)) = compat_names.get(&key).zip(compat.get(&key))
            && *previous_name != compat_name
            && previous.value != given.value
        {
            return Err(Error::Conflict {
                first: previous_name,
                first_origin: previous.origin.clone(),
                second: compat_name,
                second_origin: given.origin,
                fix: format!(
                    "they name different namespaces ({:?} and {:?}); unset one or set ELECTOR_NAMESPACE",
                    previous.value, value
                ),
            });
        }
        compat_names.insert(key, compat_name);
        compat.insert(key, given);
    }
    compat.append(&mut elector);
    Ok((compat, config))
}

/// The nearest candidate by edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut previous = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let current = row[j + 1];
                row[j + 1] = (previous + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(current + 1);
                previous = current;
            }
        }
        row[b.len()]
    }
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| (distance(&word, &candidate.to_ascii_lowercase()), *candidate))
        .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Reads and parses the config file into a layer.
fn file_layer(given: &Given) -> Result<Layer, Error> {
    let path = PathBuf::from(&given.value);
    if given.value.is_empty() {
        return Err(Error::InvalidValue {
            field: "config",
            value: given.value.clone(),
            origin: given.origin.clone(),
            rule: "must name a file; remove it or give a path".to_owned(),
        });
    }
    let (format, format_name) = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => (config::FileFormat::Yaml, "YAML"),
        Some("toml") => (config::FileFormat::Toml, "TOML"),
        _ => return Err(Error::FileFormat { path }),
    };
    let text = std::fs::read_to_string(&path).map_err(|reason| Error::FileUnreadable {
        path: path.clone(),
        reason,
    })?;
    let table = config::Format::parse(&format, None, &text).map_err(|reason| Error::FileUnparseable {
        path: path.clone(),
        format: format_name,
        reason: one_line(&reason.to_string()),
    })?;
    let mut layer = Layer::new();
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (raw_key, value) in entries {
        let normalized = raw_key.replace('_', "-");
        let Some(key) = Key::from_name(&normalized) else {
            let names: Vec<&str> = Key::ALL.iter().map(|key| key.name()).collect();
            let hint = closest(&normalized, &names)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            return Err(Error::FileUnknownKey {
                path,
                key: raw_key,
                hint,
                known: names.join(", "),
            });
        };
        let text = match value.kind {
            config::ValueKind::Nil => continue,
            config::ValueKind::Boolean(v) => v.to_string(),
            config::ValueKind::I64(v) => v.to_string(),
            config::ValueKind::I128(v) => v.to_string(),
            config::ValueKind::U64(v) => v.to_string(),
            config::ValueKind::U128(v) => v.to_string(),
            config::ValueKind::Float(v) => v.to_string(),
            config::ValueKind::String(v) => v,
            config::ValueKind::Table(_) | config::ValueKind::Array(_) => {
                return Err(Error::FileNotScalar { path, key: raw_key });
            }
        };
        if let Some(previous) = layer.get(&key) {
            return Err(Error::InvalidValue {
                field: key.name(),
                value: text,
                origin: Origin::File(path.clone()),
                rule: format!("is given twice in the file (also {:?}); keep one", previous.value),
            });
        }
        layer.insert(
            key,
            Given {
                value: text,
                origin: Origin::File(path.clone()),
            },
        );
    }
    Ok(layer)
}

/// A parser's message on one line: TOML's caret diagram (`1 | key =`, `  |  ^`) is dropped.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| {
            let diagram = line.starts_with('|')
                || line
                    .split_once(" |")
                    .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
            !line.is_empty() && !diagram
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The layers, lowest first, and the rules that turn them into a [`Config`].
struct Resolved<'a> {
    layers: [&'a Layer; 3],
}

impl Resolved<'_> {
    /// The highest-precedence value of `key`.
    fn pick(&self, key: Key) -> Option<&Given> {
        self.layers.iter().rev().find_map(|layer| layer.get(&key))
    }

    /// Parses the highest-precedence value of `key` with `parse`, or returns `default`.
    fn parsed<T>(&self, key: Key, default: T, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, Error> {
        match self.pick(key) {
            Some(given) => parse(&given.value).map_err(|rule| invalid(key, given, rule)),
            None => Ok(default),
        }
    }

    /// An optional value: `None` when absent or given as the empty string.
    fn optional(&self, key: Key) -> Option<&Given> {
        self.pick(key).filter(|given| !given.value.is_empty())
    }

    fn build(&self, host: &Host, print_config: bool) -> Result<Config, Error> {
        let election = match self.pick(Key::Election) {
            Some(given) => {
                check_dns_subdomain(&given.value).map_err(|rule| invalid(Key::Election, given, rule))?;
                given.value.clone()
            }
            None => {
                return Err(Error::Missing {
                    field: "election",
                    fix: "pass --election NAME or set ELECTOR_ELECTION (or LEASE_NAME); it names the lock object"
                        .to_owned(),
                });
            }
        };
        let namespace = match self.pick(Key::Namespace) {
            Some(given) => {
                check_dns_label(&given.value).map_err(|rule| invalid(Key::Namespace, given, rule))?;
                given.value.clone()
            }
            None => host
                .in_cluster_namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
        };
        let pod_name = match self.optional(Key::PodName) {
            Some(given) => {
                check_dns_subdomain(&given.value).map_err(|rule| invalid(Key::PodName, given, rule))?;
                Some(given.value.clone())
            }
            None => None,
        };
        let pod_uid = match self.optional(Key::PodUid) {
            Some(given) => {
                check_pod_uid(&given.value).map_err(|rule| invalid(Key::PodUid, given, rule))?;
                Some(given.value.clone())
            }
            None => None,
        };
        let identity = match self.pick(Key::Id) {
            Some(given) => {
                check_identity(&given.value).map_err(|rule| invalid(Key::Id, given, rule))?;
                given.value.clone()
            }
            None => match pod_name.clone().or_else(|| host.hostname.clone()) {
                Some(identity) => identity,
                None => {
                    return Err(Error::Missing {
                        field: "id",
                        fix: "no pod name or host name was found; pass --id or set ELECTOR_ID or POD_NAME"
                            .to_owned(),
                    });
                }
            },
        };
        let lock_type = self.parsed(Key::LockType, LockType::default(), parse_lock_type)?;
        let timing = self.timing()?;
        let follow = self.parsed(Key::Follow, FollowMode::default(), parse_follow)?;
        let http = self.parsed(Key::Http, default_http(), parse_http)?;
        let kubeconfig = match self.optional(Key::Kubeconfig) {
            Some(given) => {
                Some(check_kubeconfig(&given.value).map_err(|rule| invalid(Key::Kubeconfig, given, rule))?)
            }
            None => None,
        };
        let leader_file = match self.optional(Key::LeaderFile) {
            Some(given) => {
                Some(check_leader_file(&given.value).map_err(|rule| invalid(Key::LeaderFile, given, rule))?)
            }
            None => None,
        };
        let pod_label = match self.optional(Key::PodLabel) {
            Some(given) => {
                check_label_key(&given.value).map_err(|rule| invalid(Key::PodLabel, given, rule))?;
                if pod_name.is_none() {
                    return Err(Error::Missing {
                        field: "pod-name",
                        fix: format!(
                            "pod-label {:?} (from {}) labels this pod, so its name must be known: pass \
                             --pod-name or set POD_NAME from the downward API (fieldRef metadata.name)",
                            given.value, given.origin
                        ),
                    });
                }
                Some(given.value.clone())
            }
            None => None,
        };
        let release_on_shutdown = self.parsed(Key::ReleaseOnShutdown, true, parse_bool)?;
        let shutdown_timeout = self.parsed(Key::ShutdownTimeout, DEFAULT_SHUTDOWN_TIMEOUT, |text| {
            let value = parse_duration(text)?;
            if value.is_zero() {
                return Err("must be greater than 0; use e.g. 5s".to_owned());
            }
            if value > MAX_SHUTDOWN_TIMEOUT {
                return Err(
                    "is longer than the maximum of 1h; keep it below the pod's terminationGracePeriodSeconds, \
                     e.g. 5s"
                        .to_owned(),
                );
            }
            Ok(value)
        })?;
        let release_delay = self.parsed(Key::ReleaseDelay, DEFAULT_RELEASE_DELAY, parse_duration)?;
        if release_delay > shutdown_timeout / 2 {
            let delay = self
                .pick(Key::ReleaseDelay)
                .map_or(Origin::Default, |g| g.origin.clone());
            let timeout = self
                .pick(Key::ShutdownTimeout)
                .map_or(Origin::Default, |g| g.origin.clone());
            return Err(Error::Conflict {
                first: "release-delay",
                first_origin: delay,
                second: "shutdown-timeout",
                second_origin: timeout,
                fix: format!(
                    "release-delay {} must be at most half of shutdown-timeout {}, so the release has \
                     time to be written: lower --release-delay or raise --shutdown-timeout",
                    format_duration(release_delay),
                    format_duration(shutdown_timeout)
                ),
            });
        }
        let events = self.parsed(Key::Events, true, parse_bool)?;
        let log_format = self.parsed(Key::LogFormat, LogFormat::Text, parse_log_format)?;
        let log_level = self.parsed(Key::LogLevel, "info".to_owned(), parse_log_level)?;
        Ok(Config {
            election,
            namespace,
            identity,
            lock_type,
            timing,
            follow,
            http,
            kubeconfig,
            leader_file,
            pod_label,
            pod_name,
            pod_uid,
            release_on_shutdown,
            shutdown_timeout,
            release_delay,
            events,
            log_format,
            log_level,
            print_config,
        })
    }

    /// Applies the layers in order: `ttl` sets all three timings in its layer, an explicit
    /// timing sets one; then [`Timing::new`] checks client-go's rules.
    fn timing(&self) -> Result<Timing, Error> {
        let mut lease = (Timing::DEFAULT.lease_duration, Origin::Default);
        let mut renew = (Timing::DEFAULT.renew_deadline, Origin::Default);
        let mut retry = (Timing::DEFAULT.retry_period, Origin::Default);
        let duration =
            |key: Key, given: &Given| parse_duration(&given.value).map_err(|rule| invalid(key, given, rule));
        for layer in self.layers {
            if let Some(ttl) = layer.get(&Key::Ttl) {
                let explicit = [Key::LeaseDuration, Key::RenewDeadline, Key::RetryPeriod]
                    .into_iter()
                    .find_map(|key| layer.get(&key).map(|given| (key, given)));
                if let Some((key, given)) = explicit {
                    return Err(Error::Conflict {
                        first: "ttl",
                        first_origin: ttl.origin.clone(),
                        second: key.name(),
                        second_origin: given.origin.clone(),
                        fix:
                            "ttl sets lease-duration, renew-deadline and retry-period together; give either \
                              ttl or the explicit timings"
                                .to_owned(),
                    });
                }
                let value = duration(Key::Ttl, ttl)?;
                if value < Duration::from_secs(1) || value.subsec_nanos() != 0 {
                    return Err(invalid(
                        Key::Ttl,
                        ttl,
                        "must be a whole number of seconds, at least 1s (it becomes the lease duration); use e.g. 15s"
                            .to_owned(),
                    ));
                }
                let nanos = value.as_nanos();
                let derived = |numerator: u128, denominator: u128| {
                    let n = nanos * numerator / denominator;
                    Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
                };
                lease = (value, ttl.origin.clone());
                renew = (derived(2, 3), ttl.origin.clone());
                retry = (derived(2, 15), ttl.origin.clone());
                continue;
            }
            if let Some(given) = layer.get(&Key::LeaseDuration) {
                lease = (duration(Key::LeaseDuration, given)?, given.origin.clone());
            }
            if let Some(given) = layer.get(&Key::RenewDeadline) {
                renew = (duration(Key::RenewDeadline, given)?, given.origin.clone());
            }
            if let Some(given) = layer.get(&Key::RetryPeriod) {
                retry = (duration(Key::RetryPeriod, given)?, given.origin.clone());
            }
        }
        Timing::new(lease.0, renew.0, retry.0).map_err(|reason| Error::Timing {
            origins: format!(
                "lease-duration {} from {}, renew-deadline {} from {}, retry-period {} from {}",
                format_duration(lease.0),
                lease.1,
                format_duration(renew.0),
                renew.1,
                format_duration(retry.0),
                retry.1
            ),
            reason,
        })
    }
}

fn invalid(key: Key, given: &Given, rule: String) -> Error {
    Error::InvalidValue {
        field: key.name(),
        value: given.value.clone(),
        origin: given.origin.clone(),
        rule,
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

/// Parses `15s`, `500ms`, `1m30s`, `1.5s`, `2h`; units `h`, `m`, `s`, `ms`, `us` (`µs`), `ns`.
/// A bare number is refused: the error says which unit to add.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; write a duration such as 15s".to_owned());
    }
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "has no unit; write {text}s for seconds (or {text}ms, {text}m)"
        ));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "is not a duration; expected a number at {rest:?}, as in 15s, 500ms or 1m30s"
            ));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            "" => {
                return Err(format!(
                    "has a number without a unit ({number:?}); add one of h, m, s, ms, us, ns"
                ));
            }
            other => {
                return Err(format!(
                    "has an unknown unit {other:?}; use h, m, s, ms, us or ns (e.g. 1m30s)"
                ));
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(format!("has a malformed number {number:?}; write e.g. 1.5s"));
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("has a number too large ({number:?})"))?
        };
        let mut part = whole
            .checked_mul(unit_ns)
            .ok_or_else(|| format!("is too long ({text:?})"))?;
        let mut scale = unit_ns;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            part += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("is too long ({text:?})"))?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| format!("is too long ({text:?})"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// The shortest exact spelling of `duration` that [`parse_duration`] reads back: `1h2m3s`, `1500ms`.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    if duration.subsec_nanos() == 0 {
        let secs = duration.as_secs();
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if s > 0 {
            out.push_str(&format!("{s}s"));
        }
        return out;
    }
    let nanos = duration.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

fn parse_lock_type(text: &str) -> Result<LockType, String> {
    LockType::ALL
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| "is not a lock type; use leases, configmaps or endpoints".to_owned())
}

fn parse_follow(text: &str) -> Result<FollowMode, String> {
    [FollowMode::Watch, FollowMode::Poll]
        .into_iter()
        .find(|mode| mode.as_str() == text)
        .ok_or_else(|| "is not a follow mode; use watch or poll".to_owned())
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    [LogFormat::Text, LogFormat::Json]
        .into_iter()
        .find(|format| format.as_str() == text)
        .ok_or_else(|| "is not a log format; use text or json".to_owned())
}

/// A bare level, or `tracing` directives such as `info,kube=debug`.
fn parse_log_level(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let text = text.trim();
    if LEVELS.contains(&text.to_ascii_lowercase().as_str()) {
        return Ok(text.to_ascii_lowercase());
    }
    if !text.contains('=') && !text.contains(',') {
        return Err(
            "is not a level; use trace, debug, info, warn, error or off (or directives like \
                    info,kube=debug)"
                .to_owned(),
        );
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|error| format!("is not a valid set of log directives ({error}); use e.g. info,kube=debug"))
}

/// `HOST:PORT`, `[V6]:PORT`, or `:PORT` for all interfaces.
fn parse_http(text: &str) -> Result<SocketAddr, String> {
    let rule = || "is not a listen address; use HOST:PORT such as 0.0.0.0:8080 or :8080".to_owned();
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| rule())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    text.parse().map_err(|_| rule())
}

/// Kubernetes' DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, alphanumeric at both
/// ends of each dot-separated part, at most 253 characters.
/// A pod UID as the API server assigns it: up to 64 characters of letters, digits and `-`.
fn check_pod_uid(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(
            "must be the pod's UID (letters, digits and '-', at most 64); set POD_UID from \
            the downward API (fieldRef metadata.uid)"
                .to_owned(),
        );
    }
    Ok(())
}

fn check_dns_subdomain(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty; name the lock object, e.g. my-app".to_owned());
    }
    if text.len() > 253 {
        return Err(format!(
            "is {} characters long; a DNS-1123 subdomain has at most 253",
            text.len()
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if text.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending \
             with a letter or digit (e.g. my-app.leader)"
                .to_owned(),
        )
    }
}

/// Kubernetes' DNS-1123 label (namespaces): like a subdomain part, at most 63 characters.
fn check_dns_label(text: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            "must be a DNS-1123 label: 1-63 lower-case letters, digits and '-', starting and ending with \
             a letter or digit (e.g. default)"
                .to_owned(),
        )
    }
}

fn check_identity(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty; pass a unique name per process, such as the pod name".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if text.len() > 253 {
        return Err(format!("is {} characters long; use at most 253", text.len()));
    }
    Ok(())
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 alphanumerics,
/// `-`, `_` and `.`, alphanumeric at both ends.
fn check_label_key(text: &str) -> Result<(), String> {
    let (prefix, name) = match text.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|rule| format!("has a prefix that {rule}"))?;
    }
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name_ok {
        Ok(())
    } else {
        Err(format!(
            "is not a label key: [prefix/]name with a name of 1-63 letters, digits, '-', '_' and '.', \
             e.g. {DEFAULT_POD_LABEL}"
        ))
    }
}

fn check_kubeconfig(text: &str) -> Result<PathBuf, String> {
    if text.contains(':') && !Path::new(text).exists() {
        return Err(
            "lists several files; kube-elector reads one kubeconfig: pass --kubeconfig PATH".to_owned(),
        );
    }
    let path = PathBuf::from(text);
    match std::fs::File::open(&path) {
        Ok(file) => match file.metadata() {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err("is not a regular file; point it at a kubeconfig file".to_owned()),
            Err(error) => Err(format!(
                "cannot be read ({error}); fix the path or its permissions"
            )),
        },
        Err(error) => Err(format!(
            "cannot be read ({error}); fix the path or omit it to use the in-cluster configuration"
        )),
    }
}

fn check_leader_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.file_name().is_none() || text.ends_with('/') {
        return Err("must name a file, not a directory; e.g. /tmp/leader_status".to_owned());
    }
    if path.is_dir() {
        return Err("is a directory; name a file inside it, e.g. /tmp/leader_status".to_owned());
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "is in a directory that does not exist ({}); create it (e.g. an emptyDir volume) or pick another path",
            parent.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn durations_parse_with_units_and_refuse_bare_numbers() {
        for (text, expected) in [
            ("15s", secs(15)),
            ("500ms", Duration::from_millis(500)),
            ("1m", secs(60)),
            ("1m30s", secs(90)),
            ("2h", secs(7200)),
            ("1.5s", Duration::from_millis(1500)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
            (" 10s ", secs(10)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "parsing {text:?}");
        }
        for (text, expected) in [
            ("15", "has no unit; write 15s"),
            ("", "is empty"),
            ("15x", "unknown unit \"x\""),
            ("s", "expected a number"),
            ("1.2.3s", "malformed number"),
            ("99999999999999999999h", "too"),
        ] {
            let message = parse_duration(text).expect_err(text);
            assert!(
                message.contains(expected),
                "{text:?}: expected {expected:?} in {message:?}"
            );
        }
    }

    #[test]
    fn durations_format_back_to_what_they_parse_from() {
        for text in [
            "15s",
            "1m30s",
            "1h",
            "1h1m1s",
            "1500ms",
            "250us",
            "7ns",
            "0s",
            "6666666666ns",
        ] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(format_duration(parsed), text, "format of {parsed:?}");
        }
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(check_dns_subdomain("my-app.leader").is_ok());
        for bad in ["", "My-App", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert!(
                check_dns_subdomain(bad).is_err(),
                "{bad:?} must be refused as a subdomain"
            );
        }
        assert!(check_dns_label("kube-system").is_ok());
        assert!(check_dns_label("a.b").is_err(), "a namespace has no dots");
        assert!(check_label_key("kube-elector/role").is_ok());
        assert!(check_label_key("role").is_ok());
        assert!(check_label_key("example.com/Role_1.x").is_ok());
        for bad in ["", "/role", "Example.com/role", "a/-b", "a/b/", &"r".repeat(64)] {
            assert!(
                check_label_key(bad).is_err(),
                "{bad:?} must be refused as a label key"
            );
        }
    }

    #[test]
    fn service_link_variables_are_recognised() {
        for name in [
            "ELECTOR_SERVICE_HOST",
            "ELECTOR_SERVICE_PORT",
            "ELECTOR_SERVICE_PORT_HTTP",
            "ELECTOR_PORT",
            "ELECTOR_PORT_8080_TCP",
            "ELECTOR_PORT_8080_TCP_ADDR",
            "ELECTOR_API_SERVICE_HOST",
        ] {
            assert!(is_service_link(name), "{name} is a service link");
        }
        for name in [
            "ELECTOR_LEASE_DURATION",
            "ELECTOR_HTTP",
            "ELECTOR_PORTS",
            "ELECTOR_EXPORT_X",
        ] {
            assert!(!is_service_link(name), "{name} is not a service link");
        }
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            closest("LEASE_DURATON", &["LEASE_DURATION", "TTL"]),
            Some("LEASE_DURATION")
        );
        assert_eq!(closest("banana", &["lease-duration", "ttl"]), None);
    }

    #[test]
    fn ttl_derivation_matches_k8s_elector() {
        let layer: Layer = [(
            Key::Ttl,
            Given {
                value: "30s".into(),
                origin: Origin::Flag("ttl"),
            },
        )]
        .into_iter()
        .collect();
        let empty = Layer::new();
        let timing = Resolved {
            layers: [&empty, &empty, &layer],
        }
        .timing()
        .unwrap();
        assert_eq!(timing, Timing::new(secs(30), secs(20), secs(4)).unwrap());
    }
}
