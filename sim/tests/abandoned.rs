//! A request whose client hangs up before the answer: abandoned by default, applied anyway with
//! the `complete_abandoned` fault (the real API server can do either with a write whose client
//! disconnects; the client cannot tell which).

mod common;

use std::time::Duration;

use common::{plain_sim, raw};
use kube_sim::Fault;
use tokio::io::AsyncWriteExt;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

fn lease_body(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}"}},"spec":{{"holderIdentity":"a"}}}}"#
    )
}

/// Sends a create of Lease `name` as client `a` and hangs up without reading the answer, once
/// the simulator has counted the request.
async fn create_and_hang_up(sim: &kube_sim::Sim, name: &str) {
    let before = sim
        .requests()
        .get("a")
        .and_then(|c| c.get("create leases").copied())
        .unwrap_or(0);
    let addr = sim.url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connects");
    let body = lease_body(name);
    let request = format!(
        "POST {LEASES} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        sim.token("a").expect("token"),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("request sent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim
        .requests()
        .get("a")
        .and_then(|c| c.get("create leases").copied())
        .unwrap_or(0)
        == before
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stream);
}

fn created(sim: &kube_sim::Sim, name: &str) -> bool {
    sim.writes().iter().any(|w| w.verb == "create" && w.name == name)
}

#[tokio::test]
async fn a_write_whose_client_hung_up_is_abandoned_unless_told_to_complete() {
    let sim = plain_sim(&["a"]).await;
    let latency = Fault {
        latency_ms: 300,
        verbs: Some(vec!["create".to_owned()]),
        ..Fault::default()
    };

    // Default: the hung-up create is dropped with its connection. A later create with the same
    // latency, answered, proves the first one's time to be applied has passed.
    sim.set_fault("a", latency.clone());
    create_and_hang_up(&sim, "abandoned").await;
    let answered = raw(
        &sim,
        "POST",
        LEASES,
        sim.token("a"),
        Some("application/json"),
        lease_body("marker").as_bytes(),
    )
    .await
    .expect("answers");
    assert_eq!(answered.status, 201);
    assert!(
        !created(&sim, "abandoned"),
        "a hung-up request is not applied by default"
    );

    // complete_abandoned: the same request is applied after its latency, its client gone.
    sim.set_fault(
        "a",
        Fault {
            complete_abandoned: true,
            ..latency
        },
    );
    create_and_hang_up(&sim, "completed").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !created(&sim, "completed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the abandoned create was never applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.shutdown().await;
}
