//! Request routing: path → resource, namespace, name; method + query → verb.
//!
//! Served paths: `/api/v1/namespaces/{ns}/{plural}[/{name}]`,
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`, the all-namespaces collections
//! `/api/v1/{plural}` and `/apis/{group}/{version}/{plural}` (list and watch only), the admin API
//! under `/sim/`, discovery (`/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`),
//! and `/version`, `/healthz`, `/livez`, `/readyz`. Anything else is a 404 with a
//! `Status` body.

use std::collections::BTreeMap;

use hyper::Method;

use crate::discovery::Path as DiscoveryPath;
use crate::resource::Kind;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The admin API; the path below `/sim/`.
    Admin(String),
    /// A Kubernetes API resource.
    Api(Target),
    /// `/version`.
    Version,
    /// Discovery: `/api`, `/apis`, `/apis/{group}`, `/api/{version}`, `/apis/{group}/{version}`.
    Discovery(crate::discovery::Path),
    /// `/openapi/v3` (`None`) or `/openapi/v3/{group version path}`.
    OpenApi(Option<String>),
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// Nothing is served here.
    NotFound,
}

/// A resource request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// `None` for the all-namespaces collection.
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// The API verb of a request, as RBAC and accounting name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    /// A method the resource does not serve (answered 405).
    Unsupported,
}

impl Verb {
    /// The RBAC verb name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::Unsupported => "unsupported",
        }
    }
}

/// Parsed query parameters (last value wins).
pub type Query = BTreeMap<String, String>;

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes a query component (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string.
pub fn parse_query(q: Option<&str>) -> Query {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Whether a boolean query flag is set (`true` or `1`).
pub fn flag(q: &Query, name: &str) -> bool {
    q.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// Routes a path.
pub fn route(path: &str) -> Route {
    if let Some(rest) = path.strip_prefix("/sim/") {
        return Route::Admin(rest.to_owned());
    }
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz"] => return Route::Health,
        ["openapi", "v3"] => return Route::OpenApi(None),
        ["openapi", "v3", gv @ ..] => return Route::OpenApi(Some(gv.join("/"))),
        ["api"] => return Route::Discovery(DiscoveryPath::Core),
        ["apis"] => return Route::Discovery(DiscoveryPath::Groups),
        ["apis", group] => return Route::Discovery(DiscoveryPath::Group((*group).to_owned())),
        ["api", version] => {
            return Route::Discovery(DiscoveryPath::Resources {
                group: String::new(),
                version: (*version).to_owned(),
            });
        }
        ["apis", group, version] => {
            return Route::Discovery(DiscoveryPath::Resources {
                group: (*group).to_owned(),
                version: (*version).to_owned(),
            });
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        _ => return Route::NotFound,
    };
    match Kind::from_path(group, version, plural) {
        Some(kind) if namespace.is_none_or(|n| !n.is_empty()) && name.is_none_or(|n| !n.is_empty()) => {
            Route::Api(Target {
                kind,
                namespace: namespace.map(str::to_owned),
                name: name.map(str::to_owned),
            })
        }
        _ => Route::NotFound,
    }
}

/// The verb for a method on a target.
pub fn verb(method: &Method, target: &Target, query: &Query) -> Verb {
    let named = target.name.is_some();
    let namespaced = target.namespace.is_some();
    match (method.as_str(), named) {
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) if flag(query, "watch") => Verb::Watch,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", false) if namespaced => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        _ => Verb::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/apis/coordination.k8s.io/v1/namespaces/default/leases/lock"),
            Route::Api(Target {
                kind: Kind::Lease,
                namespace: Some("default".into()),
                name: Some("lock".into())
            })
        );
        assert_eq!(
            route("/api/v1/configmaps"),
            Route::Api(Target {
                kind: Kind::ConfigMap,
                namespace: None,
                name: None
            })
        );
        assert_eq!(route("/api/v1/namespaces/default/secrets"), Route::NotFound);
        assert_eq!(route("/api/v1/namespaces/default/pods/p/status"), Route::NotFound);
        assert_eq!(route("/sim/faults/a"), Route::Admin("faults/a".into()));
        assert_eq!(route("/"), Route::NotFound);
        assert_eq!(route("/api"), Route::Discovery(DiscoveryPath::Core));
        assert_eq!(route("/apis/"), Route::Discovery(DiscoveryPath::Groups));
        assert_eq!(
            route("/apis/coordination.k8s.io/v1"),
            Route::Discovery(DiscoveryPath::Resources {
                group: "coordination.k8s.io".into(),
                version: "v1".into()
            })
        );
    }

    #[test]
    fn queries_and_verbs() {
        let q = parse_query(Some(
            "watch=1&fieldSelector=metadata.name%3Dlock&labelSelector=a+b",
        ));
        assert_eq!(q["fieldSelector"], "metadata.name=lock");
        assert_eq!(q["labelSelector"], "a b");
        let t = Target {
            kind: Kind::Lease,
            namespace: Some("default".into()),
            name: None,
        };
        assert_eq!(verb(&Method::GET, &t, &q), Verb::Watch);
        assert_eq!(verb(&Method::GET, &t, &Query::new()), Verb::List);
        assert_eq!(verb(&Method::PUT, &t, &Query::new()), Verb::Unsupported);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
