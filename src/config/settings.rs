//! The settings, each declared once in the table at the end of this file: its name (the flag and
//! the config-file key, `ELECTOR_` + upper snake case for the variable), its compatibility
//! variables, default, parser and help. [`Config`]'s fields, the flags, the environment and file
//! layers, `--help`, `--print-config` and the errors naming where a value came from are all
//! derived from that table.
//!
//! Adding a setting is one entry (`"name" => field: Type { … }`) plus the code that uses the
//! field. A setting that is not one field of [`Config`] (`id`, the three timings, `ttl`) is
//! declared with `as` instead of `=>`: it gets its flag, variable, key and help like any other,
//! and the rules in [`super`] turn it into the derived fields listed at the top of the table.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{self, format_duration};
use super::{DEFAULT_POD_LABEL, DEFAULT_RELEASE_DELAY, DEFAULT_SHUTDOWN_TIMEOUT, Error, Host, LogFormat};
use crate::app_health::HealthUrl;
use crate::election::{FollowMode, LockType, Timing};
use crate::endpoint_slice::SlicePorts;
use crate::exec::OnChildExit;

/// What every layer, `--help` and the errors know of a setting, whatever its type.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    /// The flag without dashes and the config-file key.
    pub name: &'static str,
    /// The placeholder in `--help`: `--lease-duration <DURATION>`.
    pub value_name: &'static str,
    /// Older variables read under `ELECTOR_*`, such as `LEASE_NAME`.
    pub compat_env: &'static [&'static str],
    pub help: &'static str,
    /// `[default: …]` in `--help` when the default depends on the host.
    pub default_note: Option<&'static str>,
    /// The value of the flag given bare (`--pod-label` alone).
    pub bare: Option<&'static str>,
}

impl Meta {
    /// `ELECTOR_` and the name in upper snake case.
    pub fn env(&self) -> String {
        format!("ELECTOR_{}", self.name.to_ascii_uppercase().replace('-', "_"))
    }
}

/// One setting with the type of its value.
pub(super) struct Setting<T> {
    pub meta: Meta,
    pub parse: fn(&str) -> Result<T, String>,
    /// `None`: no default (required, or supplied by a rule in [`super`]).
    pub default: fn(&Host) -> Option<T>,
}

impl<T: PartialEq> Setting<T> {
    /// The setting's name, and whether `value` is other than its default on `host` (a default
    /// written back by `--print-config` counts as not given).
    pub fn given(&self, host: &Host, value: &T) -> (&'static str, bool) {
        (self.meta.name, (self.default)(host).as_ref() != Some(value))
    }
}

/// A setting as `--help` and the layers see it.
#[derive(Clone, Debug)]
pub(super) struct Info {
    pub meta: Meta,
    pub shown_default: Option<String>,
    /// Only `--flag=VALUE` is a value; a bare `--flag` means [`Meta::bare`].
    pub require_equals: bool,
}

impl Info {
    /// The help paragraph: the text, the variables and the default.
    pub fn help_line(&self) -> String {
        let mut names = vec![self.meta.env()];
        names.extend(self.meta.compat_env.iter().map(|name| (*name).to_owned()));
        let mut line = format!("{} [env: {}]", self.meta.help, names.join(", "));
        if let Some(default) = &self.shown_default {
            line.push_str(&format!(" [default: {default}]"));
        }
        line
    }
}

impl<T: Value> Setting<T> {
    pub fn info(&self) -> Info {
        let shown_default = match self.meta.default_note {
            Some(text) => Some(text.to_owned()),
            None => (self.default)(&Host::default()).map(|value| match value.printed() {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => "none".to_owned(),
                other => other.to_string(),
            }),
        };
        Info {
            meta: Meta {
                bare: self.meta.bare.or(T::BARE),
                ..self.meta
            },
            shown_default,
            require_equals: T::BARE.is_some(),
        }
    }
}

/// A setting's value type, as `--print-config` writes it.
pub(super) trait Value {
    /// What a bare flag of this type means (`--events` is `--events=true`); a value must then be
    /// attached with `=`, so `--events false` cannot be read as two arguments.
    const BARE: Option<&'static str> = None;

