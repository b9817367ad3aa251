//! The Kubernetes API verbs: get, list, create, update, patch, delete and watch.
//!
//! Each handler follows the real request path and its order of checks: decode the body (415 for
//! an unknown media type, 400 for a body that does not decode as the URL's type), compare
//! name/namespace with the URL (400), then, atomically under the store lock, the
//! resourceVersion precondition (409 Conflict, or 422 for a Lease update without one), validation
//! (422), namespace existence (404) and existence (404/409). Watch streams are spawned tasks that
//! write one JSON event per line into a chunked body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::faults::WatchMode;
use crate::field_validation::{self, Directive};
use crate::negotiate::{self, ObjectForm};
use crate::patch::{self, PatchType};
use crate::protobuf;
use crate::resource::Kind;
use crate::router::{Query, Target, Verb, flag};
use crate::selectors::Selector;
use crate::server::Shared;
use crate::status::ApiError;
use crate::store::{Outcome, Plan, WatchFrom, WatchStart};
use crate::table;
use crate::validation;

/// The response body type of the whole server.
pub type Body = BoxBody<Bytes, Infallible>;

/// The real server's request body limit (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

const ENDPOINTS_WARNING: &str =
    "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";

/// The media types a create/update body of `kind` may have.
fn body_media_types(kind: Kind) -> Vec<&'static str> {
    let mut types = vec!["application/json", "application/yaml"];
    if protobuf::decodes(kind) {
        types.push(protobuf::MEDIA_TYPE);
    }
    types
}

/// A JSON response.
pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

/// A `Status` response for an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.to_json());
    if let Some(secs) = err.retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// One API request after routing, authentication and authorization.
#[derive(Debug)]
pub struct Request {
    pub target: Target,
    pub verb: Verb,
    pub query: Query,
    pub content_type: Option<String>,
    /// The `Accept` header: the object itself or a `Table` of it.
    pub accept: Option<String>,
    pub body: Bytes,
    pub client: String,
}

/// Serves one API request.
pub fn handle(shared: &Arc<Shared>, req: Request) -> Response<Body> {
    let kind = req.target.kind;
    let write = matches!(req.verb, Verb::Create | Verb::Update | Verb::Patch | Verb::Delete);
    let result = match req.verb {
        _ if write && req.query.get("dryRun").is_some_and(|d| !d.is_empty()) => Err(no_dry_run()),
        Verb::Get => get(shared, &req),
        Verb::List => list(shared, &req),
        Verb::Watch => watch(shared, &req),
        Verb::Create => create(shared, &req),
        Verb::Update => update(shared, &req),
        Verb::Patch => patch(shared, &req),
        Verb::Delete => delete(shared, &req),
        Verb::Unsupported => Err(ApiError::method_not_allowed()),
    };
    let mut resp = result.unwrap_or_else(|e| error_response(&e));
    if kind == Kind::Endpoints {
        resp.headers_mut().append(
            header::WARNING,
            header::HeaderValue::from_static(ENDPOINTS_WARNING),
        );
    }
    resp
}

fn ns(req: &Request) -> &str {
    req.target.namespace.as_deref().unwrap_or("")
}

fn name(req: &Request) -> &str {
    req.target.name.as_deref().unwrap_or("")
}

/// What a get, list or watch answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The object or list itself.
    Object,
    /// A `Table`, each row carrying what `includeObject` asks.
    Table(table::Include),
    /// `PartialObjectMetadata` (`PartialObjectMetadataList` for a list).
    Metadata,
}

/// The form the `Accept` header asks for; 406 when it accepts none that is served.
fn output(req: &Request) -> Result<Output, ApiError> {
    match negotiate::object_form(req.accept.as_deref()) {
        Some(ObjectForm::Object) => Ok(Output::Object),
        Some(ObjectForm::Table) => {
            table::Include::parse(req.query.get("includeObject").map(String::as_str)).map(Output::Table)
        }
        Some(ObjectForm::Metadata) => Ok(Output::Metadata),
        None => Err(ApiError::not_acceptable(&[
            "application/json",
            negotiate::TABLE_CONTENT_TYPE,
            negotiate::METADATA_CONTENT_TYPE,
        ])),
    }
}

