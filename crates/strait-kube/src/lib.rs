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
//! - [`read`] reads a whole mesh from its clusters' API servers, once, into that input (what
//!   `strait analyze --context ...` analyzes).
//! - [`inject`]: the sidecar injector, a mutating admission webhook that adds the `istio-proxy`
//!   sidecar (strait's proxy) and the `istio-init` capture container to new pods, deciding
//!   which pods exactly as `strait analyze` predicts.

#![forbid(unsafe_code)]

pub mod client;
pub mod inject;
pub mod install;
pub mod objects;
pub mod read;
pub mod remote_secret;
