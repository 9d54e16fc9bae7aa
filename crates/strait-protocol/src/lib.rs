//! The control-plane protocol: the `Discovery` stream (incremental, versioned config with
//! ACK/NACK) and the `Certificates` signing service, both served on port 15012 over mTLS.
//! Types and gRPC stubs are generated from `proto/strait.proto`; the resources a response
//! carries are the typed `strait.config.v1` messages of `strait_config::proto`, so this crate
//! holds no business logic.
//! [`http_admin`] serves the plain-HTTP operator endpoints both sides expose (the proxy's
//! admin port, the control plane's debug port), which the CLI reads.

#![allow(clippy::all, missing_debug_implementations)]

pub mod http_admin;

/// Generated types and stubs for `strait.v1`.
pub mod v1 {
    tonic::include_proto!("strait.v1");
}

/// gRPC metadata key carrying the bootstrap token (`Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";
/// gRPC metadata key naming the caller's cluster (as Istio's `ClusterID`).
pub const CLUSTER_ID: &str = "clusterid";
