//! A stand-in application with a health endpoint whose answer a test flips: what
//! `--app-health` checks in the end-to-end tests and the live fleet.
//!
//! Every request on its port is answered `200 ok` while healthy and `503 unhealthy` otherwise,
//! and counted, so a test can wait for a number of checks instead of sleeping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running stand-in application; stops when dropped.
#[derive(Debug)]
pub struct StandInApp {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl StandInApp {
    /// Serves on a free loopback port, healthy or not from the start.
    pub async fn start(healthy: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let healthy = Arc::new(AtomicBool::new(healthy));
        let requests = Arc::new(AtomicU64::new(0));
        let (flag, count) = (healthy.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (flag, count) = (flag.clone(), count.clone());
                tokio::spawn(async move {
                    // One request per connection; its head fits in one read for a GET.
                    let mut buffer = [0u8; 2048];
                    if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = if flag.load(Ordering::SeqCst) {
                        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                    } else {
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\nConnection: close\r\n\r\nunhealthy\n"
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            healthy,
            requests,
            task,
        })
    }

    /// Where it listens: what `--proxy-upstream` names.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give `--app-health`.
    pub fn url(&self) -> String {
        format!("http://{}/healthz", self.addr)
    }

    /// Answers 200 (`true`) or 503 (`false`) from the next request on.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for StandInApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
