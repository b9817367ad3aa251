//! The leader-forwarding proxy's test bed: a stand-in application that names its pod and echoes
//! the fencing token it was given, and a client that sends steady load and records every answer.
//!
//! The application answers every request `200` with the body `<pod> <token>` (`-` for a missing
//! `X-Elector-Fencing-Token`) and the same in `X-Served-By` / `X-Echo-Token`; it streams a
//! request body back after that line, and `?delay_ms=N` holds the answer N ms (a request in
//! flight across a handover). An upgrade request (`Connection: upgrade`) gets `101` and its bytes
//! echoed back on the upgraded connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running stand-in application; stops when dropped.
#[derive(Debug)]
pub struct EchoApp {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type AppBody = BoxBody<Bytes, hyper::Error>;

impl EchoApp {
    /// Serves as `pod` on a free loopback port.
    pub async fn start(pod: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let pod: Arc<str> = pod.into();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let pod = pod.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| answer(pod.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// Its address, for `--proxy-upstream`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn answer(pod: Arc<str>, mut request: Request<Incoming>) -> Result<Response<AppBody>, Infallible> {
    let token = request
        .headers()
        .get("x-elector-fencing-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let line = format!("{pod} {token}\n");
    let mut builder = Response::builder()
        .header("x-served-by", &*pod)
        .header("x-echo-token", &token);
    if request.headers().contains_key(hyper::header::UPGRADE) {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            }
        });
        let response = builder
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
        return Ok(response.unwrap_or_default());
    }
    let delay = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("delay_ms="))
        .and_then(|ms| ms.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    // The line, then the request body as it streams in.
    let chained = Chain {
        first: Some(Bytes::from(line)),
        second: request.into_body(),
    };
    builder = builder.status(StatusCode::OK);
    Ok(builder.body(chained.boxed()).unwrap_or_default())
}

/// One body, then another.
struct Chain {
    first: Option<Bytes>,
    second: Incoming,
}

impl hyper::body::Body for Chain {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(Frame::data(first))));
        }
        std::pin::Pin::new(&mut self.second).poll_frame(cx)
    }
}

/// One answer through the proxy, as a client saw it.
#[derive(Clone, Debug)]
pub struct Answer {
    /// When the request was sent and when its answer was complete (the body read).
    pub sent: Instant,
    pub answered: Instant,
    /// The HTTP status, or `None` when the request failed without one.
    pub status: Option<u16>,
    /// The pod and the fencing token the application named; empty unless a 200 from it.
    pub pod: String,
    pub token: Option<u64>,
    /// The body or the error, for messages.
    pub text: String,
}

/// A keep-alive HTTP/1.1 client.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A keep-alive client for the proxies.
pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `GET path` to `addr` and records the answer.
pub async fn get(client: &Client, addr: SocketAddr, path: &str) -> Answer {
    send(client, addr, "GET", path, Bytes::new()).await
}

/// Sends `method path` with `body` to `addr` and records the answer.
pub async fn send(client: &Client, addr: SocketAddr, method: &str, path: &str, body: Bytes) -> Answer {
    let sent = Instant::now();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(body));
    let outcome = match request {
        Ok(request) => match client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) => Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned())),
                    Err(error) => Err(error.to_string()),
                }
            }
            Err(error) => Err(format!("{error:?}")),
        },
        Err(error) => Err(error.to_string()),
    };
    let answered = Instant::now();
    match outcome {
        Ok((status, text)) => {
            let mut words = text.lines().next().unwrap_or_default().split(' ');
            let (pod, token) = if status == 200 {
                (
                    words.next().unwrap_or_default().to_owned(),
                    words.next().and_then(|t| t.parse().ok()),
                )
            } else {
                (String::new(), None)
            };
            Answer {
                sent,
                answered,
                status: Some(status),
                pod,
                token,
                text,
            }
        }
        Err(text) => Answer {
            sent,
            answered,
            status: None,
            pod: String::new(),
            token: None,
            text,
        },
    }
}

/// Violations of "tokens never go back": for each answer, one answered earlier (before it was
/// sent) that carried a higher token. Empty when none.
pub fn token_regressions(answers: &[Answer]) -> Vec<(Answer, Answer)> {
    let mut by_answer: Vec<&Answer> = answers.iter().filter(|a| a.token.is_some()).collect();
    by_answer.sort_by_key(|a| a.answered);
    let mut by_send: Vec<&Answer> = by_answer.clone();
    by_send.sort_by_key(|a| a.sent);
    let mut regressions = Vec::new();
    let mut highest: Option<&Answer> = None;
    let mut next = 0;
    for later in by_send {
        while next < by_answer.len() && by_answer[next].answered < later.sent {
            if highest.is_none_or(|h| by_answer[next].token > h.token) {
                highest = Some(by_answer[next]);
            }
            next += 1;
        }
        if let Some(earlier) = highest
            && earlier.token > later.token
        {
            regressions.push((earlier.clone(), later.clone()));
        }
    }
    regressions
}

/// A loopback address no one listens on right now (bound, then released), for a proxy's
/// `--proxy-listen`, whose advertised address must name the real port.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
