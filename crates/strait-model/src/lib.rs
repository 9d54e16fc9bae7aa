//! The mesh model.
//!
//! [`build`] turns read input (one or several clusters of manifests, plus `mesh.yaml`) into a
//! [`Mesh`]: clusters with their effective mesh config and the facts their manifests state;
//! workloads from pods, pod templates, WorkloadEntries and operator-installed gateways, each
//! with its sidecar-injection verdict ([`injection::decide`], which the injector webhook calls
//! too) and network; services merged across clusters by hostname; networks with their
//! gateways; and the trust material (plug-in CAs, remote secrets). It also holds Istio's
//! matching rules ([`host`], [`selector`], [`protocol`]).
//!
//! Everything here is pure: no I/O, no async. The analyzer reads the model; the control plane
//! compiles proxy configuration from it.

mod build;
pub mod cluster;
pub mod compile;
pub mod destination;
pub mod gateway;
pub mod gateway_api;
pub mod host;
pub mod identity;
mod ids;
pub mod index;
pub mod ingress;
pub mod injection;
pub mod locality;
mod mesh;
pub mod network;
pub mod peer_auth;
pub mod protocol;
pub mod scope;
pub mod selector;
pub mod service;
pub mod trust;
pub mod unsupported;
pub mod workload;

pub use build::{BuildOptions, build};
pub use cluster::{Cluster, Fact, Facts};
pub use ids::{ClusterId, ObjId, ServiceId, WorkloadId};
pub use mesh::{Layout, Mesh};
pub use network::{Network, NetworkGateway};
pub use protocol::Protocol;
pub use service::{Registry, ServiceInstance, ServiceSource};
pub use workload::{GatewayRole, Injection, Workload, WorkloadKind};

pub use strait_api::layout::is_dns_label;