/// `PartialObjectMetadata` of an object.
fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn typed_response(value: &Value, content_type: &'static str) -> Response<Body> {
    let mut resp = json_response(200, value);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

fn table_response(value: &Value) -> Response<Body> {
    typed_response(value, negotiate::TABLE_CONTENT_TYPE)
}

fn get(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let form = output(req)?;
    let obj = shared
        .store
        .get(req.target.kind, ns(req), name(req))
        .ok_or_else(|| ApiError::not_found(req.target.kind, name(req)))?;
    Ok(match form {
        Output::Object => json_response(200, &obj),
        Output::Metadata => typed_response(&partial(&obj), negotiate::METADATA_CONTENT_TYPE),
        Output::Table(include) => table_response(&table::table(
            req.target.kind,
            [&*obj],
            None,
            include,
            jiff::Timestamp::now(),
        )),
    })
}

fn selector(req: &Request) -> Result<Selector, ApiError> {
    Selector::parse(
        req.target.kind,
        req.query.get("fieldSelector").map(String::as_str),
        req.query.get("labelSelector").map(String::as_str),
    )
}

fn list(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let sel = selector(req)?;
    let form = output(req)?;
    let (rv, items) = shared.store.list(kind, req.target.namespace.as_deref());
    if form == Output::Metadata {
        let items: Vec<Value> = items
            .iter()
            .filter(|o| sel.matches(kind, o))
            .map(|o| partial(o))
            .collect();
        return Ok(typed_response(
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            }),
            negotiate::METADATA_LIST_CONTENT_TYPE,
        ));
    }
    if let Output::Table(include) = form {
        let matching = items.iter().filter(|o| sel.matches(kind, o)).map(|o| &**o);
        return Ok(table_response(&table::table(
            kind,
            matching,
            Some(rv),
            include,
            jiff::Timestamp::now(),
        )));
    }
    let items: Vec<Value> = items
        .iter()
        .filter(|o| sel.matches(kind, o))
        .map(|o| {
            // Items of a typed list carry no type meta on the wire.
            let mut o = (**o).clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok(json_response(
        200,
        &json!({
            "kind": kind.info().list_kind,
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    ))
}

/// Go's `encoding/json` wording for the first syntax error, as far as it matters.
fn go_json_error(body: &[u8], err: &serde_json::Error) -> String {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => "unexpected end of JSON input".to_owned(),
        Some(&c) if !matches!(c, b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            format!(
                "invalid character '{}' looking for beginning of value",
                char::from(c).escape_default()
            )
        }
        Some(_) if err.is_eof() => "unexpected end of JSON input".to_owned(),
        Some(_) => err.to_string(),
    }
}

/// `summarizeData` of the real decoder's error path.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    match body.first() {
        None => "<empty>".to_owned(),
        Some(b'{') if body.len() > MAX => format!("{} ...", String::from_utf8_lossy(&body[..MAX])),
        Some(b'{') => String::from_utf8_lossy(body).into_owned(),
        Some(_) => {
            let hex: String = body.iter().take(MAX).map(|b| format!("{b:02x}")).collect();
            if body.len() > MAX {
                format!("{hex} ...")
            } else {
                hex
            }
        }
    }
}

/// Decodes a create/update body into the stored shape of `kind`, with the unknown-field warnings.
fn decode_body(
    kind: Kind,
    content_type: Option<&str>,
    body: &[u8],
    directive: Directive,
) -> Result<(Value, Vec<String>), ApiError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let expected = kind.info().kind;
    let unrecognized = |msg: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {expected}): couldn't get version/kind; json parse error: {msg} ({})",
            summarize(body)
        ))
    };
    let raw: Value = match media.as_str() {
        "" | "application/json" => {
            serde_json::from_slice(body).map_err(|e| unrecognized(go_json_error(body, &e)))?
        }
        "application/yaml" => serde_yaml_ng::from_slice(body).map_err(|e| unrecognized(e.to_string()))?,
        protobuf::MEDIA_TYPE if protobuf::decodes(kind) => {
            protobuf::decode_object(kind, body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized (must be of type {expected}): {e}"
                ))
            })?
        }
        _ => return Err(ApiError::unsupported_media_type(&body_media_types(kind))),
    };
    if !raw.is_object() {
        return Err(unrecognized(
            "json: cannot unmarshal non-object into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }".to_owned(),
        ));
    }
    check_type_meta(kind, &raw)?;
    typed(kind, raw, directive)
}

