//! Drives the simulator with the `kube` crate through generated kubeconfigs over HTTPS: CRUD,
//! optimistic concurrency, error bodies, and authentication/authorization.

mod common;

use std::collections::BTreeMap;

use common::{api_err, client, lease, leases, sim};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

#[tokio::test]
async fn lease_crud_over_https() {
    let sim = sim(&["a"]).await;
    assert!(sim.url().starts_with("https://127.0.0.1:"), "got {}", sim.url());
    let api = leases(&client(&sim, "a").await);

    let created = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        created.metadata.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid: {:?}",
        created.metadata.uid
    );
    assert!(created.metadata.creation_timestamp.is_some());

    let mut got = api.get("lock").await.unwrap();
    assert_eq!(got.spec.as_ref().unwrap().holder_identity.as_deref(), Some("a"));
    let renew = jiff::Timestamp::from_microsecond(1_700_000_000_123_456).unwrap();
    got.spec.as_mut().unwrap().renew_time = Some(MicroTime(renew));
    let replaced = api.replace("lock", &PostParams::default(), &got).await.unwrap();
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion must grow: {rv1} then {rv2}");
    assert_eq!(
        replaced.spec.unwrap().renew_time,
        Some(MicroTime(renew)),
        "MicroTime round-trips to the microsecond"
    );

    // The stored wire format is the real one: six fractional digits, Z.
    let stored = sim.objects().into_iter().find(|o| o["kind"] == "Lease").unwrap();
    assert_eq!(stored["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");

    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(rv2.to_string().as_str())
    );

    api.delete("lock", &DeleteParams::default()).await.unwrap();
    let (code, reason, message) = api_err(api.get("lock").await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, "leases.coordination.k8s.io \"lock\" not found");
    sim.shutdown().await;
}

#[tokio::test]
async fn configmap_crud_and_patch() {
    let sim = sim(&["a"]).await;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client(&sim, "a").await, "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cfg".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm).await.unwrap();
    let patched = api
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k2": "v2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap().len(), 2);
    let mut cur = api.get("cfg").await.unwrap();
    cur.data = Some(BTreeMap::from([("only".to_owned(), "x".to_owned())]));
    let replaced = api.replace("cfg", &PostParams::default(), &cur).await.unwrap();
    assert_eq!(replaced.data.unwrap().keys().collect::<Vec<_>>(), vec!["only"]);
    api.delete("cfg", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(api.get("cfg").await).0, 404);
    // ConfigMaps do not create on update.
    let (code, _, msg) = api_err(api.replace("cfg", &PostParams::default(), &cm).await);
    assert_eq!((code, msg.as_str()), (404, "configmaps \"cfg\" not found"));
    sim.shutdown().await;
}

