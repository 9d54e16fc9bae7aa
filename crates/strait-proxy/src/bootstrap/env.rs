//! The Kubernetes-mode bootstrap: the same [`Bootstrap`] built from the pod's environment
//! (`strait proxy --bootstrap-env`, and `--kubernetes --gateway` for gateway Deployments).
//!
//! An injector cannot write a file into the pod it mutates, and neither the pod's name nor its
//! address exists yet when it does; so the pod spec carries them as variables instead: the
//! downward API gives who the pod is, the injector's config (or `strait install`, for its
//! gateways) gives cluster, trust domain, control plane and the paths of the two volumes. The
//! names are Istio's where Istio has one (`POD_NAME`, `INSTANCE_IP`, `ISTIO_META_CLUSTER_ID`,
//! `CA_ADDR`, ...), and they must equal `strait_kube::inject::BootstrapEnv`, which writes them;
//! a test in the `strait` crate renders both sides and parses one with the other.
//!
//! Every variable the proxy needs must be present and non-empty: a missing one is a broken
//! pod spec, and the error names the variable and where it should have come from, rather than
//! letting the proxy start with a guess that fails later as a TLS or token error.

use std::net::IpAddr;
use std::path::PathBuf;

use strait_config::ProxyRole;
use strait_net::Reach;

use super::{Bootstrap, ControlPlaneAddr, Ports};

/// The variables read, as written in the pod spec.
pub mod names {
    pub const POD_NAME: &str = "POD_NAME";
    pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
    pub const INSTANCE_IP: &str = "INSTANCE_IP";
    pub const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
    pub const CLUSTER_ID: &str = "ISTIO_META_CLUSTER_ID";
    pub const TRUST_DOMAIN: &str = "TRUST_DOMAIN";
    pub const CONTROL_PLANE: &str = "CA_ADDR";
    pub const ROOT_CERT: &str = "STRAIT_ROOT_CERT";
    pub const TOKEN_FILE: &str = "STRAIT_TOKEN_FILE";
    pub const ROLE: &str = "STRAIT_ROLE";
    /// Istio's interception mode: `REDIRECT` (the default: `strait init` installed the
    /// capture rules) or `NONE` (no capture; the application uses the sidecar as its HTTP
    /// proxy). Optional.
    pub const INTERCEPTION_MODE: &str = "ISTIO_META_INTERCEPTION_MODE";
}

/// Where a variable should have come from, for the error that says it is missing.
fn origin(name: &str) -> &'static str {
    match name {
        names::POD_NAME => "the downward API (fieldRef metadata.name)",
        names::POD_NAMESPACE => "the downward API (fieldRef metadata.namespace)",
        names::INSTANCE_IP => "the downward API (fieldRef status.podIP)",
        names::SERVICE_ACCOUNT => "the downward API (fieldRef spec.serviceAccountName)",
        names::CLUSTER_ID => "the injector's config (cluster_id)",
        names::TRUST_DOMAIN => "the injector's config (trust_domain)",
        names::CONTROL_PLANE => "the injector's config (discovery_address)",
        names::ROOT_CERT => {
            "the injector (a path in the istiod-ca-cert volume, ConfigMap istio-ca-root-cert)"
        }
        names::TOKEN_FILE => "the injector (a path in the istio-token projected volume)",
        names::ROLE => "the injector (sidecar or gateway)",
        _ => "the pod spec",
    }
}

/// A pod spec that does not give the proxy what it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "{name} is not set or empty: it comes from {}; the pod spec was not written by strait's injector or `strait install`, or was edited",
        origin(name)
    )]
    Missing { name: &'static str },
    #[error("{name}={value:?}: {problem} (it comes from {})", origin(name))]
    Invalid {
        name: &'static str,
        value: String,
        problem: String,
    },
}

/// Builds the bootstrap from variables looked up with `get` (`std::env::var` in the binary; a
/// map in tests). `role`: the role given on the command line (`--gateway`), which `STRAIT_ROLE`
/// may repeat but not contradict; `None`: `STRAIT_ROLE` decides.
pub fn from_env(
    get: impl Fn(&str) -> Option<String>,
    role: Option<ProxyRole>,
) -> Result<Bootstrap, EnvError> {
    let need = |name: &'static str| -> Result<String, EnvError> {
        match get(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(EnvError::Missing { name }),
        }
    };
    let invalid = |name: &'static str, value: &str, problem: &str| EnvError::Invalid {
        name,
        value: value.to_string(),
        problem: problem.to_string(),
    };
    let ip_text = need(names::INSTANCE_IP)?;
    let pod_ip: IpAddr = ip_text
        .parse()
        .map_err(|_| invalid(names::INSTANCE_IP, &ip_text, "not an IP address"))?;
    let cp_text = need(names::CONTROL_PLANE)?;
    let control_plane: ControlPlaneAddr =
        cp_text.parse().map_err(|e: super::addr::AddrError| {
            invalid(names::CONTROL_PLANE, &cp_text, &e.to_string())
        })?;
    let role = resolve_role(get(names::ROLE), role)?;
    let capture = match get(names::INTERCEPTION_MODE).as_deref().map(str::trim) {
        None | Some("") | Some("REDIRECT") => role == ProxyRole::Sidecar,
        Some("NONE") => false,
        Some(other) => {
            return Err(invalid(
                names::INTERCEPTION_MODE,
                other,
                "strait captures with REDIRECT or not at all (NONE); TPROXY is not supported",
            ));
        }
    };
    Ok(Bootstrap {
        pod: need(names::POD_NAME)?,
        namespace: need(names::POD_NAMESPACE)?,
        service_account: need(names::SERVICE_ACCOUNT)?,
        cluster: need(names::CLUSTER_ID)?,
        trust_domain: need(names::TRUST_DOMAIN)?,
        pod_ip,
        // The application shares the pod's network namespace and address.
        app_ip: pod_ip,
        // The host is the name the control plane's serving certificate carries: the API
        // server and proxies dial `istiod.istio-system.svc` and check exactly that name.
        control_plane_name: control_plane.host(),
        control_plane,
        root_cert: PathBuf::from(need(names::ROOT_CERT)?),
        token: String::new(),
        token_file: Some(PathBuf::from(need(names::TOKEN_FILE)?)),
        cert_ttl_seconds: 0,
        ports: Ports::default(),
        role,
        // The pod's network is the boundary; every peer that reaches it may connect.
        reach: Reach::default(),
        capture,
    })
}

fn resolve_role(env: Option<String>, flag: Option<ProxyRole>) -> Result<ProxyRole, EnvError> {
    let from_env = match env.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("sidecar") => Some(ProxyRole::Sidecar),
        Some("gateway") => Some(ProxyRole::Gateway),
        Some(other) => {
            return Err(EnvError::Invalid {
                name: names::ROLE,
                value: other.to_string(),
                problem: "neither sidecar nor gateway".into(),
            });
        }
    };
    match (from_env, flag) {
        (Some(e), Some(f)) if e != f => Err(EnvError::Invalid {
            name: names::ROLE,
            value: env.unwrap_or_default(),
            problem: "contradicts --gateway on the command line".into(),
        }),
        (_, Some(f)) => Ok(f),
        (Some(e), None) => Ok(e),
        (None, None) => Err(EnvError::Missing { name: names::ROLE }),
    }
}
