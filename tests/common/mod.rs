//! Test bed for end-to-end tests: the simulator in-process, real `kube-elector` processes.
#![allow(dead_code)]

pub use kube_elector_harness::*;
use kube_sim::{Sim, SimOptions};

/// Starts a simulator with these clients.
pub async fn sim(clients: &[&str]) -> Sim {
    Sim::start(SimOptions::new(clients.iter().copied()))
        .await
        .expect("simulator starts")
}

/// Starts this package's `kube-elector` binary as `id`.
pub async fn elector(sim: &Sim, id: &str, extra: &[&str]) -> Elector {
    Elector::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_kube-elector")),
        sim,
        id,
        extra,
    )
    .await
}

/// Like [`elector`], with extra environment variables (e.g. `RUST_LOG`).
pub async fn elector_with_env(sim: &Sim, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Elector {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Elector::start_with_env(
        std::path::Path::new(env!("CARGO_BIN_EXE_kube-elector")),
        sim,
        id,
        extra,
        &env,
    )
    .await
}
