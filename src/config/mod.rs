//! The sidecar's configuration: the [`Config`] struct, layered loading and validation.
//!
//! Each setting is declared once, in the table in `settings.rs` (name, variables, default, parser,
//! help); the flags, the layers, `--help` and `--print-config` follow from it. This module holds
//! the rules that span settings: `ttl` and the timings, the default identity, a pod label's need
//! for a pod name, the release delay's bound by the shutdown timeout.
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
//! Every duration has bounds, checked while loading so that nothing later can overflow: the timings as
//! in [`crate::election::Timing`] (lease duration 1s to 24h, which fits the Lease's int32
//! seconds), `shutdown-timeout` above 0 and at most [`MAX_SHUTDOWN_TIMEOUT`] (1h),
//! `release-delay` from 0 to half the shutdown timeout (the other half is the release write's).
//!
//! For optional values (`kubeconfig`, `leader-file`, `pod-label`, `pod-name`) an empty string in a
//! higher layer means "none", so a flag or variable can switch off what the file set.

mod parse;
mod settings;
mod sources;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{format_duration, parse_duration};
pub use settings::Config;

use crate::election::{Timing, TimingError};
use settings::{Setting, setting};
use sources::{Given, Layer};

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
/// Default wait between SIGTERM and SIGKILL to the exec-mode command.
pub const DEFAULT_CHILD_GRACE: Duration = Duration::from_secs(10);

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, one per event (the default).
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level, for log collectors.
    Json,
}

