//! Connection floods against an elector's HTTP port, for the flood test and `make load`: many
//! idle or slow-header connections, each reopened as soon as the server closes it or after a
//! short hold, so the server sees a continuous stream of new connections on top of the held ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// What each flood connection does once connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodKind {
    /// Sends nothing.
    Idle,
    /// Sends a request line, then one header line every 200 ms, never finishing the head.
    SlowHeader,
}

/// A running flood, on its own thread and runtime so that it cannot starve the measuring side's
/// tasks (a prober sharing a runtime with 1,000 flood tasks measures its own queueing).
pub struct Flood {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    opened: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Flood {
    /// Holds `connections` connections to `addr` from the loopback address `source` (another
    /// "pod" than the prober's 127.0.0.1, as in a cluster, where the kubelet probes from the
    /// node's address); each is reopened when the server closes it, or after `hold` (so the flood
    /// is refreshed continuously), whichever comes first.
    pub fn start(
        addr: SocketAddr,
        source: IpAddr,
        connections: usize,
        kind: FloodKind,
        hold: Duration,
    ) -> Flood {
        let opened = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counters = (opened.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let (opened, failed) = counters;
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                let mut tasks = JoinSet::new();
                spawn_slots(
                    &mut tasks,
                    addr,
                    source,
                    connections,
                    kind,
                    hold,
                    &opened,
                    &failed,
                );
                let _ = stopped.await;
                tasks.shutdown().await;
            });
        });
        Flood {
            stop: Some(stop),
            thread: Some(thread),
            opened,
            failed,
        }
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connection attempts that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Closes every connection and waits for the flood's thread to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_slots(
    tasks: &mut JoinSet<()>,
    addr: SocketAddr,
    source: IpAddr,
    connections: usize,
    kind: FloodKind,
    hold: Duration,
    opened: &Arc<AtomicU64>,
    failed: &Arc<AtomicU64>,
) {
    {
        for slot in 0..connections {
            let (opened, failed) = (opened.clone(), failed.clone());
            // Spread the slots' hold times so reopening is continuous rather than in waves.
            let hold = hold + hold.mul_f64((slot % 100) as f64 / 100.0);
            tasks.spawn(async move {
                loop {
                    let Ok(mut stream) = connect_from(source, addr).await else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let held = async {
                        let mut buf = [0u8; 256];
                        match kind {
                            FloodKind::Idle => {
                                // Returns when the server closes the connection.
                                while let Ok(n) = stream.read(&mut buf).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            }
                            FloodKind::SlowHeader => {
                                if stream.write_all(b"GET /readyz HTTP/1.1\r\n").await.is_err() {
                                    return;
                                }
                                loop {
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    };
                    let _ = tokio::time::timeout(hold, held).await;
                }
            });
        }
    }
}

/// A connection to `addr` from `source` (port chosen by the kernel).
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Raises this process's soft limit on open files to at least `want` (capped at the hard limit),
/// so a flood of `want` connections does not run out of descriptors; returns the soft limit now.
pub fn raise_fd_limit(want: u64) -> u64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= want {
        return current;
    }
    let target = limit.maximum.map_or(want, |max| max.min(want));
    let raised = rustix::process::Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => current,
    }
}
