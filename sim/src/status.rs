//! `Status` bodies and the exact error messages of the real API server.
//!
//! Every failure the simulator answers with is an [`ApiError`]: an HTTP code, a `reason` and a
//! message worded as `k8s.io/apimachinery/pkg/api/errors` words it, plus the `details` (name,
//! group, kind, causes) that server fills in. [`ApiError::to_status`] renders it through
//! `k8s_openapi`'s `Status` type so clients decode it exactly as they would a real one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusCause, StatusDetails};

use crate::resource::Kind;

/// One field error, as `k8s.io/apimachinery/pkg/util/validation/field.Error` renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, `FieldValueTooLong`, ...
    pub reason: &'static str,
    /// The field path, e.g. `spec.leaseDurationSeconds`.
    pub field: String,
    /// The body without the field: `Invalid value: 0: must be greater than 0`.
    pub body: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`; `value` is already rendered the Go way (`0`, `"x"`).
    pub fn invalid(field: impl Into<String>, value: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            body: format!("Invalid value: {}: {}", value.into(), detail.as_ref()),
        }
    }

    /// `Required value: <detail>`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let body = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            body,
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            body: format!("Forbidden: {detail}"),
        }
    }

    /// `Duplicate value: <value>`; `value` is already rendered the Go way.
    pub fn duplicate(field: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            field: field.into(),
            body: format!("Duplicate value: {}", value.into()),
        }
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            body: format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
        }
    }

    /// `Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            reason: "FieldValueTooMany",
            field: field.into(),
            body: format!("Too many: {actual}: must have at most {max} items"),
        }
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.into(),
            body: format!("Too long: may not be more than {max} bytes"),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

/// Go's `%q` for a string: double quotes with escapes.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// An API failure, rendered as a `Status` body with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Details>>,
    /// Seconds for `Retry-After` (429/503 faults).
    pub retry_after: Option<u32>,
}

/// `StatusDetails` as the real server fills it.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub uid: Option<String>,
    pub causes: Vec<FieldError>,
    pub retry_after_seconds: Option<i32>,
}

