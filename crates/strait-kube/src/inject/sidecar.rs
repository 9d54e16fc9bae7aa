//! The containers and volumes injection adds: the proxy (`istio-proxy`, strait's proxy in
//! sidecar mode), the traffic-capture init container (`istio-init`, `strait init`), and the
//! two volumes the proxy proves itself with.
//!
//! # The proxy's bootstrap in Kubernetes mode
//!
//! Outside Kubernetes `strait proxy --bootstrap FILE` reads a JSON `Bootstrap` that `strait up`
//! writes per pod. An injector cannot write a file into a pod, and the pod's name and address
//! are not known when it is created, so the injected proxy runs `strait proxy --bootstrap-env`
//! and builds the same `Bootstrap` from its environment ([`BootstrapEnv`] lists the
//! variables): the downward API gives the pod's name, namespace, address and service account;
//! the injector's config gives cluster, network, trust domain and control plane. Two fields
//! differ from the file form: the control plane is a `host:port` (resolved by DNS, its host is
//! also the name its certificate must carry) instead of a socket address, and the bootstrap
//! credential is a file (a projected service-account token for audience `istio-ca`, which the
//! kubelet rotates) instead of an inline token.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, Probe, ProjectedVolumeSource, ResourceRequirements,
    SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::Config;

pub const PROXY: &str = strait_model::injection::PROXY_CONTAINER;
pub const INIT: &str = "istio-init";
/// The UID and GID the proxy runs as; traffic capture lets this user's connections through.
pub const PROXY_UID: i64 = 1337;
/// Volume names, as Istio names them (tools that look for them keep working).
pub const TOKEN_VOLUME: &str = "istio-token";
pub const ROOT_VOLUME: &str = "istiod-ca-cert";
const TOKEN_DIR: &str = "/var/run/secrets/tokens";
const ROOT_DIR: &str = "/var/run/secrets/istio";

/// The environment variables of the Kubernetes-mode bootstrap (`strait proxy --bootstrap-env`).
#[derive(Debug)]
pub struct BootstrapEnv;

impl BootstrapEnv {
    /// Downward API: the pod's name, namespace, address and service account.
    pub const POD_NAME: &'static str = "POD_NAME";
    pub const POD_NAMESPACE: &'static str = "POD_NAMESPACE";
    pub const INSTANCE_IP: &'static str = "INSTANCE_IP";
    pub const SERVICE_ACCOUNT: &'static str = "SERVICE_ACCOUNT";
    /// Istio's names for the cluster and network the proxy reports.
    pub const CLUSTER_ID: &'static str = "ISTIO_META_CLUSTER_ID";
    pub const NETWORK: &'static str = "ISTIO_META_NETWORK";
    pub const WORKLOAD_NAME: &'static str = "ISTIO_META_WORKLOAD_NAME";
    pub const TRUST_DOMAIN: &'static str = "TRUST_DOMAIN";
    /// The control plane, `host:port` (Istio's `CA_ADDR`: discovery and certificates share it).
    pub const CONTROL_PLANE: &'static str = "CA_ADDR";
    /// The mesh's trust bundle (PEM), from the `istio-ca-root-cert` ConfigMap.
    pub const ROOT_CERT: &'static str = "STRAIT_ROOT_CERT";
    /// The bootstrap credential: a projected service-account token, re-read at each request.
    pub const TOKEN_FILE: &'static str = "STRAIT_TOKEN_FILE";
    /// `sidecar` or `gateway`.
    pub const ROLE: &'static str = "STRAIT_ROLE";
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn value(name: &str, v: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(v.into()),
        ..EnvVar::default()
    }
}

/// The bootstrap environment of a proxy of workload `workload` in role `role`.
pub fn bootstrap_env(config: &Config, workload: &str, role: &str) -> Vec<EnvVar> {
    let mut env = vec![
        field(BootstrapEnv::POD_NAME, "metadata.name"),
        field(BootstrapEnv::POD_NAMESPACE, "metadata.namespace"),
        field(BootstrapEnv::INSTANCE_IP, "status.podIP"),
        field(BootstrapEnv::SERVICE_ACCOUNT, "spec.serviceAccountName"),
        value(BootstrapEnv::CLUSTER_ID, &config.cluster_id),
        value(BootstrapEnv::WORKLOAD_NAME, workload),
        value(BootstrapEnv::TRUST_DOMAIN, &config.trust_domain),
        value(BootstrapEnv::CONTROL_PLANE, &config.discovery_address),
        value(
            BootstrapEnv::ROOT_CERT,
            &format!("{ROOT_DIR}/{}", strait_ca::files::ROOT_CERT),
        ),
        value(
            BootstrapEnv::TOKEN_FILE,
            &format!("{TOKEN_DIR}/istio-token"),
        ),
        value(BootstrapEnv::ROLE, role),
    ];
    if !config.network.is_empty() {
        env.push(value(BootstrapEnv::NETWORK, &config.network));
    }
    env
}

/// The proxy's command line.
pub fn proxy_args() -> Vec<String> {
    vec!["proxy".into(), "--bootstrap-env".into()]
}

