//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`): what happens to fields
//! of a create, update or patch body that the type does not have.
//!
//! As on the real server (1.27+): `Strict` fails the request with 400
//! `... cannot be handled as a Lease: strict decoding error: unknown field "spec.foo"`; `Warn`
//! (the default when the parameter is absent) drops the fields and answers one
//! `Warning: 299 - "unknown field \"spec.foo\""` header per field; `Ignore` drops them silently.
//! Unknown fields are found by comparing the body with its strict decode through the
//! `k8s_openapi` type: whatever the typed round trip lost (null values aside) was unknown.

use serde_json::Value;

use crate::router::Query;
use crate::status::ApiError;

/// The `fieldValidation` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Unknown fields fail the request.
    Strict,
    /// Unknown fields are dropped with a warning (the default).
    Warn,
    /// Unknown fields are dropped.
    Ignore,
}

impl Directive {
    /// From the query; an unknown value is the real server's 400.
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => Ok(Directive::Warn),
            Some("Strict") => Ok(Directive::Strict),
            Some("Ignore") => Ok(Directive::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {}: supported values: \"Ignore\", \"Strict\", \"Warn\"",
                crate::status::quote(other)
            ))),
        }
    }
}

/// Paths (`spec.foo`, `spec.containers[0].bar`) present in `raw` but not in `decoded`.
pub fn unknown_fields(raw: &Value, decoded: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(raw, decoded, "", &mut out);
    out
}

fn walk(raw: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (raw, decoded) {
        (Value::Object(r), Value::Object(d)) => {
            for (k, v) in r {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    Some(dv) => walk(v, dv, &p, out),
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(r), Value::Array(d)) => {
            for (i, (rv, dv)) in r.iter().zip(d).enumerate() {
                walk(rv, dv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The `Warning` header value for an unknown field.
pub fn warning(field: &str) -> String {
    format!(
        "299 - {}",
        crate::status::quote(&format!("unknown field {}", crate::status::quote(field)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_the_type_lost_are_unknown_nulls_are_not() {
        let raw = json!({"metadata": {"name": "x", "creationTimestamp": null, "bogus": 1},
                         "spec": {"containers": [{"name": "c", "extra": true}]}, "top": "t"});
        let decoded = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            unknown_fields(&raw, &decoded),
            ["metadata.bogus", "spec.containers[0].extra", "top"]
        );
        assert_eq!(warning("spec.foo"), r#"299 - "unknown field \"spec.foo\"""#);
    }

    #[test]
    fn directives() {
        let q = |v: &str| Query::from([("fieldValidation".to_owned(), v.to_owned())]);
        assert_eq!(Directive::from_query(&Query::new()).ok(), Some(Directive::Warn));
        assert_eq!(Directive::from_query(&q("Strict")).ok(), Some(Directive::Strict));
        assert_eq!(Directive::from_query(&q("Ignore")).ok(), Some(Directive::Ignore));
        let e = Directive::from_query(&q("strict")).err().map(|e| e.code);
        assert_eq!(e, Some(400));
    }
}
