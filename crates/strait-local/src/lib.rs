//! Local mode: a whole mesh on one machine, every part its own OS process on loopback.
//!
//! `strait up DIR` turns each cluster's control plane, each gateway, each workload
//! replica's sidecar and the application itself into a child process. Each "pod" gets two
//! loopback addresses: one where its sidecar accepts mTLS (the pod's mesh address) and one
//! where its app listens, so many apps can share a port as they would in Kubernetes. Apps
//! reach the mesh through their sidecar as an HTTP proxy (`HTTP_PROXY`), since there is
//! no iptables to capture their traffic.
//!
//! This crate holds the foundations of that:
//! - [`apps`]: the built-in sample apps (helloworld, echo, sleep) a Deployment runs when
//!   its image names one, so no container runtime is needed.
//! - [`process`]: spawning children that die with their supervisor, even a SIGKILLed one
//!   (stdin is their lifeline), with their output prefixed and kept for error reports.
//! - [`stop`]: the one stop signal every long-running task here listens to.
//! - [`up`]: planning, starting and supervising a mesh, and the state file other commands
//!   read to find its parts; [`fetch`] reads their operator endpoints.
//! - [`observe`]: a live picture of a running mesh (topology, traffic between workloads from
//!   the proxies' metrics), for `strait dashboard`.

pub mod apps;
pub mod fetch;
pub mod observe;
pub mod process;
pub mod stop;
pub mod up;