/// Istio's default proxy resources, and the pod annotations that override each.
const RESOURCES: [(&str, &str, &str, &str); 4] = [
    ("sidecar.istio.io/proxyCPU", "requests", "cpu", "100m"),
    (
        "sidecar.istio.io/proxyMemory",
        "requests",
        "memory",
        "128Mi",
    ),
    ("sidecar.istio.io/proxyCPULimit", "limits", "cpu", "2000m"),
    (
        "sidecar.istio.io/proxyMemoryLimit",
        "limits",
        "memory",
        "1024Mi",
    ),
];

/// Whether `q` reads as a Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1e3`): a wrong one
/// would make the API server reject the whole pod with a message about the patch.
fn is_quantity(q: &str) -> bool {
    let digits_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        !e.is_empty()
            && e.trim_start_matches(['+', '-'])
                .chars()
                .all(|c| c.is_ascii_digit())
    });
    number_ok && suffix_ok
}

/// The proxy's resources: Istio's defaults, overridden by the pod's annotations. An annotation
/// that is not a quantity is ignored with a warning.
pub fn resources(
    annotations: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for (annotation, kind, resource, default) in RESOURCES {
        let q = match annotations.get(annotation).map(|v| v.trim()) {
            Some(v) if is_quantity(v) => v.to_string(),
            Some(v) => {
                warnings.push(format!(
                    "strait injector: {annotation}={v:?} is not a quantity (like 100m or 128Mi); the proxy gets {default}"
                ));
                default.to_string()
            }
            None => default.to_string(),
        };
        let map = if kind == "requests" {
            &mut requests
        } else {
            &mut limits
        };
        map.insert(resource.to_string(), Quantity(q));
    }
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

fn health_probe(period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz/ready".into()),
            port: IntOrString::Int(15021),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// The proxy container. A startup probe polls readiness every second while the proxy starts
/// (then the readiness probe takes over, every 15 s), as Istio's sidecars do; as a native
/// sidecar (an init container with `restartPolicy: Always`) it also holds the next containers
/// until the proxy is ready.
pub fn proxy(
    config: &Config,
    workload: &str,
    resources: ResourceRequirements,
    native: bool,
) -> Container {
    let port = |n: i32, name: &str| ContainerPort {
        container_port: n,
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    Container {
        name: PROXY.into(),
        image: Some(config.image.clone()),
        args: Some(proxy_args()),
        env: Some(bootstrap_env(config, workload, "sidecar")),
        ports: Some(vec![
            port(15090, "http-envoy-prom"),
            port(15021, "status-port"),
        ]),
        readiness_probe: Some(health_probe(15, 4)),
        startup_probe: Some(health_probe(1, 600)),
        resources: Some(resources),
        restart_policy: native.then(|| "Always".into()),
        security_context: Some(SecurityContext {
            run_as_user: Some(PROXY_UID),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts()),
        ..Container::default()
    }
}

/// Where the proxy finds its credential and trust bundle ([`volumes`]).
pub fn mounts() -> Vec<VolumeMount> {
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    vec![mount(TOKEN_VOLUME, TOKEN_DIR), mount(ROOT_VOLUME, ROOT_DIR)]
}

/// The capture annotations and the `strait init` flag each becomes, value passed through.
const CAPTURE: [(&str, &str); 6] = [
    (
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "--include-outbound-ip-ranges",
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        "--exclude-outbound-ip-ranges",
    ),
    (
        "traffic.sidecar.istio.io/includeInboundPorts",
        "--include-inbound-ports",
    ),
    (
        "traffic.sidecar.istio.io/excludeInboundPorts",
        "--exclude-inbound-ports",
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "--exclude-outbound-ports",
    ),
    (
        "traffic.sidecar.istio.io/includeOutboundPorts",
        "--include-outbound-ports",
    ),
];

/// The `istio-init` container: `strait init` writes the pod's iptables rules, so it needs
/// NET_ADMIN and NET_RAW and runs as root, and exits before the application starts.
pub fn init(
    config: &Config,
    annotations: &BTreeMap<String, String>,
    resources: ResourceRequirements,
) -> Container {
    let mut args = vec!["init".to_string()];
    for (annotation, flag) in CAPTURE {
        if let Some(v) = annotations.get(annotation) {
            args.push(flag.into());
            args.push(v.clone());
        }
    }
    args.extend(["--proxy-uid".to_string(), PROXY_UID.to_string()]);
    Container {
        name: INIT.into(),
        image: Some(config.image.clone()),
        args: Some(args),
        resources: Some(resources),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            read_only_root_filesystem: Some(false),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The proxy's volumes: its bootstrap credential (a service-account token for audience
/// `istio-ca`, 12 h, rotated by the kubelet) and the mesh's trust bundle.
pub fn volumes() -> Vec<Volume> {
    vec![
        Volume {
            name: TOKEN_VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some("istio-ca".into()),
                        expiration_seconds: Some(43200),
                        path: "istio-token".into(),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                }]),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: ROOT_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "istio-ca-root-cert".into(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["100m", "1", "1.5", "128Mi", "2Gi", "1e3", "500u"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "abc", "1..2", "12 Mi", "-1", "Mi", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