    /// The value as a JSON scalar, which is also a YAML scalar that reads back as the same value.
    fn printed(&self) -> serde_json::Value;
}

macro_rules! printed_by_serde {
    ($($type:ty),*) => {
        $(impl Value for $type {
            fn printed(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap_or_default()
            }
        })*
    };
}

printed_by_serde!(
    String,
    SocketAddr,
    LockType,
    FollowMode,
    LogFormat,
    OnChildExit,
    IpAddr
);

impl Value for SlicePorts {
    fn printed(&self) -> serde_json::Value {
        serde_json::Value::String(self.to_string())
    }
}

impl Value for bool {
    const BARE: Option<&'static str> = Some("true");

    fn printed(&self) -> serde_json::Value {
        serde_json::Value::Bool(*self)
    }
}

impl Value for Duration {
    fn printed(&self) -> serde_json::Value {
        serde_json::Value::String(format_duration(*self))
    }
}

impl Value for PathBuf {
    fn printed(&self) -> serde_json::Value {
        serde_json::Value::String(self.to_string_lossy().into_owned())
    }
}

impl Value for u32 {
    fn printed(&self) -> serde_json::Value {
        serde_json::Value::from(*self)
    }
}

impl Value for HealthUrl {
    fn printed(&self) -> serde_json::Value {
        serde_json::Value::String(self.to_string())
    }
}

impl<T: Value> Value for Option<T> {
    fn printed(&self) -> serde_json::Value {
        self.as_ref().map_or(serde_json::Value::Null, Value::printed)
    }
}

