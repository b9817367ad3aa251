//! The resource types the simulator serves and their per-type rules.
//!
//! One [`Kind`] per served resource (Leases, ConfigMaps, Endpoints, Pods, core and
//! `events.k8s.io` Events, `discovery.k8s.io` EndpointSlices), with the facts the real registry keeps per type: group, version,
//! plural, kind, whether PUT may create (`AllowCreateOnUpdate`), whether PUT may omit
//! `metadata.resourceVersion` (`AllowUnconditionalUpdate`), the field selectors it accepts, and the
//! strict decode through the `k8s_openapi` type that gives stored objects their exact shape.

use serde_json::Value;

/// A served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Lease,
    ConfigMap,
    Endpoints,
    Pod,
    /// Core v1 `Event` (`/api/v1/.../events`).
    Event,
    /// `events.k8s.io/v1` `Event`.
    EventV1,
    /// `discovery.k8s.io/v1` `EndpointSlice`.
    EndpointSlice,
}

/// Static facts about a [`Kind`].
#[derive(Debug, Clone, Copy)]
pub struct Info {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// `AllowCreateOnUpdate` of the real registry strategy.
    pub create_on_update: bool,
    /// `AllowUnconditionalUpdate` of the real registry strategy.
    pub unconditional_update: bool,
}

/// Every served kind.
pub const ALL: [Kind; 7] = [
    Kind::Lease,
    Kind::ConfigMap,
    Kind::Endpoints,
    Kind::Pod,
    Kind::Event,
    Kind::EventV1,
    Kind::EndpointSlice,
];

impl Kind {
    /// The static facts of this kind.
    pub const fn info(self) -> Info {
        const fn i(
            group: &'static str,
            plural: &'static str,
            kind: &'static str,
            list_kind: &'static str,
            create_on_update: bool,
            unconditional_update: bool,
        ) -> Info {
            Info {
                group,
                version: "v1",
                plural,
                kind,
                list_kind,
                create_on_update,
                unconditional_update,
            }
        }
        match self {
            Kind::Lease => i("coordination.k8s.io", "leases", "Lease", "LeaseList", true, false),
            Kind::ConfigMap => i("", "configmaps", "ConfigMap", "ConfigMapList", false, true),
            Kind::Endpoints => i("", "endpoints", "Endpoints", "EndpointsList", true, true),
            Kind::Pod => i("", "pods", "Pod", "PodList", false, true),
            Kind::Event => i("", "events", "Event", "EventList", true, true),
            Kind::EventV1 => i("events.k8s.io", "events", "Event", "EventList", true, true),
            // pkg/registry/discovery/endpointslice/strategy.go: no create on update,
            // unconditional update allowed.
            Kind::EndpointSlice => i(
                "discovery.k8s.io",
                "endpointslices",
                "EndpointSlice",
                "EndpointSliceList",
                false,
                true,
            ),
        }
    }

    /// `apiVersion` of this kind: `v1` or `group/v1`.
    pub fn api_version(self) -> String {
        let info = self.info();
        if info.group.is_empty() {
            info.version.to_owned()
        } else {
            format!("{}/{}", info.group, info.version)
        }
    }

    /// `leases.coordination.k8s.io` or `configmaps`: the resource as error messages name it.
    pub fn qualified(self) -> String {
        let info = self.info();
        if info.group.is_empty() {
            info.plural.to_owned()
        } else {
            format!("{}.{}", info.plural, info.group)
        }
    }