fn resource_details(kind: Kind, name: &str) -> Details {
    let info = kind.info();
    Details {
        name: (!name.is_empty()).then(|| name.to_owned()),
        group: (!info.group.is_empty()).then(|| info.group.to_owned()),
        kind: Some(info.plural.to_owned()),
        ..Details::default()
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 `leases.coordination.k8s.io "x" not found`.
    pub fn not_found(kind: Kind, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} {} not found", kind.qualified(), quote(name)),
        );
        e.details = Some(Box::new(resource_details(kind, name)));
        e
    }

    /// 404 `namespaces "x" not found`.
    pub fn namespace_not_found(ns: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("namespaces {} not found", quote(ns)));
        e.details = Some(Box::new(Details {
            name: Some(ns.to_owned()),
            kind: Some("namespaces".into()),
            ..Details::default()
        }));
        e
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(Box::default());
        e
    }

    /// 409 `leases.coordination.k8s.io "x" already exists`.
    pub fn already_exists(kind: Kind, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} {} already exists", kind.qualified(), quote(name)),
        );
        e.details = Some(Box::new(resource_details(kind, name)));
        e
    }

    /// 409 Conflict with the optimistic-lock message.
    pub fn conflict_modified(kind: Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Operation cannot be fulfilled on <qualified> "<name>": <why>`.
    pub fn conflict(kind: Kind, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {}: {why}",
                kind.qualified(),
                quote(name)
            ),
        );
        e.details = Some(Box::new(resource_details(kind, name)));
        e
    }

    /// 422 `Lease.coordination.k8s.io "x" is invalid: ...`, one cause per field error.
    pub fn invalid(kind: Kind, name: &str, errors: Vec<FieldError>) -> Self {
        let info = kind.info();
        let qualified_kind = if info.group.is_empty() {
            info.kind.to_owned()
        } else {
            format!("{}.{}", info.kind, info.group)
        };
        Self::invalid_qualified(&qualified_kind, info.group, info.kind, name, errors)
    }

    /// 422 for a group/kind string the caller spells (the update-without-resourceVersion case
    /// names the resource, not the kind, exactly as the real server does).
    pub fn invalid_qualified(
        qualified_kind: &str,
        group: &str,
        kind: &str,
        name: &str,
        errors: Vec<FieldError>,
    ) -> Self {
        let aggregate = match errors.as_slice() {
            [] => String::new(),
            [one] => format!(": {one}"),
            many => format!(
                ": [{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} {} is invalid{aggregate}", quote(name)),
        );
        e.details = Some(Box::new(Details {
            name: Some(name.to_owned()),
            group: (!group.is_empty()).then(|| group.to_owned()),
            kind: Some(kind.to_owned()),
            causes: errors,
            ..Details::default()
        }));
        e
    }

    /// 403 with the RBAC wording.
    pub fn forbidden(kind: Kind, name: &str, user: &str, verb: &str, namespace: Option<&str>) -> Self {
        let info = kind.info();
        let subject = if name.is_empty() {
            kind.qualified()
        } else {
            format!("{} {}", kind.qualified(), quote(name))
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace {}", quote(ns)),
            None => "at the cluster scope".to_owned(),
        };
        let mut e = Self::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User {} cannot {verb} resource {} in API group {} {scope}",
                quote(user),
                quote(info.plural),
                quote(info.group)
            ),
        );
        e.details = Some(Box::new(resource_details(kind, name)));
        e
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 400 BadRequest with a free message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 for a patch that cannot be applied.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 405 for a verb the resource does not serve.
    pub fn method_not_allowed() -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details = Some(Box::default());
        e
    }

    /// 413 over the 3 MiB request body limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 naming the media types that are accepted.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 406 for an `Accept` header naming no form this server answers.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 410 Expired, sent inside a watch `ERROR` event.
    pub fn expired(message: String) -> Self {
        Self::new(410, "Expired", message)
    }

    /// An injected failure: 429 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, or any
    /// other code with the reason the real server maps it to.
    pub fn injected(code: u16, retry_after: Option<u32>) -> Self {
        let (reason, message): (&'static str, &str) = match code {
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => ("InternalError", "Internal error occurred: injected fault"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            409 => ("Conflict", "the server reported a conflict"),
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden"),
            404 => ("NotFound", "the server could not find the requested resource"),
            400 => (
                "BadRequest",
                "the server rejected our request for an unknown reason",
            ),
            _ => (
                "",
                "an error on the server has prevented the request from succeeding",
            ),
        };
        let mut e = Self::new(code, reason, message);
        if let Some(secs) = retry_after {
            e.retry_after = Some(secs);
            e.details = Some(Box::new(Details {
                retry_after_seconds: i32::try_from(secs).ok(),
                ..Details::default()
            }));
        }
        e
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code)),
            details: self.details.as_ref().map(|d| StatusDetails {
                causes: (!d.causes.is_empty()).then(|| {
                    d.causes
                        .iter()
                        .map(|c| StatusCause {
                            field: Some(c.field.clone()),
                            message: Some(c.body.clone()),
                            reason: Some(c.reason.to_owned()),
                        })
                        .collect()
                }),
                group: d.group.clone(),
                kind: d.kind.clone(),
                name: d.name.clone(),
                retry_after_seconds: d.retry_after_seconds,
                uid: d.uid.clone(),
            }),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: (!self.reason.is_empty()).then(|| self.reason.to_owned()),
            status: Some("Failure".to_owned()),
        }
    }

    /// The `Status` as JSON, with `kind` and `apiVersion`.
    pub fn to_json(&self) -> serde_json::Value {
        status_json(&self.to_status())
    }
}

/// Serialises a `Status` with its type meta (`kind: Status`, `apiVersion: v1`).
pub fn status_json(status: &Status) -> serde_json::Value {
    let mut v = serde_json::to_value(status).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = v.as_object_mut() {
        map.insert("kind".into(), "Status".into());
        map.insert("apiVersion".into(), "v1".into());
    }
    v
}

/// The `Status` a successful DELETE returns for types that do not return the deleted object.
pub fn delete_success(kind: Kind, name: &str, uid: Option<String>) -> serde_json::Value {
    let mut d = resource_details(kind, name);
    d.uid = uid;
    let status = Status {
        details: Some(StatusDetails {
            group: d.group,
            kind: d.kind,
            name: d.name,
            uid: d.uid,
            ..StatusDetails::default()
        }),
        status: Some("Success".to_owned()),
        ..Status::default()
    };
    status_json(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_matches_the_real_server() {
        let e = ApiError::conflict_modified(Kind::Lease, "lock");
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let s = e.to_json();
        assert_eq!(s["details"]["group"], "coordination.k8s.io");
        assert_eq!(s["details"]["kind"], "leases");
        assert_eq!(s["kind"], "Status");
    }

    #[test]
    fn invalid_message_aggregates_causes() {
        let one = ApiError::invalid(
            Kind::Lease,
            "x",
            vec![FieldError::invalid(
                "spec.leaseDurationSeconds",
                "0",
                "must be greater than 0",
            )],
        );
        assert_eq!(
            one.message,
            "Lease.coordination.k8s.io \"x\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let two = ApiError::invalid(
            Kind::ConfigMap,
            "x",
            vec![FieldError::required("a", ""), FieldError::required("b", "why")],
        );
        assert_eq!(
            two.message,
            "ConfigMap \"x\" is invalid: [a: Required value, b: Required value: why]"
        );
        assert_eq!(
            two.to_json()["details"]["causes"][1]["reason"],
            "FieldValueRequired"
        );
    }

    #[test]
    fn forbidden_message_matches_rbac_wording() {
        let e = ApiError::forbidden(
            Kind::Lease,
            "x",
            "system:serviceaccount:default:a",
            "update",
            Some("default"),
        );
        assert_eq!(
            e.message,
            "leases.coordination.k8s.io \"x\" is forbidden: User \"system:serviceaccount:default:a\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
        );
        let core = ApiError::forbidden(Kind::ConfigMap, "", "u", "list", Some("default"));
        assert_eq!(
            core.message,
            "configmaps is forbidden: User \"u\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
    }
}