/// The data's `apiVersion`/`kind` must be the URL's (empty means "the URL's").
fn check_type_meta(kind: Kind, raw: &Value) -> Result<(), ApiError> {
    let expected_av = kind.api_version();
    let expected_kind = kind.info().kind;
    let av = raw.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let k = raw.get("kind").and_then(Value::as_str).unwrap_or("");
    if !av.is_empty() && av != expected_av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({expected_av})"
        )));
    }
    if !k.is_empty() && k != expected_kind {
        let version = kind.info().version;
        let other_served = crate::resource::ALL
            .into_iter()
            .any(|o| o.info().kind == k && o.api_version() == expected_av);
        let why = if other_served {
            format!("converting ({version}.{k}) to ({version}.{expected_kind}): unknown conversion")
        } else {
            format!(
                "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                crate::status::quote(k),
                crate::status::quote(&expected_av)
            )
        };
        return Err(ApiError::bad_request(format!(
            "{k} in version {} cannot be handled as a {expected_kind}: {why}",
            crate::status::quote(version)
        )));
    }
    Ok(())
}

/// Strict typed decode (exact MicroTime layout, field types) and type meta; unknown fields as
/// `directive` says: an error, or dropped with the `Warning` header values returned.
fn typed(kind: Kind, raw: Value, directive: Directive) -> Result<(Value, Vec<String>), ApiError> {
    let expected = kind.info().kind;
    let cannot = |msg: String| {
        ApiError::bad_request(format!(
            "{expected} in version {} cannot be handled as a {expected}: {msg}",
            crate::status::quote(kind.info().version)
        ))
    };
    validation::check_micro_times(kind, &raw).map_err(cannot)?;
    let mut v = kind.normalize(raw.clone()).map_err(|e| cannot(e.to_string()))?;
    let mut unknown = field_validation::unknown_fields(&raw, &v);
    // Type meta is not part of the typed decode: never unknown.
    unknown.retain(|f| f != "kind" && f != "apiVersion");
    let warnings = match directive {
        Directive::Strict if !unknown.is_empty() => {
            let fields: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field {}", crate::status::quote(f)))
                .collect();
            return Err(cannot(format!("strict decoding error: {}", fields.join(", "))));
        }
        Directive::Warn => unknown.iter().map(|f| field_validation::warning(f)).collect(),
        Directive::Strict | Directive::Ignore => Vec::new(),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), expected.into());
        m.insert("apiVersion".into(), kind.api_version().into());
        if kind == Kind::Lease
            && let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut)
        {
            // CoordinatedLeaderElection is off by default: its fields are dropped on write.
            spec.remove("strategy");
            spec.remove("preferredHolder");
        }
        if !m.contains_key("metadata") {
            m.insert("metadata".into(), json!({}));
        }
    }
    Ok((v, warnings))
}

/// Adds one `Warning` header per value.
fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        if let Ok(v) = header::HeaderValue::from_str(w) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(field.to_owned(), value);
    }
}

fn check_namespace(req: &Request, obj: &Value) -> Result<(), ApiError> {
    let body_ns = meta(obj, "namespace");
    if !body_ns.is_empty() && body_ns != ns(req) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn validate(kind: Kind, obj: &Value) -> Result<(), ApiError> {
    let errs = validation::validate(kind, obj);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, meta(obj, "name"), errs))
    }
}

/// [`validate`] plus the fields an update may not change.
fn validate_update(kind: Kind, obj: &Value, old: &Value) -> Result<(), ApiError> {
    let errs = validation::validate_update(kind, obj, old);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, meta(obj, "name"), errs))
    }
}

fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
        .collect();
    format!("{prefix}{suffix}")
}

/// Fields the server owns on create (Pod status) are reset.
fn prepare_create(kind: Kind, obj: &mut Value) {
    if kind == Kind::Pod
        && let Some(m) = obj.as_object_mut()
    {
        m.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": "BestEffort"}),
        );
    }
}

