//! The command line, environment and config file, through `Config::load_with` (the entry point
//! `main` uses, with the host facts fixed): layering per field, every refusal, YAML and TOML files,
//! `--help`, and `--print-config` output read back as a config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_elector::config::{Config, Error, Host, LogFormat};
use kube_elector::election::{FollowMode, LockType, Timing};

/// A directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kube-elector-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host() -> Host {
    Host {
        in_cluster_namespace: None,
        hostname: Some("host-1".to_owned()),
    }
}

fn load_on(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
    let args: Vec<String> = std::iter::once("kube-elector")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::load_with(args, &env, host)
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
    load_on(&host(), args, env)
}

/// The refusal of `args` + `env`: exit code 2 and one line that contains every `expected` part.
fn refused(args: &[&str], env: &[(&str, &str)], expected: &[&str]) -> String {
    let error = match load(args, env) {
        Ok(config) => panic!("expected {args:?} {env:?} to be refused, got {config:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert_eq!(error.exit_code(), 2, "exit code for {message:?}");
    assert!(!message.trim_end().contains('\n'), "one line, got {message:?}");
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in {message:?}");
    }
    message
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

#[test]
fn defaults() {
    let config = load(&["--election", "demo"], &[]).unwrap();
    assert_eq!(config.election, "demo");
    assert_eq!(config.namespace, "default");
    assert_eq!(
        config.identity, "host-1",
        "without POD_NAME the identity is the host name"
    );
    assert_eq!(config.lock_type, LockType::Leases);
    assert_eq!(config.timing, Timing::new(secs(15), secs(10), secs(2)).unwrap());
    assert_eq!(config.follow, FollowMode::Watch);
    assert_eq!(config.http, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(config.kubeconfig, None);
    assert_eq!(config.leader_file, None);
    assert_eq!(config.pod_label, None);
    assert_eq!(config.pod_name, None);
    assert!(config.release_on_shutdown);
    assert_eq!(config.shutdown_timeout, secs(5));
    assert!(config.events);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.log_level, "info");
    assert!(!config.print_config);
    assert_eq!(
        config.liveness_bound(),
        secs(25),
        "lease duration + renew deadline"
    );
}

#[test]
fn host_facts_supply_namespace_and_identity_defaults() {
    let in_cluster = Host {
        in_cluster_namespace: Some("team-a".into()),
        hostname: Some("node-7".into()),
    };
    let config = load_on(&in_cluster, &["--election", "demo"], &[]).unwrap();
    assert_eq!(
        (config.namespace.as_str(), config.identity.as_str()),
        ("team-a", "node-7")
    );

    let config = load_on(&in_cluster, &["--election", "demo"], &[("POD_NAME", "pod-9")]).unwrap();
    assert_eq!(config.identity, "pod-9", "POD_NAME beats the host name");
    let config = load_on(
        &in_cluster,
        &["--election", "demo", "--pod-name", "pod-f"],
        &[("POD_NAME", "pod-9")],
    )
    .unwrap();
    assert_eq!(
        config.identity, "pod-f",
        "the effective pod name is the identity default"
    );
    let config = load_on(
        &in_cluster,
        &["--election", "demo", "--id", "me"],
        &[("POD_NAME", "pod-9")],
    )
    .unwrap();
    assert_eq!(config.identity, "me", "--id beats the pod name");

    let nothing = Host::default();
    let message = load_on(&nothing, &["--election", "demo"], &[])
        .unwrap_err()
        .to_string();
    assert!(message.contains("id is required"), "{message}");
}

/// For one field: its value with only a YAML file, then file + env, then file + env + flag; each
/// layer must win over the one below. `get` renders the field for comparison.
struct Case {
    key: &'static str,
    values: [&'static str; 3],
    expected: [String; 4],
    get: fn(&Config) -> String,
}

#[test]
fn each_layer_beats_the_one_below_for_every_field() {
    let dir = TempDir::new("layers");
    let kubeconfigs = ["kc-file", "kc-env", "kc-flag"].map(|name| {
        let path = dir.file(name, "apiVersion: v1\nkind: Config\n");
        Box::leak(path.to_string_lossy().into_owned().into_boxed_str()) as &'static str
    });
    let leader_files = ["lf-file", "lf-env", "lf-flag"]
        .map(|name| Box::leak(dir.path(name).into_boxed_str()) as &'static str);
    let owned = |values: [&str; 4]| values.map(str::to_owned);
    let cases = vec![
        Case {
            key: "election",
            values: ["e-file", "e-env", "e-flag"],
            expected: owned(["<missing>", "e-file", "e-env", "e-flag"]),
            get: |c| c.election.clone(),
        },
        Case {
            key: "namespace",
            values: ["ns-file", "ns-env", "ns-flag"],
            expected: owned(["default", "ns-file", "ns-env", "ns-flag"]),
            get: |c| c.namespace.clone(),
        },
        Case {
            key: "id",
            values: ["id-file", "id-env", "id-flag"],
            expected: owned(["host-1", "id-file", "id-env", "id-flag"]),
            get: |c| c.identity.clone(),
        },
        Case {
            key: "lock-type",
            values: ["configmaps", "endpoints", "leases"],
            expected: owned(["leases", "configmaps", "endpoints", "leases"]),
            get: |c| c.lock_type.to_string(),
        },
        Case {
            key: "lease-duration",
            values: ["20s", "30s", "40s"],
            expected: owned(["15s", "20s", "30s", "40s"]),
            get: |c| format!("{}s", c.timing.lease_duration.as_secs()),
        },
        Case {
            key: "renew-deadline",
            values: ["11s", "12s", "13s"],
            expected: owned(["10s", "11s", "12s", "13s"]),
            get: |c| format!("{}s", c.timing.renew_deadline.as_secs()),
        },
        Case {
            key: "retry-period",
            values: ["3s", "4s", "5s"],
            expected: owned(["2s", "3s", "4s", "5s"]),
            get: |c| format!("{}s", c.timing.retry_period.as_secs()),
        },
        Case {
            key: "follow",
            values: ["poll", "watch", "poll"],
            expected: owned(["watch", "poll", "watch", "poll"]),
            get: |c| c.follow.to_string(),
        },
        Case {
            key: "http",
            values: ["127.0.0.1:1001", "127.0.0.1:1002", ":1003"],
            expected: owned(["0.0.0.0:8080", "127.0.0.1:1001", "127.0.0.1:1002", "0.0.0.0:1003"]),
            get: |c| c.http.to_string(),
        },
        Case {
            key: "kubeconfig",
            values: kubeconfigs,
            expected: [
                "<none>".to_owned(),
                kubeconfigs[0].to_owned(),
                kubeconfigs[1].to_owned(),
                kubeconfigs[2].to_owned(),
            ],
            get: |c| {
                c.kubeconfig
                    .as_ref()
                    .map_or("<none>".to_owned(), |p| p.to_string_lossy().into_owned())
            },
        },
        Case {
            key: "leader-file",
            values: leader_files,
            expected: [
                "<none>".to_owned(),
                leader_files[0].to_owned(),
                leader_files[1].to_owned(),
                leader_files[2].to_owned(),
            ],
            get: |c| {
                c.leader_file
                    .as_ref()
                    .map_or("<none>".to_owned(), |p| p.to_string_lossy().into_owned())
            },
        },
        Case {
            key: "pod-label",
            values: ["a.io/x", "b.io/y", "c.io/z"],
            expected: owned(["<none>", "a.io/x", "b.io/y", "c.io/z"]),
            get: |c| c.pod_label.clone().unwrap_or_else(|| "<none>".to_owned()),
        },
        Case {
            key: "pod-name",
            values: ["p-file", "p-env", "p-flag"],
            expected: owned(["<none>", "p-file", "p-env", "p-flag"]),
            get: |c| c.pod_name.clone().unwrap_or_else(|| "<none>".to_owned()),
        },
        Case {
            key: "pod-uid",
            values: ["uid-file", "uid-env", "uid-flag"],
            expected: owned(["<none>", "uid-file", "uid-env", "uid-flag"]),
            get: |c| c.pod_uid.clone().unwrap_or_else(|| "<none>".to_owned()),
        },
        Case {
            key: "release-delay",
            values: ["200ms", "300ms", "2s"],
            expected: owned(["1000ms", "200ms", "300ms", "2000ms"]),
            get: |c| format!("{}ms", c.release_delay.as_millis()),
        },
        Case {
            key: "release-on-shutdown",
            values: ["false", "true", "false"],
            expected: owned(["true", "false", "true", "false"]),
            get: |c| c.release_on_shutdown.to_string(),
        },
        Case {
            key: "shutdown-timeout",
            values: ["6s", "7s", "1m30s"],
            expected: owned(["5s", "6s", "7s", "90s"]),
            get: |c| format!("{}s", c.shutdown_timeout.as_secs()),
        },
        Case {
            key: "events",
            values: ["false", "true", "false"],
            expected: owned(["true", "false", "true", "false"]),
            get: |c| c.events.to_string(),
        },
        Case {
            key: "log-format",
            values: ["json", "text", "json"],
            expected: owned(["text", "json", "text", "json"]),
            get: |c| c.log_format.to_string(),
        },
        Case {
            key: "log-level",
            values: ["debug", "warn", "error"],
            expected: owned(["info", "debug", "warn", "error"]),
            get: |c| c.log_level.clone(),
        },
        Case {
            key: "app-health",
            values: ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b", "http://[::1]:3/c"],
            expected: owned([
                "<none>",
                "http://127.0.0.1:1/a",
                "http://127.0.0.1:2/b",
                "http://[::1]:3/c",
            ]),
            get: |c| {
                c.app_health
                    .as_ref()
                    .map_or("<none>".to_owned(), ToString::to_string)
            },
        },
        Case {
            key: "app-health-period",
            values: ["2s", "3s", "4s"],
            expected: owned(["1000ms", "2000ms", "3000ms", "4000ms"]),
            get: |c| format!("{}ms", c.app_health_period.as_millis()),
        },
        Case {
            key: "app-health-timeout",
            values: ["200ms", "300ms", "900ms"],
            expected: owned(["1000ms", "200ms", "300ms", "900ms"]),
            get: |c| format!("{}ms", c.app_health_timeout.as_millis()),
        },
        Case {
            key: "app-health-failure-threshold",
            values: ["4", "5", "6"],
            expected: owned(["3", "4", "5", "6"]),
            get: |c| c.app_health_failure_threshold.to_string(),
        },
        Case {
            key: "app-health-success-threshold",
            values: ["2", "3", "4"],
            expected: owned(["1", "2", "3", "4"]),
            get: |c| c.app_health_success_threshold.to_string(),
        },
        // The EndpointSlice settings need each other (see `slice_base` below): without the
        // slice its Service and ports are refused, without them the slice is.
        Case {
            key: "endpoint-slice",
            values: ["s-file", "s-env", "s-flag"],
            expected: owned(["<conflict>", "s-file", "s-env", "s-flag"]),
            get: |c| c.endpoint_slice.clone().unwrap_or_else(|| "<none>".to_owned()),
        },
        Case {
            key: "endpoint-slice-service",
            values: ["svc-file", "svc-env", "svc-flag"],
            expected: owned(["<missing>", "svc-file", "svc-env", "svc-flag"]),
            get: |c| {
                c.endpoint_slice_service
                    .clone()
                    .unwrap_or_else(|| "<none>".to_owned())
            },
        },
        Case {
            key: "endpoint-slice-ports",
            values: ["a:1", "b:2/UDP", "c:3/SCTP"],
            expected: owned(["<missing>", "a:1/TCP", "b:2/UDP", "c:3/SCTP"]),
            get: |c| {
                c.endpoint_slice_ports
                    .as_ref()
                    .map_or("<none>".to_owned(), ToString::to_string)
            },
        },
        Case {
            key: "pod-ip",
            values: ["10.0.0.1", "10.0.0.2", "fd00::3"],
            expected: owned(["<none>", "10.0.0.1", "10.0.0.2", "fd00::3"]),
            get: |c| c.pod_ip.map_or("<none>".to_owned(), |ip| ip.to_string()),
        },
        Case {
            key: "pod-deletion-cost",
            values: ["true", "false", "true"],
            expected: owned(["false", "true", "false", "true"]),
            get: |c| c.pod_deletion_cost.to_string(),
        },
        // The proxy's settings need the proxy (see `proxy_base` below), and the proxy its
        // upstream; the advertise address defaults to the pod IP and the listen port.
        Case {
            key: "proxy-listen",
            values: ["127.0.0.1:1001", "127.0.0.1:1002", ":1003"],
            expected: owned(["<conflict>", "127.0.0.1:1001", "127.0.0.1:1002", "0.0.0.0:1003"]),
            get: |c| c.proxy_listen.map_or("<none>".to_owned(), |a| a.to_string()),
        },
        Case {
            key: "proxy-upstream",
            values: ["127.0.0.1:2001", "127.0.0.1:2002", "[::1]:2003"],
            expected: owned(["<missing>", "127.0.0.1:2001", "127.0.0.1:2002", "[::1]:2003"]),
            get: |c| c.proxy_upstream.map_or("<none>".to_owned(), |a| a.to_string()),
        },
        Case {
            key: "advertise-address",
            values: ["10.0.0.1:8000", "pod-a.svc.cluster.local:8000", "[fd00::3]:8000"],
            expected: owned([
                "10.0.0.9:8000",
                "10.0.0.1:8000",
                "pod-a.svc.cluster.local:8000",
                "[fd00::3]:8000",
            ]),
            get: |c| c.advertise_address.clone().unwrap_or_else(|| "<none>".to_owned()),
        },
        Case {
            key: "proxy-queue-timeout",
            values: ["1s", "250ms", "1m"],
            expected: owned(["5000ms", "1000ms", "250ms", "60000ms"]),
            get: |c| format!("{}ms", c.proxy_queue_timeout.as_millis()),
        },
        Case {
            key: "proxy-queue-limit",
            values: ["0", "10", "100000"],
            expected: owned(["1024", "0", "10", "100000"]),
            get: |c| c.proxy_queue_limit.to_string(),
        },
    ];
    // Every field --print-config renders (each one a config-file key, a flag and a variable) has a
    // case; --ttl, which sets three of them, is tested on its own.
    let rendered = load(&["--election", "demo"], &[]).unwrap().render();
    let fields: std::collections::BTreeSet<&str> = rendered
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(key, _)| key))
        .collect();
    let covered: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.key).collect();
    assert_eq!(covered, fields, "a layering case for every field");

    for case in cases {
        let env_name = format!("ELECTOR_{}", case.key.to_ascii_uppercase().replace('-', "_"));
        let flag = if matches!(case.key, "release-on-shutdown" | "events" | "pod-deletion-cost") {
            format!("--{}={}", case.key, case.values[2])
        } else {
            format!("--{}", case.key)
        };
        // A pod label needs a pod name; the election is needed unless it is the field under test.
        let mut base: Vec<String> = Vec::new();
        if case.key != "election" {
            base.extend(["--election".to_owned(), "base".to_owned()]);
        }
        if matches!(case.key, "pod-label" | "pod-deletion-cost") {
            base.extend(["--pod-name".to_owned(), "pod-base".to_owned()]);
        }
        // The other settings an EndpointSlice needs, given by flag.
        let slice_base = [
            ("endpoint-slice", "s-base"),
            ("endpoint-slice-service", "svc-base"),
            ("endpoint-slice-ports", "http:80"),
            ("pod-ip", "10.0.0.9"),
        ];
        if case.key.starts_with("endpoint-slice") {
            for (key, value) in slice_base.iter().filter(|(key, _)| *key != case.key) {
                base.extend([format!("--{key}"), (*value).to_owned()]);
            }
        }
        // The proxy's settings, given by flag (the pod IP supplies the advertise address).
        let proxy_base = [
            ("proxy-listen", "0.0.0.0:8000"),
            ("proxy-upstream", "127.0.0.1:8081"),
            ("pod-ip", "10.0.0.9"),
        ];
        if case.key.starts_with("proxy-") || case.key == "advertise-address" {
            for (key, value) in proxy_base.iter().filter(|(key, _)| *key != case.key) {
                base.extend([format!("--{key}"), (*value).to_owned()]);
            }
        }
        // The health check's tuning needs the check.
        if case.key.starts_with("app-health-") {
            base.extend([
                "--app-health".to_owned(),
                "http://127.0.0.1:8081/healthz".to_owned(),
            ]);
        }
        let file = dir.file(
            &format!("{}.yaml", case.key),
            &format!("{}: \"{}\"\n", case.key, case.values[0]),
        );
        let file = file.to_string_lossy().into_owned();

        let args_default = base.clone();
        let mut args_file = base.clone();
        args_file.extend(["--config".to_owned(), file.clone()]);
        let mut args_flag = args_file.clone();
        args_flag.push(flag.clone());
        if !flag.contains('=') {
            args_flag.push(case.values[2].to_owned());
        }
        let env = [(env_name.as_str(), case.values[1])];
        let none: &[(&str, &str)] = &[];
        let runs = [
            (&args_default, none),
            (&args_file, none),
            (&args_file, &env[..]),
            (&args_flag, &env[..]),
        ];
        for (layer, ((args, env), expected)) in runs.into_iter().zip(&case.expected).enumerate() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let got = match load(&args, env) {
                Ok(config) => (case.get)(&config),
                Err(error) if expected == "<missing>" && error.to_string().contains("is required") => {
                    "<missing>".to_owned()
                }
                Err(error) if expected == "<conflict>" && error.to_string().contains("conflicts with") => {
                    "<conflict>".to_owned()
                }
                Err(error) => panic!("{} layer {layer}: unexpected error {error}", case.key),
            };
            let layer = ["default", "file", "env over file", "flag over env"][layer];
            assert_eq!(&got, expected, "{}: {layer}", case.key);
        }
    }
}

