//! Kubernetes mode: what strait needs to run inside real clusters.
//!
//! - [`inject`]: the sidecar injector, a mutating admission webhook that adds the `istio-proxy`
//!   sidecar (strait's proxy) and the `istio-init` capture container to new pods, deciding
//!   which pods exactly as `strait analyze` predicts.

#![forbid(unsafe_code)]

pub mod inject;
