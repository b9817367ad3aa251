//! Content negotiation: which of the forms the simulator serves a request's `Accept` header asks
//! for.
//!
//! The simulator answers JSON only. The real API server also answers protobuf and CBOR, but every
//! client built on client-go (kubectl included) lists `application/json` after its preferred
//! type, so answering JSON is what the real server's negotiation would also pick when protobuf is
//! unavailable. Besides plain JSON, two `as=` forms are served: `APIGroupDiscoveryList`
//! (`apidiscovery.k8s.io/v2`, aggregated discovery), `Table` (`meta.k8s.io/v1`, the server-side
//! printing `kubectl get` asks for) and `PartialObjectMetadata[List]` (metadata-only clients). An `Accept` naming none of these is answered 406, as the
//! real server answers a media type it does not serve.

use std::collections::BTreeMap;

/// One entry of an `Accept` header: `type/subtype` and its parameters (lower-cased keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// `application/json`, `*/*`, ...
    pub essence: String,
    /// `as`, `g`, `v`, `stream`, ...
    pub params: BTreeMap<String, String>,
}

impl MediaRange {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// Whether this entry admits JSON (`application/json`, `application/*`, `*/*`).
    fn admits_json(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }

    /// JSON in the form `as`/`g`/`v` (`as` empty: the plain object).
    fn is(&self, as_kind: &str, group: &str, version: &str) -> bool {
        self.admits_json()
            && self.param("as") == as_kind
            && (as_kind.is_empty() || (self.param("g") == group && self.param("v") == version))
    }
}

/// Parses an `Accept` header (quality values are ignored: clients list types in preference order,
/// as client-go does).
pub fn parse_accept(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';');
            let essence = parts.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_owned(),
                    ))
                })
                .collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

/// The form of a discovery answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryForm {
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`: every group, version and resource at once.
    Aggregated,
    /// `APIVersions` / `APIGroupList` / `APIResourceList`, one request per group version.
    Legacy,
}

/// The content type of an aggregated discovery answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The content type of a `PartialObjectMetadata` answer.
pub const METADATA_CONTENT_TYPE: &str = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io";

/// The content type of a `PartialObjectMetadataList` answer.
pub const METADATA_LIST_CONTENT_TYPE: &str =
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";

/// The content type of a `Table` answer.
pub const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// What a discovery request gets: the first entry of `accept` that is served; no header at all
/// means plain JSON. `None`: nothing acceptable (406).
pub fn discovery_form(accept: Option<&str>) -> Option<DiscoveryForm> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(DiscoveryForm::Legacy);
    };
    parse_accept(accept).iter().find_map(|m| {
        if m.is("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2") {
            Some(DiscoveryForm::Aggregated)
        } else if m.is("", "", "") {
            Some(DiscoveryForm::Legacy)
        } else {
            None
        }
    })
}

/// The form of a get, list or watch answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectForm {
    /// The object or list itself.
    Object,
    /// A `meta.k8s.io/v1` `Table` of it.
    Table,
    /// `meta.k8s.io/v1` `PartialObjectMetadata` (or `PartialObjectMetadataList`): metadata only.
    Metadata,
}

/// What a get, list or watch gets: the first entry of `accept` that is served; no header means
/// the object. `None`: nothing acceptable (406).
pub fn object_form(accept: Option<&str>) -> Option<ObjectForm> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(ObjectForm::Object);
    };
    parse_accept(accept).iter().find_map(|m| {
        if m.is("Table", "meta.k8s.io", "v1") {
            Some(ObjectForm::Table)
        } else if m.is("PartialObjectMetadata", "meta.k8s.io", "v1")
            || m.is("PartialObjectMetadataList", "meta.k8s.io", "v1")
        {
            Some(ObjectForm::Metadata)
        } else if m.is("", "", "") {
            Some(ObjectForm::Object)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_DISCOVERY: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const KUBECTL_GET: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    #[test]
    fn discovery_follows_the_clients_order() {
        assert_eq!(
            discovery_form(Some(KUBECTL_DISCOVERY)),
            Some(DiscoveryForm::Aggregated)
        );
        assert_eq!(
            discovery_form(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            )),
            Some(DiscoveryForm::Legacy),
            "v2beta1 is not served: the plain list is"
        );
        assert_eq!(discovery_form(None), Some(DiscoveryForm::Legacy));
        assert_eq!(discovery_form(Some("*/*")), Some(DiscoveryForm::Legacy));
        assert_eq!(discovery_form(Some("application/vnd.kubernetes.protobuf")), None);
    }

    #[test]
    fn objects_as_tables_when_asked() {
        assert_eq!(object_form(Some(KUBECTL_GET)), Some(ObjectForm::Table));
        assert_eq!(
            object_form(Some("application/vnd.kubernetes.protobuf,application/json")),
            Some(ObjectForm::Object)
        );
        assert_eq!(
            object_form(Some("application/json;stream=watch")),
            Some(ObjectForm::Object)
        );
        assert_eq!(
            object_form(Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io")),
            None
        );
        assert_eq!(
            object_form(Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
            )),
            Some(ObjectForm::Metadata)
        );
        assert_eq!(
            object_form(Some(
                "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"
            )),
            None,
            "discovery's form is not an object's"
        );
        assert_eq!(object_form(Some("")), Some(ObjectForm::Object));
    }
}
