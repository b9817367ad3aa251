//! Field and label selectors for list and watch.
//!
//! Field selectors: `=`, `==`, `!=` on the fields each type makes selectable (every type:
//! `metadata.name`, `metadata.namespace`; Pods and Events a few more); an unknown field is a
//! 400 with the type's own message. Label selectors: equality (`k=v`, `k==v`), inequality
//! (`k!=v`) and existence (`k`, `!k`); set-based terms (`in`, `notin`) are not supported and
//! answered with 400.

use serde_json::Value;

use crate::resource::Kind;
use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    key: String,
    op: Op,
    value: String,
}

/// A parsed pair of selectors; the default selects everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    fields: Vec<Term>,
    labels: Vec<Term>,
}

fn split_eq(term: &str) -> Option<(String, Op, String)> {
    let (k, op, v) = if let Some((k, v)) = term.split_once("!=") {
        (k, Op::NotEq, v)
    } else if let Some((k, v)) = term.split_once("==") {
        (k, Op::Eq, v)
    } else if let Some((k, v)) = term.split_once('=') {
        (k, Op::Eq, v)
    } else {
        return None;
    };
    Some((k.trim().to_owned(), op, v.trim().to_owned()))
}

impl Selector {
    /// Parses `fieldSelector` and `labelSelector` for `kind`.
    pub fn parse(kind: Kind, field: Option<&str>, label: Option<&str>) -> Result<Self, ApiError> {
        let mut sel = Selector::default();
        for term in field
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let Some((key, op, value)) = split_eq(term) else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            kind.field_value(&Value::Null, &key)
                .map_err(ApiError::bad_request)?;
            sel.fields.push(Term { key, op, value });
        }
        for term in label
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let bad = || {
                ApiError::bad_request(format!(
                    "unable to parse requirement: {term:?}: only k=v, k==v, k!=v, k and !k are supported"
                ))
            };
            let t = if let Some((key, op, value)) = split_eq(term) {
                Term { key, op, value }
            } else if let Some(key) = term.strip_prefix('!') {
                Term {
                    key: key.trim().to_owned(),
                    op: Op::NotExists,
                    value: String::new(),
                }
            } else {
                Term {
                    key: term.to_owned(),
                    op: Op::Exists,
                    value: String::new(),
                }
            };
            let key_ok = !t.key.is_empty() && crate::validation::qualified_name(&t.key).is_empty();
            let value_ok = !t
                .value
                .contains(|c: char| c.is_whitespace() || "()!=".contains(c));
            if !key_ok || !value_ok {
                return Err(bad());
            }
            sel.labels.push(t);
        }
        Ok(sel)
    }

    /// Whether the object matches both selectors.
    pub fn matches(&self, kind: Kind, obj: &Value) -> bool {
        let fields_ok = self.fields.iter().all(|t| {
            let v = kind.field_value(obj, &t.key).ok().flatten().unwrap_or_default();
            match t.op {
                Op::Eq => v == t.value,
                _ => v != t.value,
            }
        });
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        fields_ok
            && self.labels.iter().all(|t| match t.op {
                Op::Eq => label(&t.key) == Some(t.value.as_str()),
                Op::NotEq => label(&t.key) != Some(t.value.as_str()),
                Op::Exists => label(&t.key).is_some(),
                Op::NotExists => label(&t.key).is_none(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_and_label_matching() {
        let obj = json!({"metadata": {"name": "lock", "namespace": "default", "labels": {"app": "x"}}});
        let m = |f: &str, l: &str| {
            Selector::parse(Kind::Lease, Some(f), Some(l))
                .unwrap()
                .matches(Kind::Lease, &obj)
        };
        assert!(m("metadata.name=lock", ""));
        assert!(m("metadata.name==lock,metadata.namespace=default", "app=x"));
        assert!(!m("metadata.name!=lock", ""));
        assert!(m("", "app"));
        assert!(!m("", "!app"));
        assert!(m("", "app!=y,!other"));
        assert!(!m("", "app=y"));
    }

    #[test]
    fn unsupported_selectors_are_400() {
        let e = Selector::parse(Kind::Lease, Some("spec.holderIdentity=a"), None).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message.contains("is not a known field selector"),
            "got {}",
            e.message
        );
        let e = Selector::parse(Kind::Pod, Some("spec.x=a"), None).unwrap_err();
        assert_eq!(e.message, "field label not supported: spec.x");
        assert_eq!(
            Selector::parse(Kind::Lease, None, Some("app in (a,b)"))
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            Selector::parse(Kind::Lease, Some("garbage"), None)
                .unwrap_err()
                .code,
            400
        );
    }
}
