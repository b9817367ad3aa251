//! Shared fixtures for the integration tests: a simulator, `kube` clients through the generated
//! kubeconfigs, and a raw HTTP/1.1 client for bodies `kube` would never send.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{Sim, SimOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn sim(clients: &[&str]) -> Sim {
    Sim::start(SimOptions::new(clients.iter().copied()))
        .await
        .expect("sim starts")
}

pub async fn plain_sim(clients: &[&str]) -> Sim {
    Sim::start(SimOptions::new(clients.iter().copied()).plain_http(true))
        .await
        .expect("sim starts")
}

pub async fn client(sim: &Sim, name: &str) -> kube::Client {
    let kc = Kubeconfig::read_from(sim.kubeconfig_path(name)).expect("kubeconfig reads");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

pub fn leases(client: &kube::Client) -> kube::Api<Lease> {
    kube::Api::namespaced(client.clone(), "default")
}

pub fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    }
}

/// The `kube::Error::Api` code and reason, or a panic naming what came instead.
pub fn api_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh plain-HTTP connection (`Connection: close`). `Err` when the server
/// closed the connection without an answer.
pub async fn raw(
    sim: &Sim,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Raw, String> {
    let addr = sim.url().trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    // The server may answer (413) before reading a large body; a failed write is fine then.
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    if buf.is_empty() {
        return Err("connection closed without a response".into());
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("bad status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.as_bytes().to_vec()
    };
    Ok(Raw {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest.as_bytes()[..n]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