#[tokio::test]
async fn pods_exist_per_client_and_take_label_patches() {
    let sim = sim(&["a", "b"]).await;
    let api: kube::Api<Pod> = kube::Api::namespaced(client(&sim, "a").await, "default");
    let pods = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = pods
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    let patch = serde_json::json!({"metadata": {"labels": {"leader": "true"}}});
    let p = api
        .patch("a", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["leader"], "true");
    assert_eq!(
        p.metadata.generation,
        Some(1),
        "a metadata-only patch does not bump a Pod's generation"
    );
    let selected = api
        .list(&ListParams::default().labels("leader=true"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn conflict_already_exists_and_invalid_bodies() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let first = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();

    let (code, reason, msg) = api_err(api.create(&PostParams::default(), &lease("lock", "a")).await);
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (
            409,
            "AlreadyExists",
            "leases.coordination.k8s.io \"lock\" already exists"
        )
    );

    let mut next = first.clone();
    next.spec.as_mut().unwrap().holder_identity = Some("x".into());
    api.replace("lock", &PostParams::default(), &next).await.unwrap();
    // `first` now carries a stale resourceVersion.
    let (code, reason, msg) = api_err(api.replace("lock", &PostParams::default(), &first).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        msg,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Leases refuse an update without resourceVersion (AllowUnconditionalUpdate is false).
    let mut blind = lease("lock", "y");
    blind.metadata.resource_version = None;
    let (code, reason, msg) = api_err(api.replace("lock", &PostParams::default(), &blind).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        msg,
        "leases.coordination.k8s.io \"lock\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );

    let mut bad = lease("bad", "a");
    bad.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    let (code, reason, msg) = api_err(api.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        msg,
        "Lease.coordination.k8s.io \"bad\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
    let (code, reason, _) = api_err(
        api.create(&PostParams::default(), &lease("Not_A_Name", "a"))
            .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    sim.shutdown().await;
}

#[tokio::test]
async fn racing_updates_from_one_version_have_exactly_one_winner() {
    let sim = sim(&["a", "b"]).await;
    let (ca, cb) = (client(&sim, "a").await, client(&sim, "b").await);
    let (la, lb) = (leases(&ca), leases(&cb));
    la.create(&PostParams::default(), &lease("race", "nobody"))
        .await
        .unwrap();
    let rounds = 300;
    let mut tasks = tokio::task::JoinSet::new();
    // Several rounds in flight at once, each on its own lease, two racers per round.
    for r in 0..rounds {
        let (la, lb) = (la.clone(), lb.clone());
        tasks.spawn(async move {
            let name = format!("race-{r}");
            let base = la
                .create(&PostParams::default(), &lease(&name, "nobody"))
                .await
                .unwrap();
            let mut ma = base.clone();
            ma.spec.as_mut().unwrap().holder_identity = Some("a".into());
            let mut mb = base.clone();
            mb.spec.as_mut().unwrap().holder_identity = Some("b".into());
            let pa = PostParams::default();
            let pb = PostParams::default();
            let (ra, rb) = tokio::join!(la.replace(&name, &pa, &ma), lb.replace(&name, &pb, &mb));
            let wins = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
            for r in [&ra, &rb] {
                if let Err(e) = r {
                    assert!(
                        matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
                        "loser must get 409 Conflict, got {e:?}"
                    );
                }
            }
            let stored = la.get(&name).await.unwrap();
            let winner = if ra.is_ok() { "a" } else { "b" };
            assert_eq!(
                stored.spec.unwrap().holder_identity.as_deref(),
                Some(winner),
                "stored holder must be the winner's"
            );
            wins
        });
    }
    let mut total = 0;
    while let Some(w) = tasks.join_next().await {
        let wins = w.unwrap();
        assert_eq!(wins, 1, "expected exactly one winner per round, got {wins}");
        total += 1;
    }
    assert_eq!(total, rounds);
    sim.shutdown().await;
}

#[tokio::test]
async fn unauthorized_and_forbidden() {
    let sim = sim(&["a"]).await;
    let c = client(&sim, "a").await;
    let api = leases(&c);
    sim.deny("a", "update", "leases");
    let created = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    let (code, reason, msg) = api_err(api.replace("lock", &PostParams::default(), &created).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        msg,
        "leases.coordination.k8s.io \"lock\" is forbidden: User \"system:serviceaccount:default:a\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
    );
    sim.allow_all("a");
    api.replace("lock", &PostParams::default(), &created)
        .await
        .unwrap();

    // A kubeconfig with a wrong token.
    let text = std::fs::read_to_string(sim.kubeconfig_path("a")).unwrap();
    let token = sim.token("a").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad_path = dir.path().join("bad.kubeconfig");
    std::fs::write(&bad_path, text.replace(token, "not-a-token")).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&bad_path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let bad = leases(&kube::Client::try_from(cfg).unwrap());
    let (code, reason, msg) = api_err(bad.get("lock").await);
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn accounting_counts_every_request() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    api.create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    let _ = api.get("lock").await;
    let _ = api.get("missing").await;
    let counts = sim.requests();
    assert_eq!(counts["a"]["create leases"], 1, "got {counts:?}");
    assert_eq!(
        counts["a"]["get leases"], 2,
        "failed requests count too: {counts:?}"
    );
    let writes = sim.writes();
    let last = writes.last().unwrap();
    assert_eq!(
        (last.client.as_str(), last.verb.as_str(), last.name.as_str()),
        ("a", "create", "lock")
    );
    assert!(last.monotonic_ns > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lease_update_carrying_the_uid_of_a_deleted_lease_conflicts_instead_of_creating_it() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let created = api
        .create(&PostParams::default(), &lease("l", "a"))
        .await
        .unwrap();
    api.delete("l", &DeleteParams::default()).await.unwrap();
    // A stale writer: the object it read, with its uid and resourceVersion.
    let (code, reason, msg) = api_err(api.replace("l", &PostParams::default(), &created).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"), "{msg}");
    assert!(msg.contains("Precondition failed: UID in precondition"), "{msg}");
    assert_eq!(
        api_err(api.get("l").await).0,
        404,
        "the lease was not created again"
    );
    // Without a uid, a Lease is still created on update.
    let mut fresh = lease("l", "a");
    fresh.metadata.uid = None;
    fresh.metadata.resource_version = None;
    api.replace("l", &PostParams::default(), &fresh).await.unwrap();
    assert!(api.get("l").await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn metadata_only_get_and_list_as_kube_asks_for_them() {
    let sim = common::sim(&["a"]).await;
    let c = common::client(&sim, "a").await;
    let api = common::leases(&c);
    let created = api
        .create(&Default::default(), &common::lease("meta", "a"))
        .await
        .expect("created");
    // kube sends `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`.
    let got = api.get_metadata("meta").await.expect("metadata answered");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(
        got.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .expect("metadata list answered");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    assert_eq!(names, ["meta"]);
}

#[tokio::test]
async fn endpoint_slices_follow_the_real_registry_strategy() {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
    let sim = sim(&["a"]).await;
    let api: kube::Api<EndpointSlice> = kube::Api::namespaced(client(&sim, "a").await, "default");
    let slice = |address_type: &str, address: &str| EndpointSlice {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: vec![Endpoint {
            addresses: vec![address.into()],
            ..Default::default()
        }],
        ports: None,
    };

    // AllowCreateOnUpdate is false: a PUT of an absent slice is 404, not a create.
    let absent = api_err(
        api.replace("web", &PostParams::default(), &slice("IPv4", "10.0.0.1"))
            .await,
    );
    assert_eq!(absent.0, 404, "{absent:?}");
    let created = api
        .create(&PostParams::default(), &slice("IPv4", "10.0.0.1"))
        .await
        .unwrap();
    let stale_rv = created.metadata.resource_version.clone();

    // AllowUnconditionalUpdate is true: a PUT without resourceVersion overwrites.
    let replaced = api
        .replace("web", &PostParams::default(), &slice("IPv4", "10.0.0.2"))
        .await
        .unwrap();
    assert_eq!(replaced.endpoints[0].addresses, ["10.0.0.2"]);

    // A PUT with a stale resourceVersion is a conflict.
    let mut stale = slice("IPv4", "10.0.0.3");
    stale.metadata.resource_version = stale_rv;
    let conflict = api_err(api.replace("web", &PostParams::default(), &stale).await);
    assert_eq!(
        (conflict.0, conflict.1.as_str()),
        (409, "Conflict"),
        "{conflict:?}"
    );

    // addressType is immutable; addresses must be of the type.
    let changed = api_err(
        api.replace("web", &PostParams::default(), &slice("IPv6", "fd00::1"))
            .await,
    );
    assert_eq!(changed.0, 422, "{changed:?}");
    assert!(
        changed
            .2
            .contains("addressType: Invalid value: \"IPv6\": field is immutable"),
        "{changed:?}"
    );
    let wrong = api_err(
        api.replace("web", &PostParams::default(), &slice("IPv4", "fd00::1"))
            .await,
    );
    assert!(wrong.2.contains("must be a valid IPv4 address"), "{wrong:?}");
    sim.shutdown().await;
}