/// Fields the server owns on update (Pod status) keep their stored value.
fn prepare_update(kind: Kind, obj: &mut Value, cur: &Value) {
    if kind == Kind::Pod
        && let Some(m) = obj.as_object_mut()
    {
        match cur.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
}

fn outcome_response(kind: Kind, outcome: Outcome) -> Response<Body> {
    match outcome {
        Outcome::Created(o) => json_response(201, &o),
        Outcome::Updated(o) | Outcome::Unchanged(o) => json_response(200, &o),
        Outcome::Deleted(o) => {
            if kind == Kind::Pod {
                json_response(200, &o)
            } else {
                let uid = (!meta(&o, "uid").is_empty()).then(|| meta(&o, "uid").to_owned());
                json_response(200, &crate::status::delete_success(kind, meta(&o, "name"), uid))
            }
        }
    }
}

fn create(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let directive = Directive::from_query(&req.query)?;
    let (mut obj, warnings) = decode_body(kind, req.content_type.as_deref(), &req.body, directive)?;
    check_namespace(req, &obj)?;
    if meta(&obj, "name").is_empty() && !meta(&obj, "generateName").is_empty() {
        let generated = generate_name(meta(&obj, "generateName"));
        set_meta(&mut obj, "name", generated.into());
    }
    let name = meta(&obj, "name").to_owned();
    prepare_create(kind, &mut obj);
    let outcome = shared
        .store
        .write(kind, ns(req), &name, &req.client, "create", |cur, env| {
            validate(kind, &obj)?;
            if !env.namespace_exists {
                return Err(ApiError::namespace_not_found(ns(req)));
            }
            if cur.is_some() {
                return Err(ApiError::already_exists(kind, &name));
            }
            Ok(Plan::Put(obj))
        })?;
    Ok(with_warnings(outcome_response(kind, outcome), &warnings))
}

/// The resourceVersion and uid preconditions an update body carries.
fn check_preconditions(
    kind: Kind,
    name: &str,
    obj: &Value,
    cur: &Value,
    unconditional: bool,
) -> Result<(), ApiError> {
    let uid = meta(obj, "uid");
    if !uid.is_empty() && uid != meta(cur, "uid") {
        return Err(ApiError::conflict(
            kind,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta(cur, "uid")
            ),
        ));
    }
    let rv = meta(obj, "resourceVersion");
    if rv.is_empty() {
        if unconditional {
            return Ok(());
        }
        let info = kind.info();
        return Err(ApiError::invalid_qualified(
            &kind.qualified(),
            info.group,
            info.plural,
            name,
            vec![crate::status::FieldError::invalid(
                "metadata.resourceVersion",
                "0x0",
                "must be specified for an update",
            )],
        ));
    }
    if rv.parse::<u64>().is_err() {
        return Err(ApiError::bad_request(format!(
            "invalid resource version: {}",
            crate::status::quote(rv)
        )));
    }
    if rv != meta(cur, "resourceVersion") {
        return Err(ApiError::conflict_modified(kind, name));
    }
    Ok(())
}

