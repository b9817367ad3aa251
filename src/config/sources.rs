//! Where values come from: the command line, the environment and the config file, each read into
//! a [`Layer`] of raw text with its [`Origin`], for the settings of [`super::Config::infos`]. Parsing the
//! text is the same for every layer (in [`super::Resolved`]), so a value is refused with the same
//! rule whichever way it was given, naming where it came from.
//!
//! Unknown names are errors with a suggestion: an unknown file key or `ELECTOR_*` variable (except
//! Kubernetes' service-link variables).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::settings::Info;
use super::{Error, Origin};

/// One value as given, with its origin.
#[derive(Clone, Debug)]
pub(super) struct Given {
    pub value: String,
    pub origin: Origin,
}

/// The values one source gave, by setting name.
pub(super) type Layer = BTreeMap<&'static str, Given>;

/// The variable naming the config file; `--config` is its flag.
const CONFIG_ENV: &str = "ELECTOR_CONFIG";

/// The command line: one flag per setting, plus `--config` and `--print-config`.
pub(super) fn command(infos: &[Info]) -> Command {
    let compat: Vec<&str> = infos
        .iter()
        .flat_map(|info| info.meta.compat_env)
        .copied()
        .collect();
    let command = Command::new("kube-elector")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Leader-election sidecar for Kubernetes: one leader per election, readiness gating, a leader \
             file, metrics and fencing tokens.",
        )
        .after_help(format!(
            "Precedence, later wins: defaults < config file < environment (ELECTOR_* beats {}) < flags.\n\
             Durations need a unit: 500ms, 15s, 1m, 1m30s, 1h.\n\
             Config file keys are the flag names (lease-duration: 15s); unknown keys and unknown \
             ELECTOR_* variables are errors.",
            compat.join(", ")
        ));
    let settings = infos.iter().map(|info| {
        let arg = Arg::new(info.meta.name)
            .long(info.meta.name)
            .value_name(info.meta.value_name)
            .help(info.help_line());
        match info.meta.bare {
            Some(bare) => arg
                .num_args(0..=1)
                .default_missing_value(bare)
                .require_equals(info.require_equals),
            None => arg,
        }
    });
    command
        .args(settings)
        .arg(Arg::new("config").long("config").value_name("PATH").help(format!(
            "Config file, YAML (.yaml, .yml) or TOML (.toml); keys are the flag names [env: {CONFIG_ENV}]"
        )))
        .arg(
            Arg::new("print-config")
                .long("print-config")
                .action(ArgAction::SetTrue)
                .help("Print the effective configuration as YAML and exit"),
        )
        .arg(
            Arg::new(COMMAND_ARG)
                .value_name("COMMAND")
                .num_args(1..)
                .last(true)
                .value_parser(clap::value_parser!(std::ffi::OsString))
                .help(
                    "Exec mode: after --, a command (and its arguments) run only while this process \
                     leads, stopped before the lock is released; only the command line carries it",
                ),
        )
}

/// The name of the trailing `-- COMMAND [ARG...]` in the matches.
pub(super) const COMMAND_ARG: &str = "command";

/// The command given after `--`, if any.
pub(super) fn command_of(matches: &ArgMatches) -> Vec<std::ffi::OsString> {
    matches
        .get_many::<std::ffi::OsString>(COMMAND_ARG)
        .map(|values| values.cloned().collect())
        .unwrap_or_default()
}

/// The flags given, and `--config`.
pub(super) fn flag_layer(infos: &[Info], matches: &ArgMatches) -> (Layer, Option<Given>) {
    let layer = infos
        .iter()
        .filter_map(|info| {
            let value = matches.get_one::<String>(info.meta.name)?;
            let given = Given {
                value: value.clone(),
                origin: Origin::Flag(info.meta.name),
            };
            Some((info.meta.name, given))
        })
        .collect();
    let config = matches.get_one::<String>("config").map(|path| Given {
        value: path.clone(),
        origin: Origin::Flag("config"),
    });
    (layer, config)
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
pub(super) fn env_layer(infos: &[Info], env: &[(String, String)]) -> Result<(Layer, Option<Given>), Error> {
    let mut compat = Layer::new();
    let mut compat_names: BTreeMap<&'static str, &'static str> = BTreeMap::new();
    let mut elector = Layer::new();
    let mut config = None;
    for (name, value) in env {
        let given = Given {
            value: value.clone(),
            origin: Origin::Env(name.clone()),
        };
        if let Some(suffix) = name.strip_prefix("ELECTOR_") {
            if name == CONFIG_ENV {
                config = Some(given);
            } else if let Some(info) = infos.iter().find(|info| info.meta.env() == *name) {
                elector.insert(info.meta.name, given);
            } else if !is_service_link(name) {
                let mut known: Vec<String> = infos.iter().map(|info| info.meta.env()).collect();
                known.push(CONFIG_ENV.to_owned());
                let suffixes: Vec<&str> = known.iter().map(|k| &k["ELECTOR_".len()..]).collect();
                let hint = closest(suffix, &suffixes)
                    .map(|k| format!(" (did you mean ELECTOR_{k}?)"))
                    .unwrap_or_default();
                return Err(Error::UnknownEnv {
                    name: name.clone(),
                    hint,
                    known: known.join(", "),
                });
            }
            continue;
        }
        let Some((key, compat_name)) = infos.iter().find_map(|info| {
            let compat_name = info.meta.compat_env.iter().find(|compat| **compat == name)?;
            Some((info.meta.name, *compat_name))
        }) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        // Two compatibility names for one field (NAMESPACE, POD_NAMESPACE) must agree.
        if let Some((previous_name, previous)) = compat_names.get(key).zip(compat.get(key))
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
pub(super) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| {
            (
                strsim::levenshtein(&word, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Reads and parses the config file into a layer.
pub(super) fn file_layer(infos: &[Info], given: &Given) -> Result<Layer, Error> {
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
        let Some(key) = infos
            .iter()
            .map(|info| info.meta.name)
            .find(|name| *name == normalized)
        else {
            let names: Vec<&str> = infos.iter().map(|info| info.meta.name).collect();
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
        if let Some(previous) = layer.get(key) {
            return Err(Error::InvalidValue {
                field: key,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

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
    fn every_setting_has_a_flag_a_variable_and_its_help() {
        let infos = Config::infos();
        let help = command(&infos).render_long_help().to_string();
        for info in &infos {
            let flag = format!("--{}", info.meta.name);
            assert!(help.contains(&flag), "--help documents {flag}:\n{help}");
            assert!(
                help.contains(&info.meta.env()),
                "--help names {}:\n{help}",
                info.meta.env()
            );
        }
    }
}
