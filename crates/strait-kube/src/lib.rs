//! strait on Kubernetes.
//!
//! - [`install`] renders the manifests that put strait into one cluster of a mesh (pure
//!   functions from options to objects; applying them is `kubectl`'s job), including the
//!   CustomResourceDefinitions of every Istio kind strait reads, generated from strait's own
//!   types.
//! - [`remote_secret`] writes the Secret that lets one cluster's control plane read another
//!   cluster's API server, in istioctl's format.
//! - [`client`] builds API clients (in-cluster, kubeconfig contexts, remote secrets) and keeps
//!   one per cluster ID; [`objects`] names what strait reads from an API server and turns it
//!   into the same input a mesh directory gives.
//! - [`source`]: the control plane's configuration source in Kubernetes mode, watches of the
//!   own cluster and of every cluster its remote secrets name, read as one mesh.
//! - [`control`]: the control plane in a pod: bootstrap tokens checked by TokenReview, leader
//!   election on a Lease, and the `istio-ca-root-cert` ConfigMap in every namespace.
//! - [`read`] reads a whole mesh from its clusters' API servers, once, into that input (what
//!   `strait analyze --context ...` analyzes).
//! - [`inject`]: the sidecar injector, a mutating admission webhook that adds the `istio-proxy`
//!   sidecar (strait's proxy) and the `istio-init` capture container to new pods, deciding
//!   which pods exactly as `strait analyze` predicts.

#![forbid(unsafe_code)]

pub mod client;
pub mod control;
pub mod inject;
pub mod install;
pub mod objects;
pub mod read;
pub mod remote_secret;
pub mod source;
