//! OpenAPI v3, as much of it as kubectl reads: the index at `/openapi/v3` and one document per
//! group version (`/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`), generated from the
//! kind table.
//!
//! kubectl's `create`, `apply`, `replace` and `patch` validate with `--validate=strict` by
//! default: they read the group version's document to see whether the server takes the
//! `fieldValidation` query parameter (a `patch` operation tagged with the kind's
//! `x-kubernetes-group-version-kind` and listing the parameter). When it does, kubectl sends
//! `fieldValidation=Strict` and leaves validation to the server, which the simulator performs
//! ([`crate::field_validation`]); when the documents are missing, kubectl refuses to create
//! anything unless validation is turned off. The documents therefore carry the paths, operations
//! and parameters of what is served, but no schemas (`components.schemas` is empty):
//! `kubectl explain` and client-side schema validation are not served.

use serde_json::{Value, json};

use crate::resource::{ALL, Kind};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The index: every group version and where its document is.
pub fn index() -> Value {
    let mut paths = serde_json::Map::new();
    for kind in ALL {
        let info = kind.info();
        let p = gv_path(info.group, info.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}")}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(kind: Kind, action: &str, verb: &str, write: bool) -> Value {
    let info = kind.info();
    let mut params = Vec::new();
    if write {
        params.push(param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn (default) - Strict",
        ));
    }
    json!({
        "operationId": format!("{verb}{}", info.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    })
}

/// The document of one group version (`api/v1`, `apis/coordination.k8s.io/v1`), or `None`.
pub fn document(gv: &str) -> Option<Value> {
    let kinds: Vec<Kind> = ALL
        .into_iter()
        .filter(|k| gv_path(k.info().group, k.info().version) == gv)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for kind in kinds {
        let plural = kind.info().plural;
        let collection = format!("/{gv}/namespaces/{{namespace}}/{plural}");
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(kind, "list", "list", false),
                "post": operation(kind, "post", "create", true),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(kind, "get", "read", false),
                "put": operation(kind, "put", "replace", true),
                "patch": operation(kind, "patch", "patch", true),
                "delete": operation(kind, "delete", "delete", false),
            }),
        );
        paths.insert(
            format!("/{gv}/{plural}"),
            json!({"get": operation(kind, "list", "list", false)}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_patch_takes_field_validation() {
        let idx = index();
        for kind in ALL {
            let info = kind.info();
            let gv = gv_path(info.group, info.version);
            assert!(idx["paths"].get(&gv).is_some(), "{gv} not in the index: {idx}");
            let doc = document(&gv).unwrap_or_default();
            let item = &doc["paths"][format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", info.plural)];
            assert_eq!(
                item["patch"]["x-kubernetes-group-version-kind"]["kind"], info.kind,
                "{doc}"
            );
            assert_eq!(item["patch"]["parameters"][0]["name"], "fieldValidation");
            assert_eq!(item["patch"]["parameters"][0]["in"], "query");
        }
        assert_eq!(document("apis/apps/v1"), None);
    }
}