    /// Finds the kind served at `group`/`version`/`plural`.
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| {
            let i = k.info();
            i.group == group && i.version == version && i.plural == plural
        })
    }

    /// Strictly decodes `value` through the `k8s_openapi` type and re-encodes it, so that the
    /// stored object has exactly the fields (and time formats) the real type has. Unknown fields
    /// are dropped, as the real server does without `fieldValidation=Strict`.
    pub fn normalize(self, value: Value) -> Result<Value, serde_json::Error> {
        use k8s_openapi::api;
        fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(
            v: Value,
        ) -> Result<Value, serde_json::Error> {
            let typed: T = serde_json::from_value(v)?;
            serde_json::to_value(typed)
        }
        match self {
            Kind::Lease => rt::<api::coordination::v1::Lease>(value),
            Kind::ConfigMap => rt::<api::core::v1::ConfigMap>(value),
            Kind::Endpoints => rt::<api::core::v1::Endpoints>(value),
            Kind::Pod => rt::<api::core::v1::Pod>(value),
            Kind::Event => rt::<api::core::v1::Event>(value),
            Kind::EventV1 => rt::<api::events::v1::Event>(value),
            Kind::EndpointSlice => rt::<api::discovery::v1::EndpointSlice>(value).map(default_endpoint_slice),
        }
    }

    /// Paths (JSON pointers) of `MicroTime` fields, which the real server parses with the exact
    /// layout `2006-01-02T15:04:05.000000Z07:00`.
    pub fn micro_time_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Lease => &["/spec/acquireTime", "/spec/renewTime"],
            Kind::Event | Kind::EventV1 => &["/eventTime"],
            _ => &[],
        }
    }

    /// The value of a selectable field, or `Err` with the real server's message when the field is
    /// not selectable for this kind.
    pub fn field_value(self, obj: &Value, label: &str) -> Result<Option<String>, String> {
        let s = |ptr: &str| obj.pointer(ptr).map(value_to_selector_string);
        match label {
            "metadata.name" => return Ok(s("/metadata/name")),
            "metadata.namespace" => return Ok(s("/metadata/namespace")),
            _ => {}
        }
        let pointer = match (self, label) {
            (Kind::Pod, "spec.nodeName") => "/spec/nodeName",
            (Kind::Pod, "spec.restartPolicy") => "/spec/restartPolicy",
            (Kind::Pod, "spec.schedulerName") => "/spec/schedulerName",
            (Kind::Pod, "spec.serviceAccountName") => "/spec/serviceAccountName",
            (Kind::Pod, "spec.hostNetwork") => "/spec/hostNetwork",
            (Kind::Pod, "status.phase") => "/status/phase",
            (Kind::Pod, "status.podIP") => "/status/podIP",
            (Kind::Pod, "status.nominatedNodeName") => "/status/nominatedNodeName",
            (Kind::Event | Kind::EventV1, "involvedObject.kind") => "/involvedObject/kind",
            (Kind::Event | Kind::EventV1, "involvedObject.namespace") => "/involvedObject/namespace",
            (Kind::Event | Kind::EventV1, "involvedObject.name") => "/involvedObject/name",
            (Kind::Event | Kind::EventV1, "involvedObject.uid") => "/involvedObject/uid",
            (Kind::Event | Kind::EventV1, "involvedObject.apiVersion") => "/involvedObject/apiVersion",
            (Kind::Event | Kind::EventV1, "involvedObject.resourceVersion") => {
                "/involvedObject/resourceVersion"
            }
            (Kind::Event | Kind::EventV1, "involvedObject.fieldPath") => "/involvedObject/fieldPath",
            (Kind::Event | Kind::EventV1, "reason") => "/reason",
            (Kind::Event | Kind::EventV1, "reportingComponent") => "/reportingComponent",
            (Kind::Event | Kind::EventV1, "source") => "/source/component",
            (Kind::Event | Kind::EventV1, "type") => "/type",
            (Kind::Pod | Kind::Event | Kind::EventV1, _) => {
                return Err(format!("field label not supported: {label}"));
            }
            _ => {
                return Err(format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    crate::status::quote(label)
                ));
            }
        };
        // The events.k8s.io view names the involved object `regarding`.
        let pointer = if self == Kind::EventV1 {
            pointer.replace("/involvedObject/", "/regarding/")
        } else {
            pointer.to_owned()
        };
        Ok(Some(s(&pointer).unwrap_or_default()))
    }
}

/// `SetDefaults_EndpointPort` of `discovery/v1`: a port without a name gets `""`, without a
/// protocol `TCP`.
fn default_endpoint_slice(mut slice: Value) -> Value {
    if let Some(ports) = slice.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("name").or_insert_with(|| Value::from(""));
            port.entry("protocol").or_insert_with(|| Value::from("TCP"));
        }
    }
    slice
}

fn value_to_selector_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert_eq!(Kind::Lease.qualified(), "leases.coordination.k8s.io");
        assert_eq!(Kind::ConfigMap.qualified(), "configmaps");
        assert_eq!(Kind::EventV1.api_version(), "events.k8s.io/v1");
        assert_eq!(
            Kind::from_path("coordination.k8s.io", "v1", "leases"),
            Some(Kind::Lease)
        );
        assert_eq!(Kind::from_path("", "v1", "leases"), None);
        assert_eq!(
            Kind::from_path("discovery.k8s.io", "v1", "endpointslices"),
            Some(Kind::EndpointSlice)
        );
        assert_eq!(Kind::EndpointSlice.api_version(), "discovery.k8s.io/v1");
    }

    #[test]
    fn endpoint_slice_strategy_and_port_defaults() {
        let info = Kind::EndpointSlice.info();
        assert!(
            !info.create_on_update,
            "the real strategy refuses create on update"
        );
        assert!(
            info.unconditional_update,
            "the real strategy allows an update without resourceVersion"
        );
        let stored = Kind::EndpointSlice
            .normalize(serde_json::json!({
                "metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [],
                "ports": [{"port": 80}, {"name": "x", "port": 81, "protocol": "UDP"}]
            }))
            .unwrap();
        assert_eq!(
            stored["ports"],
            serde_json::json!([{"name": "", "port": 80, "protocol": "TCP"}, {"name": "x", "port": 81, "protocol": "UDP"}])
        );
    }

    #[test]
    fn field_selector_errors_follow_the_type() {
        let obj = serde_json::json!({"metadata": {"name": "x"}});
        assert_eq!(
            Kind::Lease.field_value(&obj, "metadata.name"),
            Ok(Some("x".into()))
        );
        assert_eq!(
            Kind::Lease.field_value(&obj, "spec.holderIdentity"),
            Err("\"spec.holderIdentity\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
        );
        assert_eq!(
            Kind::Pod.field_value(&obj, "spec.foo"),
            Err("field label not supported: spec.foo".into())
        );
    }
}