#[test]
fn elector_variables_beat_the_compatibility_names_which_beat_the_file() {
    let dir = TempDir::new("compat");
    let kubeconfig = dir.file("kc", "apiVersion: v1\n");
    let other_kubeconfig = dir.file("kc2", "apiVersion: v1\n");
    let file = dir.file(
        "c.yaml",
        "election: from-file\nnamespace: ns-file\npod-name: p-file\n",
    );
    let file = file.to_str().unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let kc2 = other_kubeconfig.to_str().unwrap();

    let compat = [
        ("LEASE_NAME", "lease"),
        ("POD_NAMESPACE", "ns-compat"),
        ("POD_NAME", "p-compat"),
        ("KUBECONFIG", kc),
    ];
    let config = load(&["--config", file], &compat).unwrap();
    assert_eq!(config.election, "lease", "LEASE_NAME beats the file");
    assert_eq!(config.namespace, "ns-compat", "POD_NAMESPACE beats the file");
    assert_eq!(
        config.pod_name.as_deref(),
        Some("p-compat"),
        "POD_NAME beats the file"
    );
    assert_eq!(config.kubeconfig.as_deref(), Some(Path::new(kc)));

    let mut env = compat.to_vec();
    env.extend([
        ("ELECTOR_ELECTION", "elector"),
        ("ELECTOR_NAMESPACE", "ns-elector"),
        ("ELECTOR_POD_NAME", "p-elector"),
        ("ELECTOR_KUBECONFIG", kc2),
    ]);
    let config = load(&["--config", file], &env).unwrap();
    assert_eq!(config.election, "elector", "ELECTOR_ELECTION beats LEASE_NAME");
    assert_eq!(
        config.namespace, "ns-elector",
        "ELECTOR_NAMESPACE beats POD_NAMESPACE"
    );
    assert_eq!(config.pod_name.as_deref(), Some("p-elector"));
    assert_eq!(config.kubeconfig.as_deref(), Some(Path::new(kc2)));

    let config = load(
        &["--namespace", "ns-flag"],
        &[("LEASE_NAME", "x"), ("NAMESPACE", "ns-compat")],
    )
    .unwrap();
    assert_eq!(config.namespace, "ns-flag", "flags beat both");
    let config = load(
        &[],
        &[
            ("LEASE_NAME", "x"),
            ("NAMESPACE", "same"),
            ("POD_NAMESPACE", "same"),
        ],
    )
    .unwrap();
    assert_eq!(config.namespace, "same", "NAMESPACE and POD_NAMESPACE may agree");
}

