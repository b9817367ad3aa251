//! The parsers and checks for single values, one per kind of value: durations, words from a
//! fixed set, addresses, Kubernetes names, paths. Each takes the text as given in any layer and
//! returns the typed value or the rule it broke, phrased to follow the field name and value in
//! [`super::Error::InvalidValue`] ("… must be true or false").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;

use super::{DEFAULT_POD_LABEL, MAX_SHUTDOWN_TIMEOUT};
use crate::election::{FollowMode, LockType};

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

/// A duration of at least 1s in whole seconds: `--ttl` becomes the Lease's whole-second duration.
pub(super) fn ttl(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value < Duration::from_secs(1) || value.subsec_nanos() != 0 {
        return Err(
            "must be a whole number of seconds, at least 1s (it becomes the lease duration); use e.g. 15s"
                .to_owned(),
        );
    }
    Ok(value)
}

/// `child-grace`: any duration up to [`MAX_SHUTDOWN_TIMEOUT`] (0 sends SIGKILL at once).
pub(super) fn child_grace(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value > MAX_SHUTDOWN_TIMEOUT {
        return Err("is longer than the maximum of 1h; use e.g. 10s".to_owned());
    }
    Ok(value)
}

/// Above 0 and at most [`MAX_SHUTDOWN_TIMEOUT`].
pub(super) fn shutdown_timeout(text: &str) -> Result<Duration, String> {
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
}

/// An optional value: the empty string means "none", so a higher layer can switch off what a
/// lower one set.
pub(super) fn optional<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

impl ValueEnum for LockType {
    fn value_variants<'a>() -> &'a [Self] {
        &LockType::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for FollowMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[FollowMode::Watch, FollowMode::Poll]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// One of the words of a [`ValueEnum`] (lock type, follow mode, log format).
pub(super) fn choice<T: ValueEnum>(text: &str) -> Result<T, String> {
    T::from_str(text, false).map_err(|_| {
        let words: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|value| value.to_possible_value())
            .map(|value| value.get_name().to_owned())
            .collect();
        match words.split_last() {
            Some((last, [])) => format!("must be {last}"),
            Some((last, rest)) => format!("must be {} or {last}", rest.join(", ")),
            None => "has no accepted values".to_owned(),
        }
    })
}

/// A bare level, or `tracing` directives such as `info,kube=debug`.
pub(super) fn parse_log_level(text: &str) -> Result<String, String> {
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
pub(super) fn parse_http(text: &str) -> Result<SocketAddr, String> {
    let rule = || "is not a listen address; use HOST:PORT such as 0.0.0.0:8080 or :8080".to_owned();
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| rule())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    text.parse().map_err(|_| rule())
}

/// A pod UID as the API server assigns it: up to 64 characters of letters, digits and `-`.
pub(super) fn check_pod_uid(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(
            "must be the pod's UID (letters, digits and '-', at most 64); set POD_UID from \
            the downward API (fieldRef metadata.uid)"
                .to_owned(),
        );
    }
    Ok(value.to_owned())
}

/// Kubernetes' DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, alphanumeric at both
/// ends of each dot-separated part, at most 253 characters.
pub(super) fn check_dns_subdomain(text: &str) -> Result<String, String> {
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
        Ok(text.to_owned())
    } else {
        Err(
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending \
             with a letter or digit (e.g. my-app.leader)"
                .to_owned(),
        )
    }
}

/// Kubernetes' DNS-1123 label (namespaces): like a subdomain part, at most 63 characters.
pub(super) fn check_dns_label(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(
            "must be a DNS-1123 label: 1-63 lower-case letters, digits and '-', starting and ending with \
             a letter or digit (e.g. default)"
                .to_owned(),
        )
    }
}

pub(super) fn check_identity(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("must not be empty; pass a unique name per process, such as the pod name".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if text.len() > 253 {
        return Err(format!("is {} characters long; use at most 253", text.len()));
    }
    Ok(text.to_owned())
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 alphanumerics,
/// `-`, `_` and `.`, alphanumeric at both ends.
pub(super) fn check_label_key(text: &str) -> Result<String, String> {
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
        Ok(text.to_owned())
    } else {
        Err(format!(
            "is not a label key: [prefix/]name with a name of 1-63 letters, digits, '-', '_' and '.', \
             e.g. {DEFAULT_POD_LABEL}"
        ))
    }
}

pub(super) fn check_kubeconfig(text: &str) -> Result<PathBuf, String> {
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

pub(super) fn check_leader_file(text: &str) -> Result<PathBuf, String> {
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

/// An application health check period or timeout: 100ms to 1h.
pub(super) fn app_health_interval(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
        return Err("must be from 100ms to 1h; use e.g. 1s".to_owned());
    }
    Ok(value)
}

/// An application health check threshold: a whole number from 1 to 1000.
pub(super) fn app_health_threshold(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(value) if (1..=1000).contains(&value) => Ok(value),
        _ => Err("must be a whole number from 1 to 1000; use e.g. 3".to_owned()),
    }
}

/// The leader-forwarding proxy's upstream: the local application's `IP:PORT`.
pub(super) fn proxy_upstream(text: &str) -> Result<SocketAddr, String> {
    match text.trim().parse::<SocketAddr>() {
        Ok(address) if address.port() != 0 => Ok(address),
        _ => Err("is not the application's address; use IP:PORT such as 127.0.0.1:8081".to_owned()),
    }
}

/// How other replicas reach this proxy: `HOST:PORT`, the host an IP address (IPv6 in brackets)
/// or a DNS name, the port from 1 to 65535.
pub(super) fn advertise_address(text: &str) -> Result<String, String> {
    let rule = || {
        "is not HOST:PORT; use the pod's IP and the proxy's port such as 10.1.2.3:8000 (or leave \
         it unset and set POD_IP from the downward API, fieldRef status.podIP)"
            .to_owned()
    };
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return if address.port() == 0 {
            Err(rule())
        } else {
            Ok(address.to_string())
        };
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(rule)?;
    match port.parse::<u16>() {
        Ok(port) if port != 0 && check_dns_subdomain(host).is_ok() => Ok(format!("{host}:{port}")),
        _ => Err(rule()),
    }
}

/// How long a request waits for a leader: above 0, at most 1h.
pub(super) fn proxy_queue_timeout(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value.is_zero() || value > Duration::from_secs(3600) {
        return Err("must be above 0 and at most 1h; use e.g. 5s".to_owned());
    }
    Ok(value)
}

/// How many requests may wait for a leader at once: 0 (none wait) to 1000000.
pub(super) fn proxy_queue_limit(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(value) if value <= 1_000_000 => Ok(value),
        _ => Err("must be a whole number from 0 to 1000000; use e.g. 1024".to_owned()),
    }
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
    fn words_come_from_their_value_enum() {
        assert_eq!(choice::<LockType>("configmaps"), Ok(LockType::Configmaps));
        assert_eq!(choice::<FollowMode>("poll"), Ok(FollowMode::Poll));
        assert_eq!(
            choice::<LockType>("lease"),
            Err("must be leases, configmaps or endpoints".to_owned())
        );
        assert_eq!(
            choice::<FollowMode>("Poll"),
            Err("must be watch or poll".to_owned())
        );
    }
}
