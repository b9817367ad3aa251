//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch, and JSON patch (RFC 6902).
//!
//! For the fields of the served types that leader election touches (metadata labels and
//! annotations, Lease spec, ConfigMap data), a strategic merge patch behaves as a merge patch;
//! the `$patch: replace|delete` directives on maps are honoured and other `$` directives are
//! ignored. List merge keys (e.g. Pod containers by name) are not implemented: lists are replaced.
//! Server-side apply (`application/apply-patch+yaml`) is not offered, so it gets 415.

use serde_json::Value;

/// The patch types this server accepts, as the 415 message lists them.
pub const ACCEPTED: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// A patch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    /// From a Content-Type (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("error decoding patch: {0}")]
    Decode(String),
    #[error("{0}")]
    Apply(String),
}

/// Applies `patch` to `target`.
pub fn apply(kind: PatchType, target: &Value, patch: &[u8]) -> Result<Value, Error> {
    let p: Value = serde_json::from_slice(patch).map_err(|e| Error::Decode(e.to_string()))?;
    match kind {
        PatchType::Merge => Ok(merge(target, &p, false)),
        PatchType::Strategic => {
            if !p.is_object() {
                return Err(Error::Decode(
                    "strategic merge patch must be a JSON object".into(),
                ));
            }
            Ok(merge(target, &p, true))
        }
        PatchType::Json => json_patch(target, &p),
    }
}

fn merge(target: &Value, patch: &Value, strategic: bool) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    if strategic {
        match p.get("$patch").and_then(Value::as_str) {
            Some("replace") => {
                let mut m = p.clone();
                m.remove("$patch");
                return Value::Object(m);
            }
            Some("delete") => return Value::Null,
            _ => {}
        }
    }
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if strategic && k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v, strategic);
            if merged.is_null() {
                out.remove(k);
            } else {
                out.insert(k.clone(), merged);
            }
        }
    }
    Value::Object(out)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), Error> {
    if path.is_empty() || !path.starts_with('/') {
        return Err(Error::Apply(format!("invalid JSON pointer {path:?}")));
    }
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    Ok((parent.to_owned(), unescape(last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), Error> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let missing = || {
        Error::Apply(format!(
            "add operation does not apply: doc is missing path: {path:?}"
        ))
    };
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| missing())?
            };
            if idx > a.len() {
                return Err(Error::Apply(format!(
                    "add operation does not apply: index out of bounds: {path:?}"
                )));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, Error> {
    let (parent, last) = split_pointer(path)?;
    let missing = || {
        Error::Apply(format!(
            "remove operation does not apply: doc is missing path: {path:?}"
        ))
    };
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let idx = last.parse::<usize>().map_err(|_| missing())?;
            if idx >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(idx))
        }
        _ => Err(missing()),
    }
}

fn json_patch(target: &Value, ops: &Value) -> Result<Value, Error> {
    let Value::Array(ops) = ops else {
        return Err(Error::Decode(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        ));
    };
    let mut doc = target.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| Error::Apply(format!("{name} operation: missing value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Apply(format!("{name} operation: missing from")))
        };
        match name {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path).map_err(|_| {
                    Error::Apply(format!(
                        "replace operation does not apply: doc is missing key: {path}"
                    ))
                })?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let v = remove(&mut doc, from()?)?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = doc.pointer(from()?).cloned().ok_or_else(|| {
                    Error::Apply("copy operation does not apply: doc is missing from path".into())
                })?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(Error::Apply(format!("testing value {path} failed: test failed")));
                }
            }
            other => return Err(Error::Apply(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let t = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let p = br#"{"metadata": {"labels": {"a": null, "c": "3"}}}"#;
        let out = apply(PatchType::Merge, &t, p).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"x": 1}})
        );
        let out = apply(PatchType::Strategic, &t, p).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
    }

    #[test]
    fn strategic_directives() {
        let t = json!({"metadata": {"labels": {"a": "1"}}});
        let out = apply(
            PatchType::Strategic,
            &t,
            br#"{"metadata": {"labels": {"$patch": "replace", "z": "9"}}}"#,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"z": "9"}));
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2]});
        let p = br#"[{"op": "test", "path": "/metadata/labels/a", "value": "1"},
                    {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
                    {"op": "add", "path": "/list/-", "value": 3},
                    {"op": "remove", "path": "/list/0"}]"#;
        let out = apply(PatchType::Json, &t, p).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"a": "2"}}, "list": [2, 3]}));
        let bad = apply(
            PatchType::Json,
            &t,
            br#"[{"op": "test", "path": "/list/0", "value": 9}]"#,
        );
        assert!(matches!(bad, Err(Error::Apply(_))), "got {bad:?}");
        assert!(matches!(
            apply(PatchType::Merge, &t, b"{nope"),
            Err(Error::Decode(_))
        ));
    }
}