#[test]
fn an_empty_value_in_a_higher_layer_switches_an_optional_setting_off() {
    let dir = TempDir::new("empty");
    let file = dir.file(
        "c.yaml",
        &format!("election: demo\nleader-file: {}\n", dir.path("leader")),
    );
    let file = file.to_str().unwrap();
    assert!(load(&["--config", file], &[]).unwrap().leader_file.is_some());
    let config = load(&["--config", file], &[("ELECTOR_LEADER_FILE", "")]).unwrap();
    assert_eq!(config.leader_file, None);
}

#[test]
fn ttl_sets_all_three_timings_like_k8s_elector() {
    let config = load(&["--election", "demo", "--ttl", "15s"], &[]).unwrap();
    assert_eq!(config.timing, Timing::new(secs(15), secs(10), secs(2)).unwrap());
    let config = load(&["--election", "demo"], &[("ELECTOR_TTL", "30s")]).unwrap();
    assert_eq!(config.timing, Timing::new(secs(30), secs(20), secs(4)).unwrap());
    let config = load(&["--election", "demo", "--ttl", "10s"], &[]).unwrap();
    assert_eq!(
        config.timing.renew_deadline,
        Duration::from_nanos(6_666_666_666),
        "2/3 of 10s"
    );
    assert_eq!(
        config.timing.retry_period,
        Duration::from_nanos(1_333_333_333),
        "10s / 7.5"
    );

    // A flag --ttl overrides timings from a lower layer; an explicit flag overrides part of an env TTL.
    let config = load(
        &["--election", "demo", "--ttl", "30s"],
        &[("ELECTOR_RENEW_DEADLINE", "5s")],
    )
    .unwrap();
    assert_eq!(config.timing, Timing::new(secs(30), secs(20), secs(4)).unwrap());
    let config = load(
        &["--election", "demo", "--retry-period", "3s"],
        &[("ELECTOR_TTL", "30s")],
    )
    .unwrap();
    assert_eq!(config.timing, Timing::new(secs(30), secs(20), secs(3)).unwrap());
}