impl LogFormat {
    /// The name as given to `--log-format` and printed by `--print-config`.
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

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No layer gave the setting: its built-in default applies.
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// The environment variable of this name (an `ELECTOR_*` one or a compatibility name).
    Env(String),
    /// The command-line flag of this long name, without the leading `--`.
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
    /// A setting's value was given but its parser refused it.
    #[error("invalid configuration: {field} {value:?} (from {origin}) {rule}")]
    InvalidValue {
        /// The setting, named as its flag without `--`.
        field: &'static str,
        /// The refused text, exactly as given.
        value: String,
        /// The layer that gave the value.
        origin: Origin,
        /// What is wrong and how to fix it, worded to follow the value ("must be greater than 0; ...").
        rule: String,
    },
    /// A setting with no default was given by no layer, or could not be derived.
    #[error("invalid configuration: {field} is required: {fix}")]
    Missing {
        /// The setting, named as its flag without `--`.
        field: &'static str,
        /// The flags or variables that would supply it.
        fix: String,
    },
    /// Two settings were given values that cannot hold together (such as `ttl` with an explicit
    /// timing in one layer, or a release delay over half the shutdown timeout).
    #[error(
        "invalid configuration: {first} (from {first_origin}) conflicts with {second} (from {second_origin}): {fix}"
    )]
    Conflict {
        /// The first setting of the pair, named as its flag without `--`.
        first: &'static str,
        /// The layer that gave the first setting its value.
        first_origin: Origin,
        /// The second setting of the pair, named as its flag without `--`.
        second: &'static str,
        /// The layer that gave the second setting its value.
        second_origin: Origin,
        /// Why the two conflict and which one to change.
        fix: String,
    },
    /// The effective lease duration, renew deadline and retry period break a rule of
    /// [`Timing::new`].
    #[error("invalid configuration: timing ({origins}): {reason}")]
    Timing {
        /// The three effective timings, each with the layer it came from.
        origins: String,
        /// The rule the timings break.
        reason: TimingError,
    },
    /// The config file named by `--config` or `ELECTOR_CONFIG` could not be read.
    #[error("invalid configuration: config file {path}: cannot read it: {reason}")]
    FileUnreadable {
        /// The config file's path, as given.
        path: PathBuf,
        /// The I/O error reading it.
        reason: std::io::Error,
    },
    /// The config file's extension names neither YAML nor TOML.
    #[error(
        "invalid configuration: config file {path}: unsupported extension; name it *.yaml, *.yml or *.toml"
    )]
    FileFormat {
        /// The config file's path, as given.
        path: PathBuf,
    },
    /// The config file was read but is not valid in the format its extension names.
    #[error("invalid configuration: config file {path}: cannot parse it as {format}: {reason}")]
    FileUnparseable {
        /// The config file's path, as given.
        path: PathBuf,
        /// The format its extension names: `YAML` or `TOML`.
        format: &'static str,
        /// The parser's message, folded onto one line.
        reason: String,
    },
    /// The config file has a key that names no setting.
    #[error("invalid configuration: config file {path}: unknown key {key:?}{hint}; known keys: {known}")]
    FileUnknownKey {
        /// The config file's path, as given.
        path: PathBuf,
        /// The unknown key, spelled as in the file.
        key: String,
        /// A " (did you mean ...?)" suggestion of the closest known key, or empty when none is close.
        hint: String,
        /// Every accepted key, comma-separated.
        known: String,
    },
    /// A config file key holds a list or a table where a setting takes one value.
    #[error(
        "invalid configuration: config file {path}: key {key:?} must be a single value, not a list or table"
    )]
    FileNotScalar {
        /// The config file's path, as given.
        path: PathBuf,
        /// The key, spelled as in the file.
        key: String,
    },
    /// An `ELECTOR_*` variable in the environment names no setting (Kubernetes' service-link
    /// variables excepted).
    #[error("invalid configuration: unknown environment variable {name}{hint}; known: {known}")]
    UnknownEnv {
        /// The unknown variable's name.
        name: String,
        /// A " (did you mean ...?)" suggestion of the closest known variable, or empty when none is close.
        hint: String,
        /// Every accepted `ELECTOR_*` variable, comma-separated.
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

impl Config {
    /// Parses args (`args[0]` is the program name) and layers env + file. `env` is the process environment
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
        let infos = Config::infos();
        let matches = sources::command(&infos).try_get_matches_from(args)?;
        let (flags, flag_config) = sources::flag_layer(&infos, &matches);
        let (env_layer, env_config) = sources::env_layer(&infos, env)?;
        let file = match flag_config.or(env_config) {
            Some(given) => sources::file_layer(&infos, &given)?,
            None => Layer::new(),
        };
        let resolved = Resolved {
            layers: [&file, &env_layer, &flags],
            host,
        };
        resolved.build(matches.get_flag("print-config"), sources::command_of(&matches))
    }

    /// Effective configuration for `--print-config`: YAML with every field, readable back as a
    /// config file. Each value is a JSON scalar, which YAML reads as the same scalar.
    pub fn render(&self) -> String {
        let mut out = String::from("# kube-elector effective configuration\n");
        for (key, value) in self.printed() {
            // Exec mode's settings apply only with a command (and are refused without one).
            let exec_only = [setting::child_grace.meta.name, setting::on_child_exit.meta.name];
            if self.command.is_empty() && exec_only.contains(&key) {
                continue;
            }
            out.push_str(&format!("{key}: {value}\n"));
        }
        if !self.command.is_empty() {
            let words: Vec<String> = self
                .command
                .iter()
                .map(|word| format!("{:?}", word.to_string_lossy()))
                .collect();
            out.push_str(&format!(
                "# command (after --; the command line alone carries it): {}\n",
                words.join(" ")
            ));
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

/// The layers, lowest first, and the rules that turn them into a [`Config`].
struct Resolved<'a> {
    layers: [&'a Layer; 3],
    host: &'a Host,
}

impl Resolved<'_> {
    /// The highest-precedence value of the setting named `name`.
    fn pick(&self, name: &str) -> Option<&Given> {
        self.layers.iter().rev().find_map(|layer| layer.get(name))
    }

    /// Where the effective value of `name` came from.
    fn origin(&self, name: &str) -> Origin {
        self.pick(name)
            .map_or(Origin::Default, |given| given.origin.clone())
    }

    /// The highest-precedence value of `setting`, parsed, or its default.
    fn get<T>(&self, setting: &Setting<T>) -> Result<Option<T>, Error> {
        match self.pick(setting.meta.name) {
            Some(given) => parse_given(setting, given).map(Some),
            None => Ok((setting.default)(self.host)),
        }
    }

    /// [`Resolved::get`] for a setting that must have a value.
    fn require<T>(&self, setting: &Setting<T>) -> Result<T, Error> {
        self.get(setting)?.ok_or_else(|| {
            let meta = &setting.meta;
            let compat = meta
                .compat_env
                .iter()
                .map(|name| format!(" (or {name})"))
                .collect::<String>();
            Error::Missing {
                field: meta.name,
                fix: format!(
                    "pass --{} {} or set {}{compat}",
                    meta.name,
                    meta.value_name,
                    meta.env()
                ),
            }
        })
    }

    fn build(&self, print_config: bool, command: Vec<std::ffi::OsString>) -> Result<Config, Error> {
        let identity = self.identity()?;
        let timing = self.timing()?;
        let mut config = Config::assemble(self, identity, timing, print_config, command)?;
        self.exec_rules(&mut config)?;
        if let (Some(label), None) = (&config.pod_label, &config.pod_name) {
            return Err(Error::Missing {
                field: setting::pod_name.meta.name,
                fix: format!(
                    "pod-label {label:?} (from {}) labels this pod, so its name must be known: pass \
                     --pod-name or set POD_NAME from the downward API (fieldRef metadata.name)",
                    self.origin(setting::pod_label.meta.name)
                ),
            });
        }
        self.check_endpoint_slice(&config)?;
        if config.pod_deletion_cost && config.pod_name.is_none() {
            return Err(Error::Missing {
                field: setting::pod_name.meta.name,
                fix: format!(
                    "pod-deletion-cost (from {}) annotates this pod, so its name must be known: pass \
                     --pod-name or set POD_NAME from the downward API (fieldRef metadata.name)",
                    self.origin(setting::pod_deletion_cost.meta.name)
                ),
            });
        }
        if config.release_delay > config.shutdown_timeout / 2 {
            return Err(Error::Conflict {
                first: setting::release_delay.meta.name,
                first_origin: self.origin(setting::release_delay.meta.name),
                second: setting::shutdown_timeout.meta.name,
                second_origin: self.origin(setting::shutdown_timeout.meta.name),
                fix: format!(
                    "release-delay {} must be at most half of shutdown-timeout {}, so the release has \
                     time to be written: lower --release-delay or raise --shutdown-timeout",
                    format_duration(config.release_delay),
                    format_duration(config.shutdown_timeout)
                ),
            });
        }
        self.check_app_health(&config)?;
        self.proxy_rules(&mut config)?;
        Ok(config)
    }

    /// The proxy needs its upstream and an address the other replicas reach it at (given, or
    /// the pod IP with the listen port); its other settings mean nothing without it, so giving
    /// them alone is refused rather than ignored (a default written back by `--print-config` is
    /// accepted).
    fn proxy_rules(&self, config: &mut Config) -> Result<(), Error> {
        let listen = setting::proxy_listen.meta.name;
        let Some(listen_address) = config.proxy_listen else {
            let host = self.host;
            let given = [
                setting::proxy_upstream.given(host, &config.proxy_upstream),
                setting::advertise_address.given(host, &config.advertise_address),
                setting::proxy_queue_timeout.given(host, &config.proxy_queue_timeout),
                setting::proxy_queue_limit.given(host, &config.proxy_queue_limit),
            ];
            return self.refuse_without(listen, given, |name| {
                format!(
                    "{name} configures the leader-forwarding proxy, which is off without \
                     --proxy-listen: pass --proxy-listen ADDR or remove {name}"
                )
            });
        };
        if config.proxy_upstream.is_none() {
            let meta = setting::proxy_upstream.meta;
            return Err(Error::Missing {
                field: meta.name,
                fix: format!(
                    "proxy-listen {listen_address} (from {}) passes requests to the local application: \
                     pass --proxy-upstream ADDR (e.g. 127.0.0.1:8081) or set {}",
                    self.origin(listen),
                    meta.env()
                ),
            });
        }
        if config.advertise_address.is_none() {
            let Some(ip) = config.pod_ip else {
                return Err(Error::Missing {
                    field: setting::advertise_address.meta.name,
                    fix: format!(
                        "proxy-listen {listen_address} (from {}) needs an address the other replicas \
                         reach this proxy at: set POD_IP from the downward API (fieldRef status.podIP) \
                         to use it with the proxy's port, or pass --advertise-address HOST:PORT",
                        self.origin(listen)
                    ),
                });
            };
            config.advertise_address = Some(std::net::SocketAddr::new(ip, listen_address.port()).to_string());
        }
        Ok(())
    }

    /// Settings that mean nothing while `enabler` is off are refused rather than ignored: the
    /// first of `given` (name, set to other than its default) is the error, `fix` its advice.
    fn refuse_without(
        &self,
        enabler: &'static str,
        given: impl IntoIterator<Item = (&'static str, bool)>,
        fix: impl FnOnce(&str) -> String,
    ) -> Result<(), Error> {
        match given.into_iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(Error::Conflict {
                first: name,
                first_origin: self.origin(name),
                second: enabler,
                second_origin: self.origin(enabler),
                fix: fix(name),
            }),
            None => Ok(()),
        }
    }

    /// The application health check's settings hold together: the timeout fits in the period
    /// (checks never overlap), and none is set to other than its default without `app-health`
    /// (it would be ignored; a default written back by `--print-config` is accepted).
    fn check_app_health(&self, config: &Config) -> Result<(), Error> {
        let url = setting::app_health.meta.name;
        let host = self.host;
        let tuning = [
            setting::app_health_period.given(host, &config.app_health_period),
            setting::app_health_timeout.given(host, &config.app_health_timeout),
            setting::app_health_failure_threshold.given(host, &config.app_health_failure_threshold),
            setting::app_health_success_threshold.given(host, &config.app_health_success_threshold),
        ];
        if config.app_health.is_none() {
            return self.refuse_without(url, tuning, |name| {
                format!(
                    "{name} tunes the application health check, which is off without --app-health: \
                     pass --app-health URL or remove {name}"
                )
            });
        }
        if config.app_health_timeout > config.app_health_period {
            let (timeout, period) = (tuning[1].0, tuning[0].0);
            return Err(Error::Conflict {
                first: timeout,
                first_origin: self.origin(timeout),
                second: period,
                second_origin: self.origin(period),
                fix: format!(
                    "app-health-timeout {} must be at most app-health-period {}, so one check ends \
                     before the next begins: lower --app-health-timeout or raise --app-health-period",
                    format_duration(config.app_health_timeout),
                    format_duration(config.app_health_period)
                ),
            });
        }
        Ok(())
    }

    /// Exec mode's rules: with a command, the default shutdown timeout grows by the child grace
    /// (the command stops before the release), and a shutdown timeout that was given must exceed
    /// the child grace, so the release still has time after the command has stopped.
    fn exec_rules(&self, config: &mut Config) -> Result<(), Error> {
        if config.command.is_empty() {
            // Nothing given is silently ignored: the exec settings need a command.
            for name in [setting::child_grace.meta.name, setting::on_child_exit.meta.name] {
                if let Some(given) = self.pick(name) {
                    return Err(Error::InvalidValue {
                        field: name,
                        value: given.value.clone(),
                        origin: given.origin.clone(),
                        rule: "applies only in exec mode, and no command was given: put the command \
                               last, after -- (kube-elector [FLAGS] -- COMMAND [ARG...]), or remove this \
                               setting"
                            .to_owned(),
                    });
                }
            }
            return Ok(());
        }
        let timeout_origin = self.origin(setting::shutdown_timeout.meta.name);
        if timeout_origin == Origin::Default {
            config.shutdown_timeout = config.child_grace.saturating_add(DEFAULT_SHUTDOWN_TIMEOUT);
            return Ok(());
        }
        if config.shutdown_timeout <= config.child_grace {
            return Err(Error::Conflict {
                first: setting::shutdown_timeout.meta.name,
                first_origin: timeout_origin,
                second: setting::child_grace.meta.name,
                second_origin: self.origin(setting::child_grace.meta.name),
                fix: format!(
                    "with a command, shutdown-timeout {} must exceed child-grace {}: the command is \
                     stopped (SIGTERM, SIGKILL after the grace) before the lock is released, and the \
                     release needs time after that; raise --shutdown-timeout to at least {} or lower \
                     --child-grace",
                    format_duration(config.shutdown_timeout),
                    format_duration(config.child_grace),
                    format_duration(config.child_grace.saturating_add(DEFAULT_SHUTDOWN_TIMEOUT)),
                ),
            });
        }
        Ok(())
    }

    /// An EndpointSlice needs its Service, ports and this pod's IP; the Service and ports mean
    /// nothing without the slice, so giving them alone is refused rather than ignored. (The pod
    /// IP alone is accepted: `POD_IP` is a fact of the pod, often set for the application too.)
    fn check_endpoint_slice(&self, config: &Config) -> Result<(), Error> {
        let slice = setting::endpoint_slice.meta.name;
        match &config.endpoint_slice {
            Some(name) => {
                let needs = [
                    (
                        setting::endpoint_slice_service.meta,
                        config.endpoint_slice_service.is_none(),
                    ),
                    (
                        setting::endpoint_slice_ports.meta,
                        config.endpoint_slice_ports.is_none(),
                    ),
                    (setting::pod_ip.meta, config.pod_ip.is_none()),
                ];
                if let Some((meta, _)) = needs.into_iter().find(|(_, missing)| *missing) {
                    let how = if meta.name == "pod-ip" {
                        "pass --pod-ip or set POD_IP from the downward API (fieldRef status.podIP)".to_owned()
                    } else {
                        format!("pass --{} {} or set {}", meta.name, meta.value_name, meta.env())
                    };
                    return Err(Error::Missing {
                        field: meta.name,
                        fix: format!(
                            "endpoint-slice {name:?} (from {}) is written with it: {how}",
                            self.origin(slice)
                        ),
                    });
                }
            }
            None => {
                let given = [
                    setting::endpoint_slice_service.given(self.host, &config.endpoint_slice_service),
                    setting::endpoint_slice_ports.given(self.host, &config.endpoint_slice_ports),
                ];
                self.refuse_without(slice, given, |name| {
                    format!("{name} only shapes the EndpointSlice: pass --endpoint-slice NAME too, or remove {name}")
                })?;
            }
        }
        Ok(())
    }

    /// `id`, else the pod name, else the host name.
    fn identity(&self) -> Result<String, Error> {
        if let Some(id) = self.get(&setting::id)? {
            return Ok(id);
        }
        let pod_name = self.get(&setting::pod_name)?.flatten();
        pod_name
            .or_else(|| self.host.hostname.clone())
            .ok_or_else(|| Error::Missing {
                field: setting::id.meta.name,
                fix: "no pod name or host name was found; pass --id or set ELECTOR_ID or POD_NAME".to_owned(),
            })
    }

    /// Applies the layers in order: `ttl` sets all three timings in its layer, an explicit
    /// timing sets one; then [`Timing::new`] checks client-go's rules.
    fn timing(&self) -> Result<Timing, Error> {
        let explicit = [
            &setting::lease_duration,
            &setting::renew_deadline,
            &setting::retry_period,
        ];
        let mut values = explicit.map(|setting| {
            let default = (setting.default)(self.host).unwrap_or_default();
            (default, Origin::Default)
        });
        let ttl = &setting::ttl;
        for layer in self.layers {
            if let Some(given) = layer.get(ttl.meta.name) {
                let conflict = explicit.iter().find_map(|setting| {
                    let name = setting.meta.name;
                    layer.get(name).map(|other| (name, other))
                });
                if let Some((name, other)) = conflict {
                    return Err(Error::Conflict {
                        first: ttl.meta.name,
                        first_origin: given.origin.clone(),
                        second: name,
                        second_origin: other.origin.clone(),
                        fix:
                            "ttl sets lease-duration, renew-deadline and retry-period together; give either \
                              ttl or the explicit timings"
                                .to_owned(),
                    });
                }
                let nanos = parse_given(ttl, given)?.as_nanos();
                // k8s-elector's derivation: lease = TTL, renew = 2/3 TTL, retry = TTL / 7.5.
                let derived = [(1, 1), (2, 3), (2, 15)].map(|(numerator, denominator)| {
                    let n = nanos * numerator / denominator;
                    let value = Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32);
                    (value, given.origin.clone())
                });
                values = derived;
                continue;
            }
            for (value, setting) in values.iter_mut().zip(explicit) {
                if let Some(given) = layer.get(setting.meta.name) {
                    *value = (parse_given(setting, given)?, given.origin.clone());
                }
            }
        }
        let [lease, renew, retry] = values;
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

/// Parses one given value of `setting`; a refusal names the field, the value and its origin.
fn parse_given<T>(setting: &Setting<T>, given: &Given) -> Result<T, Error> {
    (setting.parse)(&given.value).map_err(|rule| Error::InvalidValue {
        field: setting.meta.name,
        value: given.value.clone(),
        origin: given.origin.clone(),
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn ttl_derivation_matches_k8s_elector() {
        let layer: Layer = [(
            "ttl",
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
            host: &Host::default(),
        }
        .timing()
        .unwrap();
        assert_eq!(timing, Timing::new(secs(30), secs(20), secs(4)).unwrap());
    }
}
