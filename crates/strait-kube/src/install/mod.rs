//! The manifests that install strait into one cluster of a mesh.
//!
//! [`render`] is a pure function from [`Options`] to Kubernetes objects (JSON values, in
//! `kubectl apply` order: namespace and CRDs first); [`yaml::to_stream`] writes them. What a
//! cluster gets depends on its role, mirroring Istio's multi-cluster installs (see
//! `docs/ARCHITECTURE.md`, "Installing on Kubernetes"):
//!
//! * every cluster: the `istio-system` namespace (labelled with its network), the CRDs, the
//!   reader service account other clusters' control planes use through a remote secret, the
//!   injector webhook, an east-west gateway and an ingress gateway;
//! * a primary: the control plane (Deployment `istiod`, Service `istiod`, PDB, RBAC), the
//!   cross-network Gateway, and when it serves remotes the Gateway/VirtualService that expose
//!   the control plane through the east-west gateway;
//! * a remote: a Service `istiod` whose endpoint is the primary's east-west gateway, so proxies
//!   and the API server reach the primary's control plane under the name they expect.
//!
//! [`helm::chart`] makes the Helm chart of the same objects from this renderer.

pub mod apply;
pub mod crd;
mod gateways;
pub mod helm;
mod pods;
mod rbac;
pub mod schema;
mod server;
#[cfg(test)]
mod tests;
pub mod validate;
pub(crate) mod webhook;
pub mod yaml;

use serde_json::{Map, Value, json};

/// The namespace everything is installed into: Istio's, so sidecars, remote secrets and
/// `cacerts` are where Istio users put them.
pub const NAMESPACE: &str = "istio-system";

/// The control plane's fixed ports (DESIGN.md §3).
pub mod ports {
    pub const XDS_PLAINTEXT: u16 = 15010;
    pub const XDS_TLS: u16 = 15012;
    pub const MONITORING: u16 = 15014;
    pub const WEBHOOK: u16 = 15017;
    pub const STATUS: u16 = 15021;
    pub const CROSS_NETWORK: u16 = 15443;
    pub const PROXY_STATS: u16 = 15090;
}

/// Where a cluster's proxies get their configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs a control plane. `serves_remotes`: remote clusters reach it through this
    /// cluster's east-west gateway, which then exposes ports 15012 and 15017.
    Primary { serves_remotes: bool },
    /// Configured by a primary's control plane.
    Remote {
        /// The primary's east-west gateway: an IP address or a DNS name.
        primary_address: String,
        /// The primary's cluster name, recorded so that primary (and only it) takes charge
        /// of this cluster; `None`: any primary that reads this cluster may.
        primary_cluster: Option<String>,
    },
}

/// What to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub mesh_id: String,
    /// The cluster's name: Istio's cluster ID, unique in the mesh.
    pub cluster: String,
    /// The cluster's network; empty: one flat network with every other empty one.
    pub network: String,
    pub role: Role,
    pub trust_domain: String,
    /// The strait image for the control plane and the gateways.
    pub image: String,
}

/// The image of this build of strait.
pub fn default_image() -> String {
    format!("ghcr.io/strait-mesh/strait:{}", env!("CARGO_PKG_VERSION"))
}

/// Options that cannot make a valid install.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstallError {
    #[error(
        "cluster name {0:?} is not a DNS label (lowercase letters, digits and '-', at most 63)"
    )]
    ClusterName(String),
    #[error("network {0:?} is not a valid label value")]
    Network(String),
    #[error("mesh ID {0:?} is not a valid label value")]
    MeshId(String),
    #[error("trust domain {0:?} is not a DNS name")]
    TrustDomain(String),
    #[error("the primary's address is empty: give its east-west gateway's IP address or DNS name")]
    NoPrimaryAddress,
    #[error("the primary's address {0:?} is neither an IP address nor a DNS name")]
    PrimaryAddress(String),
    #[error("image {0:?} is empty or contains whitespace")]
    Image(String),
}

impl Options {
    /// Checks what Kubernetes itself would refuse later, so the error names the option.
    pub fn validate(&self) -> Result<(), InstallError> {
        if !strait_api::layout::is_dns_label(&self.cluster) {
            return Err(InstallError::ClusterName(self.cluster.clone()));
        }
        if !self.network.is_empty() && !is_label_value(&self.network) {
            return Err(InstallError::Network(self.network.clone()));
        }
        if !self.mesh_id.is_empty() && !is_label_value(&self.mesh_id) {
            return Err(InstallError::MeshId(self.mesh_id.clone()));
        }
        if !is_dns_name(&self.trust_domain) {
            return Err(InstallError::TrustDomain(self.trust_domain.clone()));
        }
        if self.image.is_empty() || self.image.contains(char::is_whitespace) {
            return Err(InstallError::Image(self.image.clone()));
        }
        if let Role::Remote {
            primary_address, ..
        } = &self.role
        {
            if primary_address.is_empty() {
                return Err(InstallError::NoPrimaryAddress);
            }
            if primary_address.parse::<std::net::IpAddr>().is_err() && !is_dns_name(primary_address)
            {
                return Err(InstallError::PrimaryAddress(primary_address.clone()));
            }
        }
        Ok(())
    }

    fn is_primary(&self) -> bool {
        matches!(self.role, Role::Primary { .. })
    }
}

/// Every object for one cluster, in the order to apply them.
pub fn render(opts: &Options) -> Result<Vec<Value>, InstallError> {
    opts.validate()?;
    let mut out = vec![namespace(opts)];
    out.extend(crd::crds());
    out.extend(rbac::objects(opts));
    out.extend(server::objects(opts));
    out.push(webhook::injector(opts));
    out.extend(gateways::objects(opts));
    Ok(out)
}

fn namespace(opts: &Options) -> Value {
    let mut ns = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": labels("namespace")},
    });
    if !opts.network.is_empty() {
        ns["metadata"]["labels"]["topology.istio.io/network"] = json!(opts.network);
    }
    if let Role::Remote {
        primary_cluster, ..
    } = &opts.role
    {
        // Istio's annotation: which primaries may lead this cluster (write its root-cert
        // ConfigMaps, patch its webhook's caBundle). `*`: whichever reads it.
        let leader = primary_cluster.as_deref().unwrap_or("*");
        ns["metadata"]["annotations"] = json!({"topology.istio.io/controlPlaneClusters": leader});
    }
    ns
}

/// The labels every object carries, so `kubectl get -l app.kubernetes.io/part-of=strait`
/// finds (and `kubectl delete` removes) exactly what was installed.
pub(crate) fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/part-of": "strait",
        "app.kubernetes.io/component": component,
    })
}

/// `metadata` of a namespaced object.
pub(crate) fn meta(name: &str, component: &str) -> Value {
    json!({"name": name, "namespace": NAMESPACE, "labels": labels(component)})
}

/// Adds `extra` to an object's map (labels, selectors).
pub(crate) fn merged(base: Value, extra: &[(&str, &str)]) -> Value {
    let mut m = match base {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in extra {
        m.insert((*k).to_string(), json!(v));
    }
    Value::Object(m)
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with `-`, `_`, `.` inside.
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS name: dot-separated labels of letters, digits and `-`, at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}
