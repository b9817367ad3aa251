//! Write throughput of the simulator over HTTPS: Lease updates per second with 1 and with 8
//! concurrent clients, each updating its own Lease through `kube` (get once, then replace with
//! the returned resourceVersion). Run with
//! `cargo run --release -p kube-sim --example write_bench`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{Sim, SimOptions};

const RUN: Duration = Duration::from_secs(5);

async fn client(sim: &Sim, name: &str) -> anyhow::Result<kube::Api<Lease>> {
    let kc = Kubeconfig::read_from(sim.kubeconfig_path(name))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Api::namespaced(kube::Client::try_from(cfg)?, "default"))
}

async fn worker(api: kube::Api<Lease>, name: String) -> anyhow::Result<u64> {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.clone()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let mut cur = api.create(&PostParams::default(), &lease).await?;
    let start = tokio::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        let spec = cur.spec.get_or_insert_with(LeaseSpec::default);
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        cur = api.replace(&name, &PostParams::default(), &cur).await?;
        n += 1;
    }
    Ok(n)
}

async fn run(concurrency: usize) -> anyhow::Result<f64> {
    let names: Vec<String> = (0..concurrency).map(|i| format!("c{i}")).collect();
    let sim = Sim::start(SimOptions::new(names.clone())).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let api = client(&sim, &name).await?;
        tasks.spawn(worker(api, format!("bench-{name}")));
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    sim.shutdown().await;
    Ok(total as f64 / RUN.as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for c in [1, 8] {
        let rate = run(c).await?;
        println!("{c} concurrent client(s): {rate:.0} updates/s over HTTPS");
    }
    Ok(())
}
