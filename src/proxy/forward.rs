//! Building the request sent on (to the application or the leader's proxy) and the response
//! passed back, and the pooled keep-alive client that sends it. Bodies are streams: nothing here
//! reads a body, it is handed on as it arrives.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and the headers it names, `Keep-Alive`,
//! `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) are not passed on, except
//! `Connection: upgrade` and `Upgrade` on an upgrade request and its `101` answer, which the
//! proxy tunnels. `X-Elector-Fencing-Token` and `X-Elector-Forwarded` from a client are never
//! trusted: the proxy sets them itself.

use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::FENCING_TOKEN_HEADER;

/// Marks a request forwarded by a follower's proxy; its value is that proxy's identity.
pub const FORWARDED_HEADER: &str = "x-elector-forwarded";
/// On a 503 from a proxy that will not lead (it is shutting down or withdrawn): the request
/// reached no application, so the forwarding proxy may place it again.
pub const NOT_LEADER_HEADER: &str = "x-elector-not-leader";

/// A body the proxy sends or answers with: a stream passed through, or its own short text.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// The pooled client to the application and to other proxies.
pub type Upstream = Client<HttpConnector, Body>;

/// Idle keep-alive connections are closed after this long (below common servers' 120 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client with keep-alive connections pooled per address, no retries of its own beyond
/// hyper's resend of a request that provably was not written on a reused connection.
pub fn upstream() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A short text body.
pub fn text(text: String) -> Body {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Whether `headers` ask to switch protocols (`Connection: upgrade` with an `Upgrade` header).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_names(headers).any(|name| name == "upgrade")
}

fn connection_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}

/// Removes the hop-by-hop headers, keeping `Connection: upgrade` and `Upgrade` when `upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<String> = connection_names(headers).collect();
    for name in named {
        if upgrade && name == "upgrade" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// What the proxy adds to a request it sends on.
#[derive(Clone, Copy, Debug)]
pub enum Mark<'a> {
    /// To the local application, with this fencing token.
    Token(u64),
    /// To the leader's proxy, forwarded by the proxy of this identity.
    ForwardedBy(&'a str),
}

/// The request to send to `target` (`HOST:PORT`): the client's method, path, query, version
/// and end-to-end headers (the `Host` header kept), `body`, and the proxy's mark.
pub fn outgoing(
    parts: &request::Parts,
    body: Body,
    target: &str,
    mark: Mark<'_>,
) -> Result<Request<Body>, String> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("http://{target}{path}")
        .parse()
        .map_err(|error| format!("cannot address {target}{path}: {error}"))?;
    let mut headers = parts.headers.clone();
    let upgrade = is_upgrade(&headers);
    strip_hop_by_hop(&mut headers, upgrade);
    headers.remove(FENCING_TOKEN_HEADER);
    headers.remove(FORWARDED_HEADER);
    headers.remove(NOT_LEADER_HEADER);
    match mark {
        Mark::Token(token) => {
            headers.insert(FENCING_TOKEN_HEADER, HeaderValue::from(token));
        }
        Mark::ForwardedBy(identity) => {
            let value = HeaderValue::from_str(identity)
                .map_err(|_| format!("identity {identity:?} is not a header value"))?;
            headers.insert(FORWARDED_HEADER, value);
        }
    }
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The upstream's response as passed back: its status and end-to-end headers, its body stream.
pub fn passed_back<B>(response: Response<B>, body: impl FnOnce(B) -> Body) -> Response<Body> {
    let (mut parts, incoming) = response.into_parts();
    let upgrade = parts.status == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    Response::from_parts(parts, body(incoming))
}

/// The proxy's own answer: `status` with `text`, and `Retry-After: 1` on a 503.
pub fn answer(status: StatusCode, text_body: String) -> Response<Body> {
    let mut response = Response::new(text(text_body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::builder().method("POST").uri("/orders?id=3");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_local_request_carries_the_token_and_no_hop_by_hop_header_or_forged_mark() {
        let parts = parts(&[
            ("host", "orders.example"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("x-elector-fencing-token", "999"),
            ("x-elector-forwarded", "forged"),
            ("x-request-id", "abc"),
        ]);
        let request = outgoing(&parts, empty(), "127.0.0.1:8081", Mark::Token(7)).unwrap();
        assert_eq!(request.uri(), "http://127.0.0.1:8081/orders?id=3");
        assert_eq!(request.method(), "POST");
        let headers = request.headers();
        assert_eq!(
            headers[FENCING_TOKEN_HEADER], "7",
            "the proxy's token, not the client's"
        );
        assert_eq!(headers["host"], "orders.example");
        assert_eq!(headers["x-request-id"], "abc");
        for gone in ["connection", "x-hop", "keep-alive", FORWARDED_HEADER] {
            assert!(
                !headers.contains_key(gone),
                "{gone} must not be passed on: {headers:?}"
            );
        }
    }

    #[test]
    fn a_forwarded_request_is_marked_and_an_upgrade_keeps_its_headers() {
        let parts = parts(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        let request = outgoing(&parts, empty(), "10.0.0.2:8000", Mark::ForwardedBy("pod-a")).unwrap();
        let headers = request.headers();
        assert_eq!(headers[FORWARDED_HEADER], "pod-a");
        assert!(
            !headers.contains_key(FENCING_TOKEN_HEADER),
            "the leader's proxy sets the token"
        );
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "upgrade");
    }

    #[test]
    fn a_503_of_the_proxy_says_when_to_retry() {
        let response = answer(StatusCode::SERVICE_UNAVAILABLE, "no leader\n".into());
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