#[test]
fn config_files_in_yaml_and_toml_with_every_key() {
    let dir = TempDir::new("formats");
    let kubeconfig = dir.file("kc", "apiVersion: v1\n");
    let leader = dir.path("leader_status");
    let yaml = format!(
        "election: demo\nnamespace: team-a\nid: me\nlock-type: configmaps\nlease-duration: 20s\n\
         renew-deadline: 12s\nretry-period: 3s\nfollow: poll\nhttp: 127.0.0.1:9000\nkubeconfig: {}\n\
         leader-file: {leader}\npod-label: example.com/leader\npod-name: pod-1\nrelease-on-shutdown: false\n\
         shutdown-timeout: 3s\nevents: false\nlog-format: json\nlog-level: debug\n",
        kubeconfig.display()
    );
    let toml = format!(
        "election = \"demo\"\nnamespace = \"team-a\"\nid = \"me\"\nlock-type = \"configmaps\"\n\
         lease-duration = \"20s\"\nrenew-deadline = \"12s\"\nretry-period = \"3s\"\nfollow = \"poll\"\n\
         http = \"127.0.0.1:9000\"\nkubeconfig = \"{}\"\nleader-file = \"{leader}\"\n\
         pod-label = \"example.com/leader\"\npod-name = \"pod-1\"\nrelease-on-shutdown = false\n\
         shutdown-timeout = \"3s\"\nevents = false\nlog-format = \"json\"\nlog-level = \"debug\"\n",
        kubeconfig.display()
    );
    let from_yaml = load(&["--config", dir.file("c.yaml", &yaml).to_str().unwrap()], &[]).unwrap();
    let from_yml = load(&["--config", dir.file("c.yml", &yaml).to_str().unwrap()], &[]).unwrap();
    let from_toml = load(
        &[],
        &[("ELECTOR_CONFIG", dir.file("c.toml", &toml).to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(from_yaml, from_toml, "YAML and TOML say the same");
    assert_eq!(from_yaml, from_yml);
    assert_eq!(from_yaml.election, "demo");
    assert_eq!(from_yaml.identity, "me");
    assert_eq!(from_yaml.lock_type, LockType::Configmaps);
    assert_eq!(
        from_yaml.timing,
        Timing::new(secs(20), secs(12), secs(3)).unwrap()
    );
    assert_eq!(from_yaml.follow, FollowMode::Poll);
    assert_eq!(from_yaml.pod_label.as_deref(), Some("example.com/leader"));
    assert!(!from_yaml.release_on_shutdown && !from_yaml.events);
    assert_eq!(from_yaml.log_format, LogFormat::Json);

    // snake_case keys are read as their kebab-case spelling.
    let config = load(
        &[
            "--config",
            dir.file("s.yaml", "election: demo\nlease_duration: 20s\n")
                .to_str()
                .unwrap(),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(config.timing.lease_duration, secs(20));
}

#[test]
fn print_config_renders_every_field_and_reads_back_as_the_same_configuration() {
    let dir = TempDir::new("render");
    let kubeconfig = dir.file("kc", "apiVersion: v1\n");
    let leader = dir.path("leader_status");
    let config = load(
        &[
            "--election",
            "demo",
            "--namespace",
            "team-a",
            "--id",
            "pod \"quoted\" id",
            "--lock-type",
            "endpoints",
            "--lease-duration",
            "1m",
            "--renew-deadline",
            "1500ms",
            "--retry-period",
            "1s",
            "--follow",
            "poll",
            "--http",
            "[::1]:9090",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--leader-file",
            &leader,
            "--pod-label",
            "--pod-name",
            "pod-1",
            "--release-on-shutdown=false",
            "--shutdown-timeout",
            "2s",
            "--events=false",
            "--log-format",
            "json",
            "--log-level",
            "info,kube=debug",
            "--print-config",
        ],
        &[],
    )
    .unwrap();
    assert!(config.print_config);
    assert_eq!(
        config.pod_label.as_deref(),
        Some("kube-elector/role"),
        "a bare --pod-label uses the default key"
    );
    let rendered = config.render();
    for key in [
        "election",
        "namespace",
        "id",
        "lock-type",
        "lease-duration",
        "renew-deadline",
        "retry-period",
        "follow",
        "http",
        "kubeconfig",
        "leader-file",
        "pod-label",
        "pod-name",
        "release-on-shutdown",
        "shutdown-timeout",
        "events",
        "log-format",
        "log-level",
    ] {
        assert!(
            rendered.lines().any(|line| line.starts_with(&format!("{key}: "))),
            "{key} in:\n{rendered}"
        );
    }
    let file = dir.file("printed.yaml", &rendered);
    let reread = load(&["--config", file.to_str().unwrap()], &[]).unwrap();
    assert_eq!(
        reread,
        Config {
            print_config: false,
            ..config
        },
        "rendered:\n{rendered}"
    );

    let defaults = load(&["--election", "demo"], &[]).unwrap().render();
    assert!(
        defaults.contains("leader-file: null\n") && defaults.contains("lease-duration: \"15s\"\n"),
        "{defaults}"
    );
}

#[test]
fn every_invalid_setting_is_refused_naming_the_field_value_and_fix() {
    let dir = TempDir::new("invalid");
    let e = ["--election", "demo"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { e.iter().chain(extra).copied().collect() };

    refused(
        &with(&["--lock-type", "lease"]),
        &[],
        &[
            "lock-type",
            "\"lease\"",
            "flag --lock-type",
            "leases, configmaps or endpoints",
        ],
    );
    refused(
        &with(&["--lease-duration", "15"]),
        &[],
        &["lease-duration", "\"15\"", "write 15s"],
    );
    refused(
        &with(&["--retry-period", "2 s"]),
        &[],
        &["retry-period", "unknown unit"],
    );
    refused(
        &with(&["--lease-duration", "1500ms"]),
        &[],
        &["lease-duration", "whole number of seconds"],
    );
    refused(
        &with(&["--renew-deadline", "15s"]),
        &[],
        &["renew-deadline", "lease-duration", "flag --renew-deadline"],
    );
    refused(&with(&["--retry-period", "9s"]), &[], &["retry-period", "1.2"]);
    refused(
        &with(&["--ttl", "15s", "--lease-duration", "20s"]),
        &[],
        &["ttl", "lease-duration", "conflicts", "either"],
    );
    refused(
        &with(&["--ttl", "1500ms"]),
        &[],
        &["ttl", "whole number of seconds"],
    );
    refused(
        &["--election", ""],
        &[],
        &["election", "\"\"", "must not be empty"],
    );
    refused(
        &["--election", "My_App"],
        &[],
        &["election", "DNS-1123 subdomain"],
    );
    refused(
        &[],
        &[],
        &[
            "election is required",
            "--election",
            "ELECTOR_ELECTION",
            "LEASE_NAME",
        ],
    );
    refused(
        &with(&["--namespace", "a.b"]),
        &[],
        &["namespace", "DNS-1123 label"],
    );
    refused(&with(&["--id", " "]), &[], &["id", "must not be empty"]);
    refused(&with(&["--follow", "stream"]), &[], &["follow", "watch or poll"]);
    refused(
        &with(&["--http", "8080"]),
        &[],
        &["http", "\"8080\"", "HOST:PORT"],
    );
    refused(
        &with(&["--kubeconfig", "/nonexistent/kubeconfig"]),
        &[],
        &["kubeconfig", "/nonexistent/kubeconfig", "cannot be read"],
    );
    refused(
        &with(&[]),
        &[("KUBECONFIG", "/nonexistent/a:/nonexistent/b")],
        &["kubeconfig", "environment variable KUBECONFIG", "several files"],
    );
    refused(
        &with(&["--leader-file", "/nonexistent/dir/leader"]),
        &[],
        &["leader-file", "does not exist"],
    );
    refused(
        &with(&["--leader-file", "/tmp/"]),
        &[],
        &["leader-file", "not a directory"],
    );
    refused(
        &with(&["--pod-label"]),
        &[],
        &["pod-name", "pod-label", "kube-elector/role", "POD_NAME"],
    );
    refused(
        &with(&["--pod-label", "Bad Key", "--pod-name", "p"]),
        &[],
        &["pod-label", "label key"],
    );
    refused(&with(&["--pod-name", "Pod_1"]), &[], &["pod-name", "DNS-1123"]);
    refused(
        &with(&["--events=yes"]),
        &[],
        &["events", "\"yes\"", "true or false"],
    );
    refused(
        &with(&[]),
        &[("ELECTOR_RELEASE_ON_SHUTDOWN", "on")],
        &[
            "release-on-shutdown",
            "environment variable ELECTOR_RELEASE_ON_SHUTDOWN",
        ],
    );
    refused(
        &with(&["--shutdown-timeout", "0s"]),
        &[],
        &["shutdown-timeout", "greater than 0"],
    );
    refused(
        &with(&["--log-format", "xml"]),
        &[],
        &["log-format", "text or json"],
    );
    refused(
        &with(&["--log-level", "loud"]),
        &[],
        &["log-level", "trace, debug, info"],
    );
    refused(
        &with(&[]),
        &[("ELECTOR_LEASE_DURATON", "15s")],
        &["ELECTOR_LEASE_DURATON", "did you mean ELECTOR_LEASE_DURATION"],
    );
    refused(
        &with(&[]),
        &[("ELECTOR_FOO", "1")],
        &["unknown environment variable ELECTOR_FOO", "ELECTOR_TTL"],
    );
    refused(
        &with(&[]),
        &[("NAMESPACE", "a"), ("POD_NAMESPACE", "b")],
        &["NAMESPACE", "POD_NAMESPACE", "different namespaces"],
    );

    let unknown = dir.file("unknown.yaml", "election: demo\nlease-duraton: 15s\n");
    refused(
        &["--config", unknown.to_str().unwrap()],
        &[],
        &[
            "unknown key \"lease-duraton\"",
            "did you mean lease-duration",
            "unknown.yaml",
        ],
    );
    let toml_unknown = dir.file("unknown.toml", "election = \"demo\"\nbogus = 1\n");
    refused(
        &["--config", toml_unknown.to_str().unwrap()],
        &[],
        &["unknown key \"bogus\"", "known keys"],
    );
    let bare = dir.file("bare.yaml", "election: demo\nlease-duration: 15\n");
    refused(
        &["--config", bare.to_str().unwrap()],
        &[],
        &["lease-duration", "\"15\"", "config file", "write 15s"],
    );
    let broken = dir.file("broken.yaml", "election: [demo\n");
    refused(
        &["--config", broken.to_str().unwrap()],
        &[],
        &["config file", "broken.yaml", "cannot parse it as YAML"],
    );
    let broken_toml = dir.file("broken.toml", "election = \n");
    refused(
        &["--config", broken_toml.to_str().unwrap()],
        &[],
        &["cannot parse it as TOML"],
    );
    let nested = dir.file("nested.yaml", "election:\n  name: demo\n");
    refused(
        &["--config", nested.to_str().unwrap()],
        &[],
        &["key \"election\"", "single value"],
    );
    let json = dir.file("c.json", "{}");
    refused(
        &["--config", json.to_str().unwrap()],
        &[],
        &["c.json", "*.yaml, *.yml or *.toml"],
    );
    refused(
        &["--config", "/nonexistent/c.yaml"],
        &[],
        &["config file /nonexistent/c.yaml", "cannot read it"],
    );
    refused(
        &[],
        &[("ELECTOR_CONFIG", "/nonexistent/c.toml")],
        &["/nonexistent/c.toml", "cannot read it"],
    );
}

#[test]
fn kubernetes_service_link_variables_do_not_count_as_unknown() {
    let env = [
        ("ELECTOR_SERVICE_HOST", "10.0.0.1"),
        ("ELECTOR_SERVICE_PORT", "8080"),
        ("ELECTOR_PORT", "tcp://10.0.0.1:8080"),
        ("ELECTOR_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
        ("ELECTOR_PORT_8080_TCP_ADDR", "10.0.0.1"),
    ];
    assert!(load(&["--election", "demo"], &env).is_ok());
}

#[test]
fn clap_outcomes_carry_their_exit_codes() {
    let help = load(&["--help"], &[]).unwrap_err();
    assert_eq!(help.exit_code(), 0);
    assert!(help.is_help_or_version());
    let text = help.to_string();
    for (flag, env) in [
        ("--election", "ELECTOR_ELECTION, LEASE_NAME"),
        ("--namespace", "ELECTOR_NAMESPACE"),
        ("--id", "ELECTOR_ID"),
        ("--lock-type", "ELECTOR_LOCK_TYPE"),
        ("--lease-duration", "ELECTOR_LEASE_DURATION"),
        ("--renew-deadline", "ELECTOR_RENEW_DEADLINE"),
        ("--retry-period", "ELECTOR_RETRY_PERIOD"),
        ("--ttl", "ELECTOR_TTL"),
        ("--follow", "ELECTOR_FOLLOW"),
        ("--http", "ELECTOR_HTTP"),
        ("--kubeconfig", "ELECTOR_KUBECONFIG, KUBECONFIG"),
        ("--leader-file", "ELECTOR_LEADER_FILE"),
        ("--pod-label", "ELECTOR_POD_LABEL"),
        ("--pod-name", "ELECTOR_POD_NAME, POD_NAME"),
        ("--release-on-shutdown", "ELECTOR_RELEASE_ON_SHUTDOWN"),
        ("--shutdown-timeout", "ELECTOR_SHUTDOWN_TIMEOUT"),
        ("--events", "ELECTOR_EVENTS"),
        ("--log-format", "ELECTOR_LOG_FORMAT"),
        ("--log-level", "ELECTOR_LOG_LEVEL"),
        ("--config", "ELECTOR_CONFIG"),
    ] {
        assert!(text.contains(flag), "--help documents {flag}:\n{text}");
        assert!(text.contains(env), "--help names {env} for {flag}:\n{text}");
    }
    // --print-config is a command, not a setting: documented, with no variable of its own.
    let print_config = text
        .lines()
        .find(|l| l.trim_start().starts_with("--print-config"))
        .unwrap_or_else(|| panic!("--help documents --print-config:\n{text}"));
    assert!(
        !print_config.contains("env:") && !print_config.contains("ELECTOR_"),
        "--print-config has no environment variable: {print_config}"
    );
    for default in [
        "[default: 15s]",
        "[default: 10s]",
        "[default: 2s]",
        "[default: 0.0.0.0:8080]",
        "[default: 5s]",
        "[default: leases]",
        "[default: watch]",
        "[default: info]",
        "[default: text]",
    ] {
        assert!(text.contains(default), "--help shows {default}:\n{text}");
    }

    let version = load(&["--version"], &[]).unwrap_err();
    assert_eq!((version.exit_code(), version.is_help_or_version()), (0, true));
    let unknown = load(&["--electoin", "demo"], &[]).unwrap_err();
    assert_eq!(
        (unknown.exit_code(), unknown.is_help_or_version()),
        (2, false),
        "{unknown}"
    );
}

/// Every duration is bounded (issue 9): values past a bound are refused naming the field, and
/// sums that would overflow an `Instant` or the Lease's int32 seconds never get that far.
#[test]
fn durations_past_their_bounds_are_refused() {
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["--election", "demo"];
        args.extend_from_slice(extra);
        args
    };
    refused(
        &with(&[
            "--lease-duration",
            "3000000000s",
            "--renew-deadline",
            "2500000000s",
            "--retry-period",
            "1s",
        ]),
        &[],
        &["lease-duration", "maximum of 24h", "int32"],
    );
    refused(
        &with(&["--lease-duration", "25h", "--renew-deadline", "10s"]),
        &[],
        &["lease-duration", "maximum of 24h"],
    );
    refused(
        &with(&["--retry-period", "18446744073709551615s"]),
        &[],
        &["retry-period", "renew-deadline"],
    );
    refused(
        &with(&["--retry-period", "5ms", "--renew-deadline", "1s"]),
        &[],
        &["retry-period", "10ms"],
    );
    refused(&with(&["--ttl", "9999999999s"]), &[], &["ttl", "maximum of 24h"]);
    refused(
        &with(&["--shutdown-timeout", "18446744073709551615s"]),
        &[],
        &["shutdown-timeout", "maximum of 1h"],
    );
    refused(
        &with(&["--shutdown-timeout", "61m"]),
        &[],
        &["shutdown-timeout", "maximum of 1h"],
    );
    refused(
        &with(&["--release-delay", "99999999999999999999999s"]),
        &[],
        &["release-delay", "too"],
    );
    refused(
        &with(&["--release-delay", "3s"]),
        &[],
        &["release-delay", "shutdown-timeout", "at most half", "the default"],
    );
    refused(
        &with(&["--shutdown-timeout", "1s"]),
        &[],
        &[
            "release-delay 1s",
            "shutdown-timeout 1s",
            "lower --release-delay or raise --shutdown-timeout",
        ],
    );

    // The bounds themselves are accepted.
    let config = load(
        &with(&[
            "--lease-duration",
            "24h",
            "--renew-deadline",
            "23h",
            "--retry-period",
            "10ms",
        ]),
        &[],
    )
    .expect("the longest lease and the shortest retry period");
    assert_eq!(config.timing.lease_duration_seconds(), 86_400);
    assert_eq!(config.liveness_bound(), secs(86_400 + 23 * 3_600));
    let config = load(
        &with(&["--shutdown-timeout", "1h", "--release-delay", "30m"]),
        &[],
    )
    .expect("the longest shutdown, half of it delay");
    assert_eq!(
        (config.shutdown_timeout, config.release_delay),
        (secs(3_600), secs(1_800))
    );
    let config = load(&with(&["--release-delay", "0s"]), &[]).expect("no delay");
    assert_eq!(config.release_delay, Duration::ZERO);
    let defaults = load(&with(&[]), &[]).expect("defaults");
    assert_eq!(
        (defaults.shutdown_timeout, defaults.release_delay),
        (secs(5), secs(1))
    );
    assert!(
        defaults.render().contains("release-delay: \"1s\"\n"),
        "{}",
        defaults.render()
    );
    let help = load(&["--help"], &[]).unwrap_err().to_string();
    assert!(
        help.contains("--release-delay")
            && help.contains("ELECTOR_RELEASE_DELAY")
            && help.contains("[default: 1s]"),
        "--help documents --release-delay:\n{help}"
    );
}

/// The binary itself exits 2 on the extreme values, with the field named and no panic.
/// It runs with a timeout and a kubeconfig for an unreachable server, so a configuration that
/// were wrongly accepted would keep running and fail the test instead of hanging it.
#[tokio::test]
async fn the_binary_exits_2_on_out_of_bounds_durations() {
    let dir = TempDir::new("bounds-binary");
    let kubeconfig = dir.file(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\n\
         current-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--lease-duration",
                "3000000000s",
                "--renew-deadline",
                "2500000000s",
                "--retry-period",
                "1s",
            ],
            "lease-duration",
        ),
        (
            &["--shutdown-timeout", "18446744073709551615s"],
            "shutdown-timeout",
        ),
        (&["--retry-period", "18446744073709551615s"], "retry-period"),
        (&["--release-delay", "5s"], "release-delay"),
        (
            &["--lease-duration", "2147483648s", "--renew-deadline", "10s"],
            "lease-duration",
        ),
    ];
    for (args, field) in cases {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-elector"))
            .args([
                "--election",
                "demo",
                "--id",
                "x",
                "--http",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .args(args)
            .env_clear()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{args:?} was accepted: the process kept running"))
            .expect("the binary's output");
        let status = output.status;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(status.code(), Some(2), "{args:?}: exit code; stderr: {stderr}");
        assert!(
            stderr.contains(field),
            "{args:?}: the message names {field}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: no panic: {stderr}");
    }
}

#[test]
fn the_application_health_check_is_validated_naming_the_field_and_the_fix() {
    let url = "http://127.0.0.1:8081/healthz";
    let config = load(&["--election", "e", "--app-health", url], &[]).unwrap();
    assert_eq!(
        config.app_health.as_ref().map(ToString::to_string).as_deref(),
        Some(url)
    );
    assert_eq!(
        (config.app_health_period, config.app_health_timeout),
        (secs(1), secs(1))
    );
    assert_eq!(
        (
            config.app_health_failure_threshold,
            config.app_health_success_threshold
        ),
        (3, 1)
    );
    refused(
        &[
            "--election",
            "e",
            "--app-health",
            "https://127.0.0.1:8443/healthz",
        ],
        &[],
        &[
            "app-health",
            "https://127.0.0.1:8443/healthz",
            "must start with http://",
        ],
    );
    refused(
        &[
            "--election",
            "e",
            "--app-health",
            url,
            "--app-health-timeout",
            "2s",
        ],
        &[],
        &[
            "app-health-timeout",
            "app-health-period",
            "at most",
            "lower --app-health-timeout",
        ],
    );
    refused(
        &[
            "--election",
            "e",
            "--app-health",
            url,
            "--app-health-failure-threshold",
            "0",
        ],
        &[],
        &["app-health-failure-threshold", "\"0\"", "from 1 to 1000"],
    );
    refused(
        &[
            "--election",
            "e",
            "--app-health",
            url,
            "--app-health-period",
            "10ms",
        ],
        &[],
        &["app-health-period", "100ms to 1h"],
    );
    refused(
        &["--election", "e"],
        &[("ELECTOR_APP_HEALTH_FAILURE_THRESHOLD", "5")],
        &[
            "app-health-failure-threshold",
            "ELECTOR_APP_HEALTH_FAILURE_THRESHOLD",
            "pass --app-health URL",
        ],
    );
}

#[test]
fn the_proxy_refuses_what_it_cannot_run_with_naming_the_fix() {
    refused(
        &[
            "--election",
            "e",
            "--proxy-listen",
            ":8000",
            "--proxy-upstream",
            "127.0.0.1:8081",
        ],
        &[],
        &[
            "advertise-address is required",
            "POD_IP",
            "--advertise-address HOST:PORT",
        ],
    );
    refused(
        &[
            "--election",
            "e",
            "--proxy-listen",
            ":8000",
            "--pod-ip",
            "10.0.0.1",
        ],
        &[],
        &["proxy-upstream is required", "--proxy-upstream ADDR"],
    );
    refused(
        &["--election", "e"],
        &[("ELECTOR_PROXY_QUEUE_LIMIT", "5")],
        &[
            "proxy-queue-limit",
            "conflicts with proxy-listen",
            "pass --proxy-listen ADDR or remove",
        ],
    );
    for (flag, value, rule) in [
        ("--proxy-upstream", "localhost:8081", "use IP:PORT"),
        ("--advertise-address", "10.0.0.1", "is not HOST:PORT"),
        ("--advertise-address", "Bad_Host:80", "is not HOST:PORT"),
        ("--proxy-queue-timeout", "0s", "above 0"),
        ("--proxy-queue-limit", "2000000", "from 0 to 1000000"),
    ] {
        refused(
            &[
                "--election",
                "e",
                "--proxy-listen",
                ":8000",
                "--pod-ip",
                "10.0.0.1",
                flag,
                value,
            ],
            &[],
            &[&flag[2..], value, rule],
        );
    }
    let config = load(
        &[
            "--election",
            "e",
            "--proxy-listen",
            ":8000",
            "--proxy-upstream",
            "127.0.0.1:8081",
        ],
        &[("POD_IP", "fd00::7")],
    )
    .unwrap();
    assert_eq!(config.advertise_address.as_deref(), Some("[fd00::7]:8000"));
}
