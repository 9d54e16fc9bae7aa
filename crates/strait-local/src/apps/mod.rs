//! Built-in sample apps, so that a mesh directory written for Kubernetes runs locally
//! without container images.
//!
//! A Deployment's container image picks the app ([`AppKind::from_image`]); each replica
//! runs one app as its own process (`strait app ...`), listening on the pod's app address.
//! Apps are plain HTTP/1.1 and h2c servers: the sidecar in front of them does mTLS.
//!
//! - `helloworld`: Istio's `samples/helloworld`: `GET /hello` says version and pod.
//! - `echo`: answers any request with JSON describing itself and the request, and can call
//!   onward (`?call=URL`, or always the URLs of the pod's `strait.dev/calls` annotation)
//!   through its sidecar, embedding the answers, so a multi-hop request shows every hop.
//! - `sleep`: no server; a pod to run commands in, like Istio's `samples/sleep`.

use std::net::SocketAddr;

use crate::stop::Stop;

mod echo;
mod helloworld;
mod kind;
mod onward;
mod server;

pub use kind::{APP_ANNOTATION, AppKind, CALLS_ANNOTATION, UnknownApp, image_version};

/// Who an app is. Every field is reported by `echo`; `helloworld` uses `version` and `pod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    /// Where the app's server listens (the pod's app address and container port).
    pub listen: SocketAddr,
    /// Pod name, e.g. `helloworld-v1-7d9f4-abcde`.
    pub pod: String,
    pub namespace: String,
    /// The cluster the pod runs in, as named in `mesh.yaml`.
    pub cluster: String,
    /// The owning workload (Deployment) name.
    pub workload: String,
    /// The `version` label, e.g. `v1`.
    pub version: String,
    pub service_account: String,
    /// SPIFFE trust domain; Istio's default is `cluster.local`.
    pub trust_domain: String,
    /// Who may connect, and the address the app's own connections leave from (its pod's).
    pub reach: strait_net::Reach,
    /// URLs `echo` calls on every request, through its sidecar, embedding the answers (the
    /// [`CALLS_ANNOTATION`]).
    pub calls: Vec<String>,
}

impl AppConfig {
    /// The workload's SPIFFE ID, as its sidecar's certificate carries it.
    pub fn identity(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

/// An app could not start. Both are configuration errors: retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {var}={value:?}: {reason}")]
    Proxy {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Runs the app until `stop` fires, then stops accepting, lets requests in flight finish
/// (for up to 5 seconds) and returns.
pub async fn run(kind: AppKind, cfg: AppConfig, stop: Stop) -> Result<(), AppError> {
    match kind {
        AppKind::Helloworld => helloworld::run(cfg, stop).await,
        AppKind::Echo => {
            let onward = onward::Onward::from_env()?.leaving_from(cfg.reach.clone());
            echo::run(cfg, onward, stop).await
        }
        AppKind::Sleep => {
            stop.wait().await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
