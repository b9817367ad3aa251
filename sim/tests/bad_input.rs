//! Bad input gets the real server's 400/404/413/415/422 `Status` shapes, never a panic.

mod common;

use common::{plain_sim, raw};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// POSTs `body` as JSON to the Lease collection as client `a`.
async fn post_lease(sim: &kube_sim::Sim, body: &[u8]) -> common::Raw {
    raw(
        sim,
        "POST",
        LEASES,
        sim.token("a"),
        Some("application/json"),
        body,
    )
    .await
    .expect("the simulator answers")
}

#[tokio::test]
async fn garbage_json_is_400_with_the_decode_error_shape() {
    let sim = plain_sim(&["a"]).await;
    let r = post_lease(&sim, b"garbage").await;
    assert_eq!(r.status, 400);
    let s = r.json();
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str(), s["code"].as_i64()),
        (Some("Status"), Some("BadRequest"), Some(400))
    );
    assert_eq!(
        s["message"],
        "the object provided is unrecognized (must be of type Lease): couldn't get version/kind; json parse error: invalid character 'g' looking for beginning of value (67617262616765)"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_api_version_or_kind_is_400() {
    let sim = plain_sim(&["a"]).await;
    let body = br#"{"apiVersion":"v1","kind":"Lease","metadata":{"name":"x"}}"#;
    let r = post_lease(&sim, body).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "the API version in the data (v1) does not match the expected API version (coordination.k8s.io/v1)"
    );
    let body = br#"{"apiVersion":"coordination.k8s.io/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#;
    let r = post_lease(&sim, body).await;
    assert_eq!(r.status, 400);
    let msg = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with("ConfigMap in version \"v1\" cannot be handled as a Lease"),
        "got {msg}"
    );
    // A wrongly typed field.
    let body = br#"{"metadata":{"name":"x"},"spec":{"leaseDurationSeconds":"ten"}}"#;
    let r = post_lease(&sim, body).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Lease in version \"v1\" cannot be handled as a Lease:")
    );
    // A MicroTime without six fractional digits.
    let body = br#"{"metadata":{"name":"x"},"spec":{"renewTime":"2024-01-01T00:00:00Z"}}"#;
    let r = post_lease(&sim, body).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("cannot parse \"Z\" as \".000000\""),
        "got {}",
        r.json()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn name_and_namespace_mismatch_are_400() {
    let sim = plain_sim(&["a"]).await;
    let t = sim.token("a");
    let body = br#"{"metadata":{"name":"x"},"spec":{}}"#;
    assert_eq!(
        raw(&sim, "POST", LEASES, t, None, body).await.unwrap().status,
        201
    );
    let r = raw(
        &sim,
        "PUT",
        &format!("{LEASES}/y"),
        t,
        Some("application/json"),
        body,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (
            400,
            Some("the name of the object (x) does not match the name on the URL (y)")
        )
    );
    let body = br#"{"metadata":{"name":"z","namespace":"kube-system"},"spec":{}}"#;
    let r = raw(&sim, "POST", LEASES, t, Some("application/json"), body)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (
            400,
            Some("the namespace of the provided object does not match the namespace sent on the request")
        )
    );
    let r = raw(
        &sim,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/nope/leases",
        t,
        None,
        br#"{"metadata":{"name":"z"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (404, Some("namespaces \"nope\" not found"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let sim = plain_sim(&["a"]).await;
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let r = post_lease(&sim, &big).await;
    assert_eq!(r.status, 413);
    let s = r.json();
    assert_eq!(
        (s["reason"].as_str(), s["message"].as_str()),
        (
            Some("RequestEntityTooLarge"),
            Some("Request entity too large: limit is 3145728")
        )
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let sim = plain_sim(&["a"]).await;
    let t = sim.token("a");
    let r = raw(&sim, "POST", LEASES, t, Some("text/plain"), b"{}")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    raw(&sim, "POST", LEASES, t, None, br#"{"metadata":{"name":"x"}}"#)
        .await
        .unwrap();
    let r = raw(
        &sim,
        "PATCH",
        &format!("{LEASES}/x"),
        t,
        Some("application/apply-patch+yaml"),
        b"{}",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 415, "server-side apply is not offered: {}", r.json());
    let r = raw(
        &sim,
        "PATCH",
        &format!("{LEASES}/x"),
        t,
        Some("application/json"),
        b"{}",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 415);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_status_bodies() {
    let sim = plain_sim(&["a"]).await;
    let t = sim.token("a");
    let r = raw(
        &sim,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        t,
        None,
        b"",
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.json()["kind"].as_str(), r.json()["reason"].as_str()),
        (404, Some("Status"), Some("NotFound"))
    );
    let r = raw(
        &sim,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        None,
        None,
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "unauthenticated requests are 401 before routing");
    let r = raw(&sim, "PUT", LEASES, t, Some("application/json"), b"{}")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_api_round_trip() {
    let sim = plain_sim(&["a"]).await;
    assert_eq!(
        raw(&sim, "GET", "/sim/healthz", None, None, b"")
            .await
            .unwrap()
            .status,
        200
    );
    let r = raw(&sim, "PUT", "/sim/faults/a", None, None, br#"{"latency": 3}"#)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().contains("latency"),
        "the error names the field: {}",
        r.json()
    );
    let r = raw(&sim, "PUT", "/sim/faults/zz", None, None, b"{}")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = raw(
        &sim,
        "PUT",
        "/sim/authz/a",
        None,
        None,
        br#"{"deny": ["get leases"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let r = raw(&sim, "GET", &format!("{LEASES}/x"), sim.token("a"), None, b"")
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let counts = raw(&sim, "GET", "/sim/requests", None, None, b"")
        .await
        .unwrap()
        .json();
    assert_eq!(counts["a"]["get leases"], 1);
    assert_eq!(
        raw(&sim, "DELETE", "/sim/requests", None, None, b"")
            .await
            .unwrap()
            .status,
        200
    );
    let objects = raw(&sim, "GET", "/sim/objects", None, None, b"")
        .await
        .unwrap()
        .json();
    assert_eq!(
        objects.as_array().map(Vec::len),
        Some(1),
        "the client's Pod: {objects}"
    );
    let writes = raw(&sim, "GET", "/sim/writes?since=1", None, None, b"")
        .await
        .unwrap()
        .json();
    assert_eq!(writes.as_array().map(Vec::len), Some(0));
    assert_eq!(
        raw(&sim, "POST", "/sim/compact", None, None, b"")
            .await
            .unwrap()
            .status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_needs_a_token_and_version_does_not() {
    let sim = plain_sim(&["a"]).await;
    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/coordination.k8s.io/v1",
        "/openapi/v3",
    ] {
        let r = raw(&sim, "GET", path, None, None, b"").await.expect("answers");
        assert_eq!(r.status, 401, "{path} without a token");
        let r = raw(&sim, "GET", path, sim.token("a"), None, b"")
            .await
            .expect("answers");
        assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = raw(&sim, "GET", "/api", sim.token("a"), None, b"")
        .await
        .expect("answers");
    assert_eq!(r.json()["kind"], "APIVersions", "no Accept: the legacy form");
    let r = raw(&sim, "GET", "/apis/apps/v1", sim.token("a"), None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 404, "a group kube-sim does not serve");
    let r = raw(&sim, "GET", "/version", None, None, b"")
        .await
        .expect("answers");
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn field_validation_directives_and_dry_run() {
    let sim = plain_sim(&["a"]).await;
    let body = br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"x"},"spec":{"holderIdentity":"a","bogus":1}}"#;
    let post = |query: &'static str| {
        let sim = &sim;
        async move {
            raw(
                sim,
                "POST",
                &format!("{LEASES}{query}"),
                sim.token("a"),
                Some("application/json"),
                body,
            )
            .await
            .expect("answers")
        }
    };
    let r = post("?fieldValidation=Strict").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        r#"Lease in version "v1" cannot be handled as a Lease: strict decoding error: unknown field "spec.bogus""#
    );
    let r = post("?fieldValidation=strict").await;
    assert_eq!(r.status, 400, "directives are case-sensitive");
    let r = post("?dryRun=All").await;
    assert_eq!(r.status, 400);
    assert!(
        sim.objects().iter().all(|o| o["kind"] != "Lease"),
        "nothing written by a refused dry run"
    );
    let r = post("").await;
    assert_eq!(r.status, 201, "Warn is the default: created");
    assert_eq!(
        r.header("warning"),
        Some(r#"299 - "unknown field \"spec.bogus\"""#)
    );
    let r = raw(
        &sim,
        "DELETE",
        &format!("{LEASES}/x"),
        sim.token("a"),
        Some("application/json"),
        br#"{"propagationPolicy":"Sometimes"}"#,
    )
    .await
    .expect("answers");
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": supported values: "Foreground", "Background", "Orphan", "nil""#
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn protobuf_bodies_bad_or_of_kinds_not_decoded() {
    let sim = plain_sim(&["a"]).await;
    let pb = Some("application/vnd.kubernetes.protobuf");
    let r = raw(&sim, "POST", LEASES, sim.token("a"), pb, b"{}")
        .await
        .expect("answers");
    assert_eq!(r.status, 400);
    let msg = r.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        msg.starts_with("the object provided is unrecognized (must be of type Lease): "),
        "{msg}"
    );
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/pods",
        sim.token("a"),
        pb,
        b"k8s\0",
    )
    .await
    .expect("answers");
    assert_eq!(r.status, 415);
    assert_eq!(
        r.json()["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
    );
    sim.shutdown().await;
}