/// Declares the settings: generates [`Config`], one typed [`Setting`] per entry in [`setting`],
/// [`Config::infos`], [`Config::assemble`] and [`Config::printed`].
///
/// An entry is `"name" => field: Type { … }` for a field of [`Config`], or `"name" as input: Type
/// { … }` for a value the rules in [`super`] combine. Its keys, in this order:
/// - `value`: the placeholder in `--help`;
/// - `env` (optional): compatibility variables, read below `ELECTOR_<NAME>`;
/// - `default`: `fn(&Host) -> Option<Type>`, `None` when there is none (a `=>` field without a
///   default is required);
/// - `default_note` (optional): the `[default: …]` text when the default depends on the host;
/// - `bare` (optional): the value of the flag given alone (a `bool` has `true` already);
/// - `parse`: `fn(&str) -> Result<Type, String>`, the rule a refusal states;
/// - `print` (optional, inputs only): `fn(&Config) -> Option<serde_json::Value>` for
///   `--print-config`; an input without it is not printed;
/// - `help`: the `--help` text and the field's documentation.
macro_rules! settings {
    (
        derived {
            $( #[doc = $derived_doc:literal] pub $derived:ident: $derived_type:ty, )*
        }
        $(
            $name:literal $(=> $field:ident)? $(as $input:ident)? : $type:ty {
                value: $value_name:literal,
                $( env: [$($compat:literal),*], )?
                default: $default:expr,
                $( default_note: $default_note:literal, )?
                $( bare: $bare:expr, )?
                parse: $parse:expr,
                $( print: $print:expr, )?
                help: $help:literal $(,)?
            }
        )*
    ) => {
        /// The effective, validated configuration; see the table in `config/settings.rs`.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Config {
            $($( #[doc = $help] pub $field: $type, )?)*
            $( #[doc = $derived_doc] pub $derived: $derived_type, )*
        }

        /// Every setting, typed, named by its field (or input) name.
        #[allow(non_upper_case_globals)]
        pub(super) mod setting {
            use super::*;

            $(
                pub(in crate::config) const $($field)? $($input)?: Setting<$type> = Setting {
                    meta: Meta {
                        name: $name,
                        value_name: $value_name,
                        compat_env: &[$($($compat),*)?],
                        help: $help,
                        default_note: settings!(@option $($default_note)?),
                        bare: settings!(@option $($bare)?),
                    },
                    parse: $parse,
                    default: $default,
                };
            )*
        }

        impl Config {
            /// Every setting, in table order.
            pub(super) fn infos() -> Vec<Info> {
                vec![$( setting::$($field)? $($input)?.info(), )*]
            }

            /// The fields declared in the table, each from its highest layer or its default;
            /// the derived ones as the rules computed them.
            pub(super) fn assemble(
                resolved: &super::Resolved<'_>,
                $( $derived: $derived_type, )*
            ) -> Result<Config, Error> {
                Ok(Config {
                    $($( $field: resolved.require(&setting::$field)?, )?)*
                    $( $derived, )*
                })
            }

            /// Every setting `--print-config` writes, in table order, with its value.
            pub(super) fn printed(&self) -> Vec<(&'static str, serde_json::Value)> {
                let config = self;
                let mut out = Vec::new();
                $(
                    if let Some(value) = settings!(@print config $(field $field)? $(using $print)?) {
                        out.push(($name, value));
                    }
                )*
                out
            }
        }
    };
    (@option) => { None };
    (@option $value:expr) => { Some($value) };
    (@print $config:ident field $field:ident) => { Some(Value::printed(&$config.$field)) };
    (@print $config:ident using $print:expr) => { ($print)($config) };
    (@print $config:ident) => { None::<serde_json::Value> };
}

settings! {
    derived {
        /// Identity of this process in the election: `id`, else the pod name, else the host name.
        pub identity: String,
        /// Lease duration, renew deadline and retry period, from `ttl` or the explicit timings.
        pub timing: Timing,
        /// `--print-config` was given: print [`Config::render`] and exit instead of running.
        pub print_config: bool,
        /// Exec mode: the command and its arguments after `--`, run only while leading; empty without one.
        pub command: Vec<std::ffi::OsString>,
    }

    "election" => election: String {
        value: "NAME",
        env: ["LEASE_NAME"],
        default: |_| None,
        parse: parse::check_dns_subdomain,
        help: "Name of the lock object, a DNS-1123 subdomain; required",
    }
    "namespace" => namespace: String {
        value: "NAMESPACE",
        env: ["NAMESPACE", "POD_NAMESPACE"],
        default: |host| Some(host.in_cluster_namespace.clone().unwrap_or_else(|| "default".to_owned())),
        default_note: "the pod's namespace in-cluster, else \"default\"",
        parse: parse::check_dns_label,
        help: "Namespace of the lock object",
    }
    "id" as id: String {
        value: "ID",
        default: |_| None,
        default_note: "the pod name (POD_NAME or --pod-name), else the host name",
        parse: parse::check_identity,
        print: |config: &Config| Some(config.identity.printed()),
        help: "Identity of this process in the election",
    }
    "lock-type" => lock_type: LockType {
        value: "TYPE",
        default: |_| Some(LockType::default()),
        parse: parse::choice,
        help: "Kind of lock object: leases, configmaps or endpoints",
    }
    "lease-duration" as lease_duration: Duration {
        value: "DURATION",
        default: |_| Some(Timing::DEFAULT.lease_duration),
        parse: parse::parse_duration,
        print: |config: &Config| Some(config.timing.lease_duration.printed()),
        help: "How long others wait after the last renew before taking over; whole seconds",
    }
    "renew-deadline" as renew_deadline: Duration {
        value: "DURATION",
        default: |_| Some(Timing::DEFAULT.renew_deadline),
        parse: parse::parse_duration,
        print: |config: &Config| Some(config.timing.renew_deadline.printed()),
        help: "How long the leader keeps leading without a successful renew; below lease-duration",
    }
    "retry-period" as retry_period: Duration {
        value: "DURATION",
        default: |_| Some(Timing::DEFAULT.retry_period),
        parse: parse::parse_duration,
        print: |config: &Config| Some(config.timing.retry_period.printed()),
        help: "Interval between renews and follower retries",
    }
    "ttl" as ttl: Duration {
        value: "DURATION",
        default: |_| None,
        parse: parse::ttl,
        help: "k8s-elector shorthand: lease-duration = TTL, renew-deadline = 2/3 TTL, \
               retry-period = TTL/7.5; not together with those flags",
    }
    "follow" => follow: FollowMode {
        value: "MODE",
        default: |_| Some(FollowMode::default()),
        parse: parse::choice,
        help: "How followers learn of changes: watch or poll",
    }
    "http" => http: SocketAddr {
        value: "ADDR",
        default: |_| Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
        parse: parse::parse_http,
        help: "Listen address of the HTTP server (/readyz, /livez, /status, /metrics); :PORT means \
               all interfaces",
    }
    "kubeconfig" => kubeconfig: Option<PathBuf> {
        value: "PATH",
        env: ["KUBECONFIG"],
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_kubeconfig),
        help: "Kubeconfig file; without it the in-cluster configuration is used",
    }
    "leader-file" => leader_file: Option<PathBuf> {
        value: "PATH",
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_leader_file),
        help: "File that exists, holding the leader's identity, only while this process leads, \
               e.g. /tmp/leader_status",
    }
    "pod-label" => pod_label: Option<String> {
        value: "KEY",
        default: |_| Some(None),
        bare: DEFAULT_POD_LABEL,
        parse: |text| parse::optional(text, parse::check_label_key),
        help: "Label this pod KEY=leader|follower; a bare flag uses kube-elector/role; needs the \
               pod name",
    }
    "pod-name" => pod_name: Option<String> {
        value: "NAME",
        env: ["POD_NAME"],
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_dns_subdomain),
        help: "Name of this pod, for --pod-label and the default identity",
    }
    "pod-uid" => pod_uid: Option<String> {
        value: "UID",
        env: ["POD_UID"],
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_pod_uid),
        help: "UID of this pod (downward API metadata.uid), so that a restarted container takes its \
               predecessor's lock back at once",
    }
    "release-on-shutdown" => release_on_shutdown: bool {
        value: "BOOL",
        default: |_| Some(true),
        parse: parse::boolean,
        help: "Release the lock on shutdown so a follower takes over at once",
    }
    "shutdown-timeout" => shutdown_timeout: Duration {
        value: "DURATION",
        default: |_| Some(DEFAULT_SHUTDOWN_TIMEOUT),
        parse: parse::shutdown_timeout,
        help: "Bound on the whole shutdown, release delay and release included; at most 1h",
    }
    "release-delay" => release_delay: Duration {
        value: "DURATION",
        default: |_| Some(DEFAULT_RELEASE_DELAY),
        parse: parse::parse_duration,
        help: "Wait between stepping down (readiness 503, leader file and pod label gone) and \
               releasing the lock at shutdown; at most half of shutdown-timeout",
    }
    "events" => events: bool {
        value: "BOOL",
        default: |_| Some(true),
        parse: parse::boolean,
        help: "Emit \"became leader\" / \"stopped leading\" Events",
    }
    "app-health" => app_health: Option<HealthUrl> {
        value: "URL",
        default: |_| Some(None),
        parse: |text| parse::optional(text, HealthUrl::parse),
        help: "Check the application with an HTTP GET on this http:// URL (2xx/3xx is healthy); \
               this process stands for election only while the application is healthy",
    }
    "app-health-period" => app_health_period: Duration {
        value: "DURATION",
        default: |_| Some(Duration::from_secs(1)),
        parse: parse::app_health_interval,
        help: "Time between application health checks; 100ms to 1h; needs --app-health",
    }
    "app-health-timeout" => app_health_timeout: Duration {
        value: "DURATION",
        default: |_| Some(Duration::from_secs(1)),
        parse: parse::app_health_interval,
        help: "Bound on one application health check; at most app-health-period; needs --app-health",
    }
    "app-health-failure-threshold" => app_health_failure_threshold: u32 {
        value: "N",
        default: |_| Some(3),
        parse: parse::app_health_threshold,
        help: "Consecutive failed checks after which a healthy application is unhealthy (a leader \
               steps down and releases); 1 to 1000; needs --app-health",
    }
    "app-health-success-threshold" => app_health_success_threshold: u32 {
        value: "N",
        default: |_| Some(1),
        parse: parse::app_health_threshold,
        help: "Consecutive passed checks after which the application is healthy (this process \
               stands); 1 to 1000; needs --app-health",
    }
    "log-format" => log_format: LogFormat {
        value: "FORMAT",
        default: |_| Some(LogFormat::Text),
        parse: parse::choice,
        help: "Log format: text or json",
    }
    "endpoint-slice" => endpoint_slice: Option<String> {
        value: "NAME",
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_dns_subdomain),
        help: "EndpointSlice that names only the leader's pod IP, for a Service without a selector; \
               needs endpoint-slice-service, endpoint-slice-ports and pod-ip",
    }
    "endpoint-slice-service" => endpoint_slice_service: Option<String> {
        value: "SERVICE",
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::check_dns_label),
        help: "Service the EndpointSlice belongs to (its kubernetes.io/service-name label)",
    }
    "endpoint-slice-ports" => endpoint_slice_ports: Option<SlicePorts> {
        value: "PORTS",
        default: |_| Some(None),
        parse: |text| parse::optional(text, SlicePorts::parse),
        help: "The application's ports in the EndpointSlice: NAME:PORT[/PROTOCOL], comma-separated \
               (e.g. http:8080,dns:53/UDP); each NAME equals the Service port's name",
    }
    "pod-ip" => pod_ip: Option<IpAddr> {
        value: "IP",
        env: ["POD_IP"],
        default: |_| Some(None),
        parse: |text| parse::optional(text, |ip| {
            ip.parse::<IpAddr>().map_err(|_| {
                "must be an IPv4 or IPv6 address; set POD_IP from the downward API (fieldRef \
                 status.podIP)"
                    .to_owned()
            })
        }),
        help: "This pod's IP, written into the EndpointSlice while leading",
    }
    "pod-deletion-cost" => pod_deletion_cost: bool {
        value: "BOOL",
        default: |_| Some(false),
        parse: parse::boolean,
        help: "Set controller.kubernetes.io/pod-deletion-cost on this pod while it leads, so scale-downs \
               and rolling updates delete followers first; needs the pod name and patch on pods",
    }
    "proxy-listen" => proxy_listen: Option<SocketAddr> {
        value: "ADDR",
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::parse_http),
        help: "Run the leader-forwarding proxy on this address (the Service's targetPort, e.g. \
               0.0.0.0:8000): every request goes to the leader's application; needs proxy-upstream",
    }
    "proxy-upstream" => proxy_upstream: Option<SocketAddr> {
        value: "ADDR",
        default: |_| Some(None),
        parse: |text| parse::optional(text, parse::proxy_upstream),
        help: "The local application the proxy passes requests to while this process leads, e.g. \
               127.0.0.1:8081; needs proxy-listen",
    }
    "advertise-address" => advertise_address: Option<String> {
        value: "HOST:PORT",
        default: |_| Some(None),
        default_note: "pod-ip and the proxy-listen port",
        parse: |text| parse::optional(text, parse::advertise_address),
        help: "How the other replicas reach this proxy, published in the lock with the claim; \
               needs proxy-listen",
    }
    "proxy-queue-timeout" => proxy_queue_timeout: Duration {
        value: "DURATION",
        default: |_| Some(Duration::from_secs(5)),
        parse: parse::proxy_queue_timeout,
        help: "How long a request waits for a leader (during a handover) before a 503 with \
               Retry-After; above 0, at most 1h; needs proxy-listen",
    }
    "proxy-queue-limit" => proxy_queue_limit: u32 {
        value: "N",
        default: |_| Some(1024),
        parse: parse::proxy_queue_limit,
        help: "How many requests may wait for a leader at once; more get a 503 at once; 0 to \
               1000000; needs proxy-listen",
    }
    "log-level" => log_level: String {
        value: "LEVEL",
        default: |_| Some("info".to_owned()),
        parse: parse::parse_log_level,
        help: "Log level or tracing directives such as info,kube=debug; RUST_LOG overrides it",
    }
    "child-grace" => child_grace: Duration {
        value: "DURATION",
        default: |_| Some(crate::config::DEFAULT_CHILD_GRACE),
        parse: parse::child_grace,
        help: "Exec mode: wait between SIGTERM and SIGKILL to the command's process group when it \
               must stop; at most 1h, and below shutdown-timeout",
    }
    "on-child-exit" => on_child_exit: OnChildExit {
        value: "ACTION",
        default: |_| Some(OnChildExit::default()),
        parse: parse::choice,
        help: "Exec mode: what to do when the command exits while leading: restart (with backoff \
               from 1s to 30s) or exit (step down, release, exit with the command's code)",
    }
}
