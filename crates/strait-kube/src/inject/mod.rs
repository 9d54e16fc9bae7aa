//! The sidecar injector: a mutating admission webhook that puts new pods in the mesh.
//!
//! # The mental model
//!
//! ```text
//!  kubectl apply ─► API server ─► POST https://istiod.istio-system.svc:443/inject  (→ 15017)
//!                                   │ AdmissionReview{request{uid, Pod}}
//!                                   ▼
//!           decide: strait_model::injection::decide      ◄── the same call `strait analyze` makes
//!                                   │ Sidecar | Gateway | Skip | AlreadyInjected
//!                                   ▼
//!           JSON Patch: labels, annotations, istio-init, istio-proxy, volumes
//!                                   │
//!  API server ◄── AdmissionReview{response{uid, allowed, patchType: JSONPatch, patch}}
//! ```
//!
//! One decision function serves the webhook and the analyzer, so what `strait analyze`
//! predicts for a manifest is what the webhook does with its pods. The webhook only adds to a
//! pod; a pod it already injected (`sidecar.istio.io/status`) is left as it is, so a review
//! sent twice changes nothing.
//!
//! - [`Config`]: what the injector injects (image, revision, cluster, network, Kubernetes
//!   version for native sidecars), and [`namespaces`]: the namespace labels it selects by,
//!   watched.
//! - [`review`]: one AdmissionReview in, one out; [`mutate`] and [`decision`] below it.
//! - [`ServingCert`], [`ca_bundle`], [`dns_names`]: TLS, signed by the mesh's CA.
//! - [`serve`]: the HTTPS server with its [`Limits`].
//! - [`webhook_patch`]: keeps the MutatingWebhookConfiguration's `caBundle` equal to the
//!   roots the serving certificate chains to, through the Kubernetes API.

mod config;
pub mod fuzzing;
pub(crate) mod meta;
mod mutate;
pub mod namespaces;
mod patch;
mod review;
mod server;
mod sidecar;
mod tls;
pub mod webhook_patch;

pub use config::{Config, ConfigError};
pub use mutate::{Decision, Outcome, decision, mutate};
pub use patch::{Op, Patch};
pub use review::{ReviewError, ReviewResponse, review};
pub use server::{Limits, serve};
pub use sidecar::BootstrapEnv;
pub use tls::{ServingCert, TlsError, ca_bundle, dns_names};
