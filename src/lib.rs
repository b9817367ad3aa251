//! kube-elector: a leader-election sidecar for Kubernetes.
//!
//! One process per pod competes for a lock object (a `coordination.k8s.io/v1` Lease by default)
//! and publishes what it knows on a watch channel ([`status`]); the HTTP surface, the leader file,
//! the pod label and the metrics read that channel and nothing else.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod election;
pub mod endpoint_slice;
pub mod http;
pub mod leader_file;
pub mod metrics;
pub mod pod_deletion_cost;
pub mod pod_label;
pub mod process_metrics;
pub mod status;
