//! Object validation with the real server's rules and messages.
//!
//! `ValidateObjectMeta` (name, labels, annotations), the per-type `Validate` functions the
//! simulator needs (Lease spec, ConfigMap keys, Pod containers, `events.k8s.io` required fields),
//! and the exact `MicroTime` layout check. Messages are worded as
//! `k8s.io/apimachinery/pkg/util/validation` words them, so `422 Invalid` bodies match a cluster's.

use serde_json::Value;

use crate::resource::Kind;
use crate::status::{FieldError, quote};

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_FMT: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const MICRO_TIME_LAYOUT: &str = "2006-01-02T15:04:05.000000Z07:00";
/// `TotalAnnotationSizeLimitB` of apimachinery.
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `IsDNS1123Subdomain`: the messages for a bad value, empty when valid.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    if s.is_empty() || !s.split('.').all(is_dns1123_label) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName`: `[prefix/]name`.
pub fn qualified_name(s: &str) -> Vec<String> {
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".to_owned()];
            }
            let prefix_errs = dns1123_subdomain(prefix);
            if !prefix_errs.is_empty() {
                return prefix_errs
                    .into_iter()
                    .map(|m| format!("prefix part {m}"))
                    .collect();
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_FMT} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_owned());
    }
    if !name.is_empty() && !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_FMT}"));
    }
    errs
}

fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

/// Validates `metadata` (name, labels, annotations) and the type's own rules.
pub fn validate(kind: Kind, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in dns1123_subdomain(name) {
            errs.push(FieldError::invalid("metadata.name", quote(name), m));
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for m in qualified_name(k) {
                errs.push(FieldError::invalid("metadata.labels", quote(k), m));
            }
            let v = v.as_str().unwrap_or("");
            for m in label_value(v) {
                errs.push(FieldError::invalid("metadata.labels", quote(v), m));
            }
        }
    }
    if let Some(annotations) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in annotations {
            for m in qualified_name(&k.to_lowercase()) {
                errs.push(FieldError::invalid("metadata.annotations", quote(k), m));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > ANNOTATIONS_LIMIT {
            errs.push(FieldError::too_long("metadata.annotations", ANNOTATIONS_LIMIT));
        }
    }
    match kind {
        Kind::Lease => validate_lease_spec(obj, &mut errs),
        Kind::ConfigMap => validate_config_map(obj, &mut errs),
        Kind::Pod => validate_pod(obj, &mut errs),
        Kind::EventV1 => validate_event_v1(obj, &mut errs),
        Kind::EndpointSlice => validate_endpoint_slice(obj, &mut errs),
        Kind::Endpoints | Kind::Event => {}
    }
    errs
}

/// [`validate`] for an update of `old` to `obj`: the fields the real registry keeps immutable
/// (`ValidateImmutableField`) as well.
pub fn validate_update(kind: Kind, obj: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate(kind, obj);
    if kind == Kind::EndpointSlice {
        let address_type = |v: &Value| {
            v.get("addressType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let new = address_type(obj);
        if new != address_type(old) {
            errs.push(FieldError::invalid(
                "addressType",
                quote(&new),
                "field is immutable",
            ));
        }
    }
    errs
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// `ValidateDNS1123Label`'s messages.
fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !is_dns1123_label(s) {
        errs.push(DNS1123_LABEL_MSG.to_owned());
    }
    errs
}

/// `ValidateEndpointIP` of the core validation: addresses a proxy must never be sent to.
fn endpoint_ip(ip: std::net::IpAddr, text: &str) -> Vec<String> {
    use std::net::IpAddr;
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(format!("may not be unspecified ({text})"));
    }
    if ip.is_loopback() {
        errs.push("may not be in the loopback range (127.0.0.0/8, ::1/128)".to_owned());
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (v4.is_link_local(), o[0] == 224 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local {
        errs.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)".to_owned());
    }
    if link_local_multicast {
        errs.push("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".to_owned());
    }
    errs
}

/// `ValidateEndpointSlice` of `pkg/apis/discovery/validation`: the address type, each endpoint's
/// addresses against it, hostnames, and the ports (names, uniqueness, protocol).
fn validate_endpoint_slice(obj: &Value, errs: &mut Vec<FieldError>) {
    const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
    const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
    const MAX_ADDRESSES: usize = 100;
    const MAX_ENDPOINTS: usize = 1000;
    const MAX_PORTS: usize = 20000;
    let address_type = obj.get("addressType").and_then(Value::as_str).unwrap_or("");
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            "addressType",
            address_type,
            &ADDRESS_TYPES,
        ));
    }
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
    } else {
        for (i, endpoint) in endpoints.iter().enumerate() {
            let path = format!("endpoints[{i}].addresses");
            let addresses = endpoint
                .get("addresses")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            if addresses.is_empty() {
                errs.push(FieldError::required(&path, "must contain at least 1 address"));
            } else if addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(&path, addresses.len(), MAX_ADDRESSES));
            }
            for (j, address) in addresses.iter().enumerate() {
                let text = address.as_str().unwrap_or("");
                let field = format!("{path}[{j}]");
                if !matches!(address_type, "IPv4" | "IPv6") {
                    continue;
                }
                // IsValidIPv4Address / IsValidIPv6Address, then ValidateEndpointIP.
                let ip: Option<std::net::IpAddr> = text.parse().ok();
                let of_type = match ip {
                    Some(std::net::IpAddr::V4(_)) => address_type == "IPv4",
                    Some(std::net::IpAddr::V6(_)) => address_type == "IPv6",
                    None => false,
                };
                if !of_type {
                    errs.push(FieldError::invalid(
                        &field,
                        quote(text),
                        format!("must be a valid {address_type} address"),
                    ));
                }
                match ip {
                    None => errs.push(FieldError::invalid(
                        &field,
                        quote(text),
                        "must be a valid IP address",
                    )),
                    Some(ip) => {
                        for m in endpoint_ip(ip, text) {
                            errs.push(FieldError::invalid(&field, quote(text), m));
                        }
                    }
                }
            }
            if let Some(hostname) = endpoint.get("hostname").and_then(Value::as_str) {
                for m in dns1123_label(hostname) {
                    errs.push(FieldError::invalid(
                        format!("endpoints[{i}].hostname"),
                        quote(hostname),
                        m,
                    ));
                }
            }
        }
    }
    let ports = obj
        .get("ports")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many("ports", ports.len(), MAX_PORTS));
        return;
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let name = port.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            for m in dns1123_label(name) {
                errs.push(FieldError::invalid(format!("ports[{i}].name"), quote(name), m));
            }
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("ports[{i}].name"), quote(name)));
        }
        match port.get("protocol").and_then(Value::as_str) {
            None => errs.push(FieldError::required(format!("ports[{i}].protocol"), "")),
            Some(protocol) if !PROTOCOLS.contains(&protocol) => {
                errs.push(FieldError::not_supported(
                    format!("ports[{i}].protocol"),
                    protocol,
                    &PROTOCOLS,
                ));
            }
            Some(_) => {}
        }
        if let Some(app_protocol) = port.get("appProtocol").and_then(Value::as_str) {
            for m in qualified_name(app_protocol) {
                errs.push(FieldError::invalid(
                    format!("ports[{i}].appProtocol"),
                    quote(app_protocol),
                    m,
                ));
            }
        }
    }
}

fn validate_lease_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    if let Some(d) = obj.pointer("/spec/leaseDurationSeconds").and_then(Value::as_i64)
        && d <= 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d.to_string(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = obj.pointer("/spec/leaseTransitions").and_then(Value::as_i64)
        && t < 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

fn validate_config_map(obj: &Value, errs: &mut Vec<FieldError>) {
    for field in ["data", "binaryData"] {
        let Some(map) = obj.get(field).and_then(Value::as_object) else {
            continue;
        };
        for key in map.keys() {
            let path = format!("{field}[{key}]");
            if key.len() > 253 {
                errs.push(FieldError::invalid(
                    &path,
                    quote(key),
                    "must be no more than 253 characters",
                ));
            }
            let ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if !ok {
                errs.push(FieldError::invalid(&path, quote(key), CONFIG_KEY_MSG));
            } else if key == "." || key == ".." || key.starts_with("..") {
                errs.push(FieldError::invalid(
                    &path,
                    quote(key),
                    "must not be '.' or '..' or start with '..'",
                ));
            }
        }
    }
}

fn validate_pod(obj: &Value, errs: &mut Vec<FieldError>) {
    let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required("spec.containers", "")),
        Some(list) if list.is_empty() => errs.push(FieldError::required("spec.containers", "")),
        Some(list) => {
            for (i, c) in list.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    errs.push(FieldError::required(format!("spec.containers[{i}].name"), ""));
                }
                if c.get("image").and_then(Value::as_str).unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("spec.containers[{i}].image"), ""));
                }
            }
        }
    }
}

fn validate_event_v1(obj: &Value, errs: &mut Vec<FieldError>) {
    if obj.get("eventTime").is_none_or(Value::is_null) {
        errs.push(FieldError::required("eventTime", ""));
    }
    for field in ["reportingController", "reportingInstance", "action", "reason"] {
        if obj.get(field).and_then(Value::as_str).unwrap_or("").is_empty() {
            errs.push(FieldError::required(field, ""));
        }
    }
}

/// Checks every `MicroTime` field of `kind` in the raw body against the exact Go layout.
/// Returns the Go `time.Parse` error message for the first bad one.
pub fn check_micro_times(kind: Kind, raw: &Value) -> Result<(), String> {
    for ptr in kind.micro_time_fields() {
        if let Some(Value::String(s)) = raw.pointer(ptr)
            && let Err(rest) = micro_time_shape(s)
        {
            return Err(format!(
                "parsing time {} as {}: cannot parse {} as {}",
                quote(s),
                quote(MICRO_TIME_LAYOUT),
                quote(rest.0),
                quote(rest.1)
            ));
        }
    }
    Ok(())
}

/// `Ok` when `s` has the shape `YYYY-MM-DDTHH:MM:SS.ffffff(Z|±hh:mm)`; otherwise the unparsed
/// remainder and the layout element it failed on.
fn micro_time_shape(s: &str) -> Result<(), (&str, &'static str)> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let rest = |i: usize| s.get(i..).unwrap_or("");
    let steps: [(usize, &'static str, bool); 11] = [
        (0, "2006", digits(0..4)),
        (4, "-", at(4, b'-')),
        (5, "01", digits(5..7)),
        (7, "-", at(7, b'-')),
        (8, "02", digits(8..10)),
        (10, "T", at(10, b'T')),
        (11, "15", digits(11..13)),
        (13, ":", at(13, b':')),
        (14, "04", digits(14..16)),
        (16, ":", at(16, b':')),
        (17, "05", digits(17..19)),
    ];
    for (i, elem, ok) in steps {
        if !ok {
            return Err((rest(i), elem));
        }
    }
    if !(at(19, b'.') && digits(20..26)) || b.get(26).is_some_and(u8::is_ascii_digit) {
        return Err((rest(19), ".000000"));
    }
    let tz = rest(26);
    let tz_ok = tz == "Z"
        || (tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && digits(27..29)
            && at(29, b':')
            && digits(30..32));
    if !tz_ok {
        return Err((tz, "Z07:00"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(kind: Kind, obj: Value) -> Vec<String> {
        validate(kind, &obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn lease_spec_rules() {
        let m = messages(
            Kind::Lease,
            json!({"metadata": {"name": "x"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        );
        assert_eq!(
            m,
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
        assert!(
            messages(
                Kind::Lease,
                json!({"metadata": {"name": "ok.name-1"}, "spec": {}})
            )
            .is_empty()
        );
    }

    #[test]
    fn names_must_be_dns_subdomains() {
        let m = messages(Kind::ConfigMap, json!({"metadata": {"name": "Bad_Name"}}));
        assert_eq!(m.len(), 1, "got {m:?}");
        assert!(
            m[0].starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")
        );
        let m = messages(Kind::ConfigMap, json!({"metadata": {}}));
        assert_eq!(
            m,
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let long = "a".repeat(254);
        assert_eq!(
            messages(Kind::ConfigMap, json!({"metadata": {"name": long}})).len(),
            1
        );
    }

    #[test]
    fn labels_and_annotations() {
        let m = messages(
            Kind::ConfigMap,
            json!({"metadata": {"name": "x", "labels": {"a/b/c": "v", "ok": "bad value"}, "annotations": {"-x": "1"}}}),
        );
        assert_eq!(m.len(), 3, "got {m:?}");
        let big = "v".repeat(ANNOTATIONS_LIMIT + 1);
        let m = messages(
            Kind::ConfigMap,
            json!({"metadata": {"name": "x", "annotations": {"k": big}}}),
        );
        assert_eq!(
            m,
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn endpoint_slice_rules() {
        let slice = |address_type: &str, address: &str, ports: Value| {
            json!({"metadata": {"name": "s"}, "addressType": address_type,
                   "endpoints": [{"addresses": [address]}], "ports": ports})
        };
        let tcp = json!([{"name": "http", "port": 80, "protocol": "TCP"}]);
        assert!(messages(Kind::EndpointSlice, slice("IPv4", "10.0.0.1", tcp.clone())).is_empty());
        assert!(messages(Kind::EndpointSlice, slice("IPv6", "fd00::1", tcp.clone())).is_empty());
        assert_eq!(
            messages(Kind::EndpointSlice, slice("IPv4", "fd00::1", tcp.clone())),
            vec!["endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"]
        );
        assert_eq!(
            messages(Kind::EndpointSlice, slice("IPv4", "127.0.0.1", tcp.clone())),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
            ]
        );
        assert_eq!(
            messages(Kind::EndpointSlice, slice("IPv5", "x", tcp.clone())),
            vec!["addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
        let ports = json!([{"name": "a", "port": 1, "protocol": "TCP"}, {"name": "a", "port": 2, "protocol": "ICMP"}]);
        assert_eq!(
            messages(Kind::EndpointSlice, slice("IPv4", "10.0.0.1", ports)),
            vec![
                "ports[1].name: Duplicate value: \"a\"",
                "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
        let empty =
            json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": []}]});
        assert_eq!(
            messages(Kind::EndpointSlice, empty),
            vec!["endpoints[0].addresses: Required value: must contain at least 1 address"]
        );
        let old = slice("IPv4", "10.0.0.1", tcp.clone());
        let new = slice("IPv6", "fd00::1", tcp);
        let m: Vec<String> = validate_update(Kind::EndpointSlice, &new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            m,
            vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
    }

    #[test]
    fn micro_time_layout_is_exact() {
        assert_eq!(micro_time_shape("2024-01-02T03:04:05.123456Z"), Ok(()));
        assert_eq!(micro_time_shape("2024-01-02T03:04:05.123456+02:00"), Ok(()));
        assert_eq!(micro_time_shape("2024-01-02T03:04:05Z"), Err(("Z", ".000000")));
        assert_eq!(
            micro_time_shape("2024-01-02T03:04:05.123Z"),
            Err((".123Z", ".000000"))
        );
        assert_eq!(
            micro_time_shape("2024-01-02T03:04:05.1234567Z"),
            Err((".1234567Z", ".000000"))
        );
        assert_eq!(micro_time_shape("garbage"), Err(("garbage", "2006")));
        let raw = json!({"spec": {"renewTime": "2024-01-02T03:04:05Z"}});
        let err = check_micro_times(Kind::Lease, &raw).unwrap_err();
        assert_eq!(
            err,
            "parsing time \"2024-01-02T03:04:05Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as \".000000\""
        );
    }
}
