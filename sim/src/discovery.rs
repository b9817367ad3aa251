//! API discovery, generated from the kind table ([`crate::resource::ALL`]): whatever kind the
//! simulator serves appears here with no further change.
//!
//! Served paths, in both forms the real API server offers:
//!
//! - aggregated (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`,
//!   what kubectl 1.30+ asks for first): `/api` (the core group) and `/apis` (every other group),
//!   each an `APIGroupDiscoveryList` with every version and resource;
//! - legacy (plain JSON, what older clients ask for and what a server without aggregated
//!   discovery answers): `/api` (`APIVersions`), `/apis` (`APIGroupList`), `/apis/{group}`
//!   (`APIGroup`), `/api/v1` and `/apis/{group}/{version}` (`APIResourceList`).
//!
//! Resources list only the verbs the simulator serves (no `deletecollection`) and no
//! subresources (none are served).

use serde_json::{Value, json};

use crate::negotiate::DiscoveryForm;
use crate::resource::{ALL, Kind};

/// A discovery path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// `/api`.
    Core,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/{version}` (group empty) or `/apis/{group}/{version}`.
    Resources {
        /// The API group; empty for the core group.
        group: String,
        /// The version, e.g. `v1`.
        version: String,
    },
}

/// The verbs every served kind answers, in the order the real server lists them.
pub const VERBS: [&str; 7] = ["create", "delete", "get", "list", "patch", "update", "watch"];

/// The short names `kubectl` resolves (`kubectl get cm`), as the real server declares them.
pub fn short_names(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::ConfigMap => &["cm"],
        Kind::Endpoints => &["ep"],
        Kind::Pod => &["po"],
        Kind::Event | Kind::EventV1 => &["ev"],
        _ => &[],
    }
}

/// The categories a kind belongs to (`kubectl get all`).
pub fn categories(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod => &["all"],
        _ => &[],
    }
}

/// `lease` for `Lease`: the singular resource name.
pub fn singular(kind: Kind) -> String {
    kind.info().kind.to_ascii_lowercase()
}

/// The API groups (core `""` first), each with its versions, in kind-table order.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for kind in ALL {
        let info = kind.info();
        match out.iter_mut().find(|(g, _)| *g == info.group) {
            Some((_, versions)) if !versions.contains(&info.version) => versions.push(info.version),
            Some(_) => {}
            None => out.push((info.group, vec![info.version])),
        }
    }
    out.sort_by_key(|(g, _)| !g.is_empty());
    out
}

fn kinds_in(group: &str, version: &str) -> impl Iterator<Item = Kind> {
    ALL.into_iter().filter(move |k| {
        let info = k.info();
        info.group == group && info.version == version
    })
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The discovery document at `path` in `form`, or `None` when nothing is served there (404).
/// `server_address` is the `host:port` clients reached (the legacy `/api` names it).
pub fn document(path: &Path, form: DiscoveryForm, server_address: &str) -> Option<Value> {
    match (path, form) {
        (Path::Core, DiscoveryForm::Aggregated) => Some(aggregated(true)),
        (Path::Groups, DiscoveryForm::Aggregated) => Some(aggregated(false)),
        (Path::Core, DiscoveryForm::Legacy) => {
            let versions: Vec<&str> = groups()
                .into_iter()
                .filter(|(g, _)| g.is_empty())
                .flat_map(|(_, v)| v)
                .collect();
            Some(json!({
                "kind": "APIVersions",
                "versions": versions,
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            }))
        }
        (Path::Groups, DiscoveryForm::Legacy) => {
            let groups: Vec<Value> = groups()
                .into_iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| api_group(g, &v))
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        // The per-group and per-version documents exist in the legacy form only.
        (Path::Group(_) | Path::Resources { .. }, DiscoveryForm::Aggregated) => None,
        (Path::Group(group), DiscoveryForm::Legacy) => {
            let (g, versions) = groups().into_iter().find(|(g, _)| !g.is_empty() && g == group)?;
            let mut doc = api_group(g, &versions);
            doc["kind"] = "APIGroup".into();
            doc["apiVersion"] = "v1".into();
            Some(doc)
        }
        (Path::Resources { group, version }, DiscoveryForm::Legacy) => {
            let resources: Vec<Value> = kinds_in(group, version).map(legacy_resource).collect();
            if resources.is_empty() {
                return None;
            }
            Some(json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version(group, version),
                "resources": resources,
            }))
        }
    }
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

fn legacy_resource(kind: Kind) -> Value {
    let info = kind.info();
    let mut r = json!({
        "name": info.plural,
        "singularName": singular(kind),
        "namespaced": true,
        "kind": info.kind,
        "verbs": VERBS,
    });
    if !short_names(kind).is_empty() {
        r["shortNames"] = json!(short_names(kind));
    }
    if !categories(kind).is_empty() {
        r["categories"] = json!(categories(kind));
    }
    r
}

fn aggregated_resource(kind: Kind) -> Value {
    let info = kind.info();
    let mut r = json!({
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced",
        "singularResource": singular(kind),
        "verbs": VERBS,
    });
    if !short_names(kind).is_empty() {
        r["shortNames"] = json!(short_names(kind));
    }
    if !categories(kind).is_empty() {
        r["categories"] = json!(categories(kind));
    }
    r
}

/// `APIGroupDiscoveryList` of the core group (`core`) or of every named group.
fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = kinds_in(g, v).map(aggregated_resource).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": g, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(doc: &Value) -> Vec<String> {
        doc["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["versions"].as_array().into_iter().flatten())
            .flat_map(|v| v["resources"].as_array().into_iter().flatten())
            .map(|r| {
                format!(
                    "{}/{}",
                    r["responseKind"]["group"].as_str().unwrap_or("?"),
                    r["resource"]
                )
            })
            .collect()
    }

    #[test]
    fn every_kind_of_the_table_is_discoverable_in_both_forms() {
        let core = document(&Path::Core, DiscoveryForm::Aggregated, "h:1").unwrap_or_default();
        let groups = document(&Path::Groups, DiscoveryForm::Aggregated, "h:1").unwrap_or_default();
        let mut found = resources(&core);
        found.extend(resources(&groups));
        for kind in ALL {
            let info = kind.info();
            assert!(
                found.contains(&format!("{}/\"{}\"", info.group, info.plural)),
                "{kind:?} missing from aggregated discovery: {found:?}"
            );
            let legacy = document(
                &Path::Resources {
                    group: info.group.into(),
                    version: info.version.into(),
                },
                DiscoveryForm::Legacy,
                "h:1",
            )
            .unwrap_or_default();
            let names: Vec<&str> = legacy["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["name"].as_str())
                .collect();
            assert!(
                names.contains(&info.plural),
                "{kind:?} missing from legacy discovery: {legacy}"
            );
        }
        assert_eq!(
            core["items"].as_array().map(Vec::len),
            Some(1),
            "one core group: {core}"
        );
    }

    #[test]
    fn legacy_documents_have_the_real_shapes() {
        let api = document(&Path::Core, DiscoveryForm::Legacy, "127.0.0.1:6443").unwrap_or_default();
        assert_eq!(api["kind"], "APIVersions");
        assert_eq!(api["versions"], json!(["v1"]));
        assert_eq!(
            api["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
        let apis = document(&Path::Groups, DiscoveryForm::Legacy, "").unwrap_or_default();
        let names: Vec<&str> = apis["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert!(names.contains(&"coordination.k8s.io"), "{apis}");
        assert!(!names.contains(&""), "the core group is not in /apis: {apis}");
        let group = document(
            &Path::Group("coordination.k8s.io".into()),
            DiscoveryForm::Legacy,
            "",
        )
        .unwrap_or_default();
        assert_eq!(
            group["preferredVersion"]["groupVersion"],
            "coordination.k8s.io/v1"
        );
        let cm = document(
            &Path::Resources {
                group: String::new(),
                version: "v1".into(),
            },
            DiscoveryForm::Legacy,
            "",
        )
        .unwrap_or_default();
        let configmaps = cm["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == "configmaps")
            .cloned()
            .unwrap_or_default();
        assert_eq!(configmaps["shortNames"], json!(["cm"]));
        assert_eq!(configmaps["namespaced"], true);
        assert_eq!(configmaps["singularName"], "configmap");
    }

    #[test]
    fn nothing_is_served_for_unknown_groups_and_versions() {
        for path in [
            Path::Group("apps".into()),
            Path::Group(String::new()),
            Path::Resources {
                group: String::new(),
                version: "v2".into(),
            },
            Path::Resources {
                group: "coordination.k8s.io".into(),
                version: "v1beta1".into(),
            },
        ] {
            assert_eq!(document(&path, DiscoveryForm::Legacy, ""), None, "{path:?}");
        }
    }
}