fn update(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let name = name(req);
    let directive = Directive::from_query(&req.query)?;
    let (mut obj, warnings) = decode_body(kind, req.content_type.as_deref(), &req.body, directive)?;
    let body_name = meta(&obj, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(req, &obj)?;
    let info = kind.info();
    let outcome = shared
        .store
        .write(kind, ns(req), name, &req.client, "update", |cur, env| {
            match cur {
                None => {
                    if !info.create_on_update {
                        return Err(ApiError::not_found(kind, name));
                    }
                    // The API server takes a body's metadata.uid as a precondition (the update's
                    // `Preconditions()`), checked against the missing object's empty UID: an
                    // update of an object that was deleted meanwhile fails instead of creating
                    // it again.
                    let uid = meta(&obj, "uid");
                    if !uid.is_empty() {
                        return Err(ApiError::conflict(
                            kind,
                            name,
                            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: "),
                        ));
                    }
                    prepare_create(kind, &mut obj);
                    validate(kind, &obj)?;
                    if !env.namespace_exists {
                        return Err(ApiError::namespace_not_found(ns(req)));
                    }
                }
                Some(cur) => {
                    check_preconditions(kind, name, &obj, cur, info.unconditional_update)?;
                    prepare_update(kind, &mut obj, cur);
                    validate_update(kind, &obj, cur)?;
                }
            }
            Ok(Plan::Put(obj))
        })?;
    Ok(with_warnings(outcome_response(kind, outcome), &warnings))
}

fn patch(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let name = name(req);
    let ct = req.content_type.as_deref().unwrap_or("");
    let Some(patch_type) = PatchType::from_content_type(ct) else {
        return Err(ApiError::unsupported_media_type(&patch::ACCEPTED));
    };
    let directive = Directive::from_query(&req.query)?;
    let mut warnings = Vec::new();
    let outcome = shared
        .store
        .write(kind, ns(req), name, &req.client, "patch", |cur, _env| {
            let Some(cur) = cur else {
                return Err(ApiError::not_found(kind, name));
            };
            let patched = patch::apply(patch_type, cur, &req.body).map_err(|e| match e {
                patch::Error::Decode(m) => ApiError::bad_request(m),
                patch::Error::Apply(m) => ApiError::unprocessable(m),
            })?;
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patched object is not a JSON object"));
            }
            check_type_meta(kind, &patched)?;
            let (mut obj, w) = typed(kind, patched, directive)?;
            warnings = w;
            let body_name = meta(&obj, "name");
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            check_namespace(req, &obj)?;
            check_preconditions(kind, name, &obj, cur, true)?;
            prepare_update(kind, &mut obj, cur);
            validate_update(kind, &obj, cur)?;
            Ok(Plan::Put(obj))
        })?;
    Ok(with_warnings(outcome_response(kind, outcome), &warnings))
}

/// `ValidateDeleteOptions`: the propagation policy must be one the server knows. Deletion here
/// is immediate and there is no garbage collector, so every valid policy deletes the same way;
/// `gracePeriodSeconds` is accepted for the same reason (the served kinds delete at once).
fn check_delete_options(opts: &Value) -> Result<(), ApiError> {
    match opts.get("propagationPolicy").and_then(Value::as_str) {
        None | Some("Foreground" | "Background" | "Orphan") => {}
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                crate::status::quote(other)
            )));
        }
    }
    if opts
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
    {
        return Err(no_dry_run());
    }
    Ok(())
}

/// kube-sim performs no dry runs: refused rather than carried out for real.
fn no_dry_run() -> ApiError {
    ApiError::bad_request("dryRun: kube-sim does not serve dry runs; send the request without dryRun")
}

fn delete(shared: &Shared, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let name = name(req);
    let media = req
        .content_type
        .as_deref()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let opts: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else if media == protobuf::MEDIA_TYPE {
        protobuf::decode_delete_options(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    check_delete_options(&opts)?;
    let want_uid = opts
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let want_rv = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let outcome = shared.store.write(kind, ns(req), name, &req.client, "delete", |cur, _env| {
        let Some(cur) = cur else { return Err(ApiError::not_found(kind, name)) };
        if !want_uid.is_empty() && want_uid != meta(cur, "uid") {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!("Precondition failed: UID in precondition: {want_uid}, UID in object meta: {}", meta(cur, "uid")),
            ));
        }
        if !want_rv.is_empty() && want_rv != meta(cur, "resourceVersion") {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want_rv}, ResourceVersion in object meta: {}",
                    meta(cur, "resourceVersion")
                ),
            ));
        }
        Ok(Plan::Delete)
    })?;
    Ok(outcome_response(kind, outcome))
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(kind: Kind, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": kind.info().kind, "apiVersion": kind.api_version(), "metadata": metadata}),
    )
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

