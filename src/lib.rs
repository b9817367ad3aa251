//! kube-elector: a leader-election sidecar for Kubernetes.
//!
//! One process per pod competes for a lock object (a `coordination.k8s.io/v1` Lease by default)
//! and publishes what it knows on a watch channel ([`status`]); the HTTP surface, the leader file,
//! the pod label and the metrics read that channel and nothing else.
// `deny`, not `forbid`: exec mode sets the child's parent-death signal between fork and exec
// (`CommandExt::pre_exec`, an unsafe API), allowed in that one place (`exec::process::spawn`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app_health;
pub mod clock;
pub mod config;
pub mod election;
pub mod endpoint_slice;
pub mod exec;
pub mod http;
pub mod leader_file;
mod leadership_output;
pub mod metrics;
pub mod pod_deletion_cost;
pub mod pod_label;
pub mod process_metrics;
pub mod status;
