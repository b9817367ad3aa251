//! The admin API under `/sim/` (no auth; loopback peers only).
//!
//! | method | path | effect |
//! |---|---|---|
//! | GET | `/sim/healthz` | 200 `ok` |
//! | GET | `/sim/requests` | `{"<client>": {"<verb> <resource>": count}}` |
//! | DELETE | `/sim/requests` | resets the counts |
//! | GET | `/sim/faults/<client>` | the client's fault spec |
//! | PUT | `/sim/faults/<client>` | sets the client's fault spec (replaces; unknown fields → 400) |
//! | DELETE | `/sim/faults/<client>` | clears the client's fault |
//! | GET | `/sim/objects` | every stored object, as a JSON array |
//! | GET | `/sim/writes[?since=SEQ]` | the write log (records with `seq > SEQ`) |
//! | PUT | `/sim/authz/<client>` | `{"deny": ["update leases", ...]}` replaces the client's denials |
//! | POST | `/sim/compact` | forgets watch history (older resourceVersions get 410) |

use std::collections::BTreeSet;

use hyper::{Method, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Body, json_response};
use crate::faults::Fault;
use crate::router::Query;
use crate::server::Shared;

fn error(code: u16, message: impl std::fmt::Display) -> Response<Body> {
    json_response(code, &json!({"error": message.to_string()}))
}

/// The body of `PUT /sim/authz/<client>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthzSpec {
    deny: Vec<String>,
}

fn known_client<'a>(shared: &Shared, client: &'a str) -> Result<&'a str, Box<Response<Body>>> {
    if shared.clients.iter().any(|c| c == client) {
        Ok(client)
    } else {
        Err(Box::new(error(
            404,
            format!(
                "unknown client {client:?}; clients are: {}",
                shared.clients.join(", ")
            ),
        )))
    }
}

/// Serves one admin request; `path` is below `/sim/`.
pub fn handle(shared: &Shared, method: &Method, path: &str, query: &Query, body: &[u8]) -> Response<Body> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let result = match (method.as_str(), segs.as_slice()) {
        ("GET", ["healthz"]) => Ok(json_response(200, &json!("ok"))),
        ("GET", ["requests"]) => Ok(json_response(200, &json!(shared.accounting.snapshot()))),
        ("DELETE", ["requests"]) => {
            shared.accounting.reset();
            Ok(json_response(200, &json!({})))
        }
        ("GET", ["faults", client]) => {
            known_client(shared, client).map(|c| json_response(200, &json!(*shared.faults.get(c))))
        }
        ("PUT", ["faults", client]) => {
            known_client(shared, client).and_then(|c| match Fault::from_json(body) {
                Ok(f) => {
                    tracing::info!(client = c, fault = ?f, "fault set");
                    shared.faults.set(c, f.clone());
                    Ok(json_response(200, &json!(f)))
                }
                Err(e) => Err(Box::new(error(400, e))),
            })
        }
        ("DELETE", ["faults", client]) => known_client(shared, client).map(|c| {
            shared.faults.clear(c);
            json_response(200, &json!({}))
        }),
        ("GET", ["objects"]) => Ok(json_response(200, &Value::Array(shared.store.objects()))),
        ("GET", ["writes"]) => match query.get("since").map(|s| s.parse::<u64>()) {
            None => Ok(json_response(200, &json!(shared.store.writes(0)))),
            Some(Ok(since)) => Ok(json_response(200, &json!(shared.store.writes(since)))),
            Some(Err(_)) => Err(Box::new(error(
                400,
                "since must be a write sequence number (an unsigned integer)",
            ))),
        },
        ("PUT", ["authz", client]) => {
            known_client(shared, client).and_then(|c| match serde_json::from_slice::<AuthzSpec>(body) {
                Ok(spec) => {
                    let deny: BTreeSet<String> = spec.deny.into_iter().collect();
                    shared
                        .authz
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(c.to_owned(), deny.clone());
                    Ok(json_response(200, &json!({"deny": deny})))
                }
                Err(e) => Err(Box::new(error(
                    400,
                    format!("authz spec: {e}; expected {{\"deny\": [\"update leases\", ...]}}"),
                ))),
            })
        }
        ("POST", ["compact"]) => {
            shared.store.compact();
            Ok(json_response(
                200,
                &json!({"compactedResourceVersion": shared.store.current_rv().to_string()}),
            ))
        }
        (
            _,
            [
                "healthz" | "requests" | "faults" | "objects" | "writes" | "authz" | "compact",
                ..,
            ],
        ) => Err(Box::new(error(
            405,
            format!("method {method} not allowed on /sim/{path}"),
        ))),
        _ => Err(Box::new(error(404, format!("no admin endpoint /sim/{path}")))),
    };
    result.unwrap_or_else(|e| *e)
}