fn watch(shared: &Arc<Shared>, req: &Request) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let sel = selector(req)?;
    let form = output(req)?;
    let rv = req.query.get("resourceVersion").map(String::as_str).unwrap_or("");
    let send_initial = flag(&req.query, "sendInitialEvents");
    let from = match rv {
        "" | "0" => WatchFrom::Snapshot,
        _ if send_initial => WatchFrom::Snapshot,
        n => WatchFrom::After(n.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {}", crate::status::quote(n)))
        })?),
    };
    let timeout = match req.query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds: {}", crate::status::quote(t)))
        })?),
        // The real server picks a random timeout in [minRequestTimeout, 2*minRequestTimeout].
        None => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let (tx, rx) = mpsc::channel(256);
    match shared.store.watch(kind, req.target.namespace.as_deref(), from) {
        Err(expired) => {
            let line = event_line("ERROR", &expired.to_json());
            let _ = tx.try_send(line);
        }
        Ok(start) => {
            let w = WatchTask {
                shared: shared.clone(),
                client: req.client.clone(),
                kind,
                namespace: req.target.namespace.clone(),
                selector: sel,
                bookmarks: flag(&req.query, "allowWatchBookmarks"),
                initial_end: send_initial,
                form,
                timeout,
                tx,
            };
            tokio::spawn(w.run(start));
        }
    }
    Ok(stream_response(rx))
}

struct WatchTask {
    shared: Arc<Shared>,
    client: String,
    kind: Kind,
    namespace: Option<String>,
    selector: Selector,
    bookmarks: bool,
    initial_end: bool,
    /// Events carry objects, one-row `Table`s (`kubectl get -w`) or `PartialObjectMetadata`.
    form: Output,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
}

impl WatchTask {
    /// Cut (`Close` or partition), stalled, or normal.
    fn mode(&self) -> Option<WatchMode> {
        let f = self.shared.faults.get(&self.client);
        if f.partition || f.watch == WatchMode::Close {
            None
        } else {
            Some(f.watch)
        }
    }

    async fn send(&self, b: Bytes) -> bool {
        self.tx.send(b).await.is_ok()
    }

    /// An event line for `obj`, in the form the client asked for.
    fn event(&self, event_type: &str, obj: &Value) -> Bytes {
        match self.form {
            Output::Object => event_line(event_type, obj),
            Output::Metadata => event_line(event_type, &partial(obj)),
            Output::Table(include) => event_line(
                event_type,
                &table::table(self.kind, [obj], None, include, jiff::Timestamp::now()),
            ),
        }
    }

    /// A bookmark line; for tables, a `Table` without rows carrying the resourceVersion.
    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        match self.form {
            Output::Object => bookmark(self.kind, rv, initial_end),
            Output::Metadata => {
                let mut m = json!({"metadata": {"resourceVersion": rv.to_string()}});
                if initial_end {
                    m["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                event_line("BOOKMARK", &partial(&m))
            }
            Output::Table(include) => {
                let mut t = table::table(self.kind, [], Some(rv), include, jiff::Timestamp::now());
                if initial_end {
                    t["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                event_line("BOOKMARK", &t)
            }
        }
    }

    async fn run(self, start: WatchStart) {
        let WatchStart {
            initial,
            rv,
            mut live,
        } = start;
        let mut faults = self.shared.faults.subscribe();
        let mut shutdown = self.shared.shutdown.clone();
        let Some(mut mode) = self.mode() else { return };
        for (t, obj) in initial {
            if mode == WatchMode::Normal
                && self.selector.matches(self.kind, &obj)
                && !self.send(self.event(t.as_str(), &obj)).await
            {
                return;
            }
        }
        let mut last_rv = rv;
        if self.initial_end && mode == WatchMode::Normal && !self.send(self.bookmark(last_rv, true)).await {
            return;
        }
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let period = self.shared.bookmark_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                () = &mut deadline => return,
                changed = faults.changed() => {
                    if changed.is_err() { return; }
                    match self.mode() { Some(m) => mode = m, None => return }
                }
                got = live.recv() => match got {
                    Ok(change) => {
                        if change.rv <= last_rv { continue; }
                        last_rv = change.rv;
                        let in_ns = self.ns_matches(&change.namespace);
                        if change.kind == self.kind && in_ns && mode == WatchMode::Normal
                            && self.selector.matches(self.kind, &change.object)
                            && !self.send(self.event(change.event_type.as_str(), &change.object)).await
                        {
                            return;
                        }
                    }
                    // A watcher that falls too far behind is cut, as the real server does.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if self.bookmarks => {
                    if mode == WatchMode::Normal && !self.send(self.bookmark(last_rv, false)).await {
                        return;
                    }
                }
            }
        }
    }

    fn ns_matches(&self, ns: &str) -> bool {
        self.namespace.as_deref().is_none_or(|want| want == ns)
    }
}
