//! Accounting sees everything that reaches the listener: a bare connection, a request without a
//! token, a request outside the API; only the admin API (the observer's channel) is left out.

mod common;

use std::time::Duration;

use common::{plain_sim, raw};
use kube_sim::accounting::ANONYMOUS;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// Waits until the simulator has accepted `n` connections.
async fn connections_reach(sim: &kube_sim::Sim, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim.connections() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} connections counted, have {}",
            sim.connections()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_connection_and_request_is_counted_authenticated_or_not() {
    let sim = plain_sim(&["a"]).await;
    assert_eq!(sim.connections(), 0, "nothing has connected yet");
    assert!(sim.requests().is_empty());

    // A client that connects and sends nothing still reached the API server.
    let addr = sim.url().trim_start_matches("http://").to_owned();
    drop(tokio::net::TcpStream::connect(&addr).await.expect("connects"));
    connections_reach(&sim, 1).await;
    assert!(
        sim.requests().is_empty(),
        "no request was sent: {:?}",
        sim.requests()
    );

    // Without a token: counted as the anonymous user, by verb and resource.
    let r = raw(&sim, "GET", &format!("{LEASES}/x"), None, None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 401);
    // With an unknown token: the same.
    let r = raw(&sim, "GET", LEASES, Some("not-a-token"), None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 401);
    // Outside the API, with and without a token: by method and path.
    let r = raw(&sim, "GET", "/version", None, None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 200);
    let r = raw(&sim, "GET", "/nowhere", sim.token("a"), None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 404);
    // The admin API is not counted: it is how a test observes the simulator.
    let r = raw(&sim, "GET", "/sim/requests", None, None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 200);

    let counts = sim.requests();
    assert_eq!(counts[ANONYMOUS]["get leases"], 1, "{counts:?}");
    assert_eq!(counts[ANONYMOUS]["list leases"], 1, "{counts:?}");
    assert_eq!(counts[ANONYMOUS]["GET /version"], 1, "{counts:?}");
    assert_eq!(counts["a"]["GET /nowhere"], 1, "{counts:?}");
    assert_eq!(
        counts.values().map(|c| c.values().sum::<u64>()).sum::<u64>(),
        4,
        "exactly the four non-admin requests: {counts:?}"
    );
    assert_eq!(sim.connections(), 6, "one bare connection and five requests");

    sim.reset_requests();
    assert_eq!((sim.connections(), sim.requests().len()), (0, 0));
    sim.shutdown().await;
}
