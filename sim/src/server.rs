//! The listener: TLS, HTTP/1.1 connections, authentication, authorization, accounting and
//! connection-level fault injection.
//!
//! Per request, in this order: route; identify the client by its bearer token; count the request
//! (`"<verb> <resource>"`); apply the client's fault (partition, latency, hang, fail, drop,
//! lose_response); then 401 for a missing or unknown token, 403 for a denied verb, 413 for a body
//! over 3 MiB, and finally the API handler. Faults that "close the connection" make the service
//! return an error, which makes hyper drop the connection without writing a response.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::accounting::{ANONYMOUS, Accounting};
use crate::api::{self, Body, MAX_BODY, error_response, json_response};
use crate::faults::{Faults, roll};
use crate::router::{self, Route};
use crate::status::ApiError;
use crate::store::Store;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub faults: Faults,
    pub accounting: Accounting,
    /// Denied `"verb resource"` pairs per client.
    pub authz: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Bearer token → client name.
    pub tokens: BTreeMap<String, String>,
    pub clients: Vec<String>,
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    /// The user name the real server would report for a client's service account token.
    pub fn user(client: &str) -> String {
        format!("system:serviceaccount:default:{client}")
    }

    fn denied(&self, client: &str, verb: &str, resource: &str) -> bool {
        let authz = self.authz.lock().unwrap_or_else(|p| p.into_inner());
        authz
            .get(client)
            .is_some_and(|d| d.contains(&format!("{verb} {resource}")))
    }
}

/// The service's error: close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection closed by an injected fault")]
pub struct Cut;

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                shared.accounting.connection();
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, tls.clone(), shared.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.clone();
    let svc_shared = shared.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        async move {
            let complete = bearer(&req)
                .and_then(|t| shared.tokens.get(t))
                .is_some_and(|client| shared.faults.get(client).complete_abandoned);
            if complete {
                // On its own task, the request runs to the end even if hyper drops this future
                // because the client hung up.
                tokio::spawn(handle(shared, peer, req)).await.unwrap_or(Err(Cut))
            } else {
                handle(shared, peer, req).await
            }
        }
    });
    match tls {
        Some(acceptor) => {
            let accepted = tokio::select! {
                _ = shutdown.changed() => return,
                r = acceptor.accept(stream) => r,
            };
            match accepted {
                Ok(s) => serve_http(TokioIo::new(s), svc, shutdown).await,
                Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            }
        }
        None => serve_http(TokioIo::new(stream), svc, shutdown).await,
    }
}

async fn serve_http<I, S>(io: I, svc: S, mut shutdown: tokio::sync::watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn read_body(req: Request<Incoming>) -> Result<hyper::body::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::too_large(MAX_BODY));
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(MAX_BODY)),
        Err(e) => Err(ApiError::bad_request(format!(
            "error reading the request body: {e}"
        ))),
    }
}

/// A discovery document, in the form the `Accept` header asks for.
fn discovery(req: &Request<Incoming>, path: &crate::discovery::Path) -> Response<Body> {
    use crate::negotiate::{AGGREGATED_CONTENT_TYPE, DiscoveryForm, discovery_form};
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error_response(&ApiError::method_not_allowed());
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(form) = discovery_form(accept) else {
        return error_response(&ApiError::not_acceptable(&[
            "application/json",
            AGGREGATED_CONTENT_TYPE,
        ]));
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match crate::discovery::document(path, form, host) {
        None => error_response(&ApiError::no_route()),
        Some(doc) => {
            let mut resp = json_response(200, &doc);
            if form == DiscoveryForm::Aggregated {
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(AGGREGATED_CONTENT_TYPE),
                );
            }
            resp
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Cut> {
    let path = req.uri().path().to_owned();
    let query = router::parse_query(req.uri().query());
    let client = bearer(&req).and_then(|t| shared.tokens.get(t)).cloned();
    let route = router::route(&path);
    if matches!(
        route,
        Route::Health | Route::Version | Route::NotFound | Route::Discovery(_) | Route::OpenApi(_)
    ) {
        // Outside the API: counted by method and path, under the client or as anonymous.
        let who = client.as_deref().unwrap_or(ANONYMOUS);
        shared.accounting.count(who, req.method().as_str(), &path);
    }
    let target = match route {
        Route::Admin(rest) => {
            if !peer.ip().is_loopback() {
                return Ok(json_response(
                    403,
                    &json!({"error": "the admin API only answers loopback peers"}),
                ));
            }
            let method = req.method().clone();
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return Ok(error_response(&e)),
            };
            return Ok(crate::admin::handle(&shared, &method, &rest, &query, &body));
        }
        Route::Health => return Ok(json_response(200, &json!("ok"))),
        Route::Version => {
            return Ok(json_response(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim", "platform": "linux/amd64"}),
            ));
        }
        // Discovery is for authenticated users (the `system:discovery` role), as on the real server.
        Route::Discovery(_) if client.is_none() => return Ok(error_response(&ApiError::unauthorized())),
        Route::Discovery(path) => return Ok(discovery(&req, &path)),
        Route::OpenApi(_) if client.is_none() => return Ok(error_response(&ApiError::unauthorized())),
        Route::OpenApi(gv) => {
            let doc = match gv {
                None => Some(crate::openapi::index()),
                Some(gv) => crate::openapi::document(&gv),
            };
            return Ok(match doc {
                Some(doc) => json_response(200, &doc),
                None => error_response(&ApiError::no_route()),
            });
        }
        Route::NotFound if client.is_none() => return Ok(error_response(&ApiError::unauthorized())),
        Route::NotFound => return Ok(error_response(&ApiError::no_route())),
        Route::Api(t) => t,
    };
    let verb = router::verb(req.method(), &target, &query);
    let resource = target.kind.info().plural;
    let mut lose_response = false;
    if client.is_none() {
        shared.accounting.count(ANONYMOUS, verb.as_str(), resource);
    }
    if let Some(c) = &client {
        shared.accounting.count(c, verb.as_str(), resource);
        let fault = shared.faults.get(c);
        if fault.partition {
            return Err(Cut);
        }
        if fault.applies_to(verb.as_str()) {
            if fault.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
            }
            if fault.hang {
                let mut shutdown = shared.shutdown.clone();
                let _ = shutdown.wait_for(|down| *down).await;
                return Err(Cut);
            }
            if let Some(fail) = &fault.fail
                && roll(fail.ratio)
            {
                let retry = match fail.status {
                    429 => Some(fail.retry_after_seconds.unwrap_or(1)),
                    503 => fail.retry_after_seconds,
                    _ => None,
                };
                return Ok(error_response(&ApiError::injected(fail.status, retry)));
            }
            if roll(fault.drop_ratio) {
                return Err(Cut);
            }
            lose_response = roll(fault.lose_response_ratio);
        }
    }
    let Some(client) = client else {
        return Ok(error_response(&ApiError::unauthorized()));
    };
    if shared.denied(&client, verb.as_str(), resource) {
        let name = target.name.as_deref().unwrap_or("");
        return Ok(error_response(&ApiError::forbidden(
            target.kind,
            name,
            &Shared::user(&client),
            verb.as_str(),
            target.namespace.as_deref(),
        )));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_head = req.method() == Method::HEAD;
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return Ok(error_response(&e)),
    };
    let resp = api::handle(
        &shared,
        api::Request {
            target,
            verb,
            query,
            content_type,
            accept,
            body,
            client,
        },
    );
    if lose_response {
        return Err(Cut);
    }
    if is_head {
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, http_body_util::Empty::new().boxed()));
    }
    Ok(resp)
}
