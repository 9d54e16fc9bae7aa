//! Which `apiVersion`/`kind` pairs strait reads, and what to say about the others.

use std::fmt;

use crate::suggest::did_you_mean;

/// Every kind strait types and analyzes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Node,
    Service,
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
    CronJob,
    Endpoints,
    EndpointSlice,
    Secret,
    ConfigMap,
    ServiceAccount,
    NetworkPolicy,
    Ingress,
    IngressClass,
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    WorkloadEntry,
    WorkloadGroup,
    Sidecar,
    EnvoyFilter,
    PeerAuthentication,
    AuthorizationPolicy,
    RequestAuthentication,
    Telemetry,
    IstioOperator,
    WasmPlugin,
    ProxyConfig,
    /// The Kubernetes Gateway API's Gateway (`gateway.networking.k8s.io`), named "Gateway".
    KubeGateway,
    GatewayClass,
    HTTPRoute,
    GRPCRoute,
    TLSRoute,
    TCPRoute,
    ReferenceGrant,
    BackendTLSPolicy,
    ListenerSet,
    CustomResourceDefinition,
}

struct KindInfo {
    kind: Kind,
    name: &'static str,
    group: &'static str,
    /// Versions the API server serves; the first is the one strait types it as.
    versions: &'static [&'static str],
    /// Versions Kubernetes has removed: still read, with a warning.
    removed: &'static [&'static str],
    namespaced: bool,
}

const NET_ISTIO: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const GATEWAY_API: &str = "gateway.networking.k8s.io";
const GW_V1: &[&str] = &["v1", "v1beta1", "v1alpha2"];
const GW_ALPHA: &[&str] = &["v1", "v1alpha2"];
const SEC_ISTIO: &[&str] = &["v1", "v1beta1"];

const KINDS: &[KindInfo] = &[
    k(Kind::Namespace, "Namespace", "", &["v1"], &[], false),
    k(Kind::Node, "Node", "", &["v1"], &[], false),
    k(Kind::Service, "Service", "", &["v1"], &[], true),
    k(Kind::Pod, "Pod", "", &["v1"], &[], true),
    k(
        Kind::Deployment,
        "Deployment",
        "apps",
        &["v1"],
        &["v1beta1", "v1beta2"],
        true,
    ),
    k(
        Kind::StatefulSet,
        "StatefulSet",
        "apps",
        &["v1"],
        &["v1beta1", "v1beta2"],
        true,
    ),
    k(
        Kind::DaemonSet,
        "DaemonSet",
        "apps",
        &["v1"],
        &["v1beta2"],
        true,
    ),
    k(
        Kind::ReplicaSet,
        "ReplicaSet",
        "apps",
        &["v1"],
        &["v1beta1", "v1beta2"],
        true,
    ),
    k(Kind::Job, "Job", "batch", &["v1"], &[], true),
    k(
        Kind::CronJob,
        "CronJob",
        "batch",
        &["v1"],
        &["v1beta1"],
        true,
    ),
    k(Kind::Endpoints, "Endpoints", "", &["v1"], &[], true),
    k(
        Kind::EndpointSlice,
        "EndpointSlice",
        "discovery.k8s.io",
        &["v1"],
        &["v1beta1"],
        true,
    ),
    k(Kind::Secret, "Secret", "", &["v1"], &[], true),
    k(Kind::ConfigMap, "ConfigMap", "", &["v1"], &[], true),
    k(
        Kind::ServiceAccount,
        "ServiceAccount",
        "",
        &["v1"],
        &[],
        true,
    ),
    k(
        Kind::NetworkPolicy,
        "NetworkPolicy",
        "networking.k8s.io",
        &["v1"],
        &[],
        true,
    ),
    k(
        Kind::Ingress,
        "Ingress",
        "networking.k8s.io",
        &["v1"],
        &["v1beta1"],
        true,
    ),
    k(
        Kind::IngressClass,
        "IngressClass",
        "networking.k8s.io",
        &["v1"],
        &["v1beta1"],
        false,
    ),
    k(
        Kind::MutatingWebhookConfiguration,
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io",
        &["v1"],
        &["v1beta1"],
        false,
    ),
    k(
        Kind::ValidatingWebhookConfiguration,
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io",
        &["v1"],
        &["v1beta1"],
        false,
    ),
    k(
        Kind::Gateway,
        "Gateway",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::VirtualService,
        "VirtualService",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::DestinationRule,
        "DestinationRule",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::ServiceEntry,
        "ServiceEntry",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::WorkloadEntry,
        "WorkloadEntry",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::WorkloadGroup,
        "WorkloadGroup",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::Sidecar,
        "Sidecar",
        "networking.istio.io",
        NET_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::EnvoyFilter,
        "EnvoyFilter",
        "networking.istio.io",
        &["v1alpha3"],
        &[],
        true,
    ),
    k(
        Kind::PeerAuthentication,
        "PeerAuthentication",
        "security.istio.io",
        SEC_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::AuthorizationPolicy,
        "AuthorizationPolicy",
        "security.istio.io",
        SEC_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::RequestAuthentication,
        "RequestAuthentication",
        "security.istio.io",
        SEC_ISTIO,
        &[],
        true,
    ),
    k(
        Kind::Telemetry,
        "Telemetry",
        "telemetry.istio.io",
        &["v1", "v1alpha1"],
        &[],
        true,
    ),
    k(
        Kind::IstioOperator,
        "IstioOperator",
        "install.istio.io",
        &["v1alpha1"],
        &[],
        true,
    ),
    k(
        Kind::WasmPlugin,
        "WasmPlugin",
        "extensions.istio.io",
        &["v1alpha1"],
        &[],
        true,
    ),
    k(
        Kind::ProxyConfig,
        "ProxyConfig",
        "networking.istio.io",
        &["v1beta1"],
        &[],
        true,
    ),
    // The Gateway API, at every version Istio reads.
    k(Kind::KubeGateway, "Gateway", GATEWAY_API, GW_V1, &[], true),
    k(
        Kind::GatewayClass,
        "GatewayClass",
        GATEWAY_API,
        GW_V1,
        &[],
        false,
    ),
    k(Kind::HTTPRoute, "HTTPRoute", GATEWAY_API, GW_V1, &[], true),
    k(
        Kind::GRPCRoute,
        "GRPCRoute",
        GATEWAY_API,
        GW_ALPHA,
        &[],
        true,
    ),
    k(Kind::TLSRoute, "TLSRoute", GATEWAY_API, GW_ALPHA, &[], true),
    k(Kind::TCPRoute, "TCPRoute", GATEWAY_API, GW_ALPHA, &[], true),
    k(
        Kind::ReferenceGrant,
        "ReferenceGrant",
        GATEWAY_API,
        &["v1beta1", "v1alpha2"],
        &[],
        true,
    ),
    k(
        Kind::BackendTLSPolicy,
        "BackendTLSPolicy",
        GATEWAY_API,
        &["v1", "v1alpha3"],
        &[],
        true,
    ),
    k(
        Kind::ListenerSet,
        "ListenerSet",
        GATEWAY_API,
        &["v1"],
        &[],
        true,
    ),
    k(
        Kind::CustomResourceDefinition,
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        &["v1"],
        &["v1beta1"],
        false,
    ),
];

const fn k(
    kind: Kind,
    name: &'static str,
    group: &'static str,
    versions: &'static [&'static str],
    removed: &'static [&'static str],
    namespaced: bool,
) -> KindInfo {
    KindInfo {
        kind,
        name,
        group,
        versions,
        removed,
        namespaced,
    }
}

/// Real kinds of the groups above that strait has no use for: read past silently.
const OTHER_KNOWN: &[(&str, &str)] = &[
    ("", "Binding"),
    ("", "ComponentStatus"),
    ("", "Event"),
    ("", "LimitRange"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("apps", "ControllerRevision"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    (GATEWAY_API, "UDPRoute"),
    (GATEWAY_API, "BackendLBPolicy"),
];

impl Kind {
    fn info(self) -> &'static KindInfo {
        KINDS.iter().find(|i| i.kind == self).unwrap_or(&KINDS[0])
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn group(self) -> &'static str {
        self.info().group
    }

    pub fn is_namespaced(self) -> bool {
        self.info().namespaced
    }

    pub fn is_istio(self) -> bool {
        self.group().ends_with("istio.io")
    }

    /// The apiVersion the typed representation corresponds to.
    pub fn canonical_api_version(self) -> String {
        let i = self.info();
        if i.group.is_empty() {
            i.versions[0].to_string()
        } else {
            format!("{}/{}", i.group, i.versions[0])
        }
    }

    pub fn all() -> impl Iterator<Item = Kind> {
        KINDS.iter().map(|i| i.kind)
    }

    /// Parses a kind name (as written in `--suppress`, say).
    pub fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|i| i.name == name).map(|i| i.kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict on an `apiVersion`/`kind` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Read as this kind.
    Known(Kind),
    /// Read, but Kubernetes no longer serves this version.
    Removed { kind: Kind, use_instead: String },
    /// The group is one strait reads but it has no such kind (a typo, most likely).
    UnknownKind { suggestion: Option<&'static str> },
    /// The kind exists but not at this version.
    UnservedVersion { kind: Kind, served: String },
    /// A real kind strait does not read, or a group strait does not know (CRDs of other
    /// projects): skipped.
    NotRead,
}

/// Classifies an `apiVersion`/`kind` pair.
pub fn lookup(api_version: &str, kind: &str) -> Lookup {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    // `extensions/v1beta1` once served Deployments, DaemonSets and NetworkPolicies.
    let group = if group == "extensions" {
        match kind {
            "Deployment" | "DaemonSet" | "ReplicaSet" => "apps",
            "NetworkPolicy" => "networking.k8s.io",
            _ => group,
        }
    } else {
        group
    };
    if let Some(info) = KINDS.iter().find(|i| i.group == group && i.name == kind) {
        if info.versions.contains(&version) {
            return Lookup::Known(info.kind);
        }
        if info.removed.contains(&version) || api_version.starts_with("extensions/") {
            return Lookup::Removed {
                kind: info.kind,
                use_instead: info.kind.canonical_api_version(),
            };
        }
        let served = info
            .versions
            .iter()
            .map(|v| {
                if group.is_empty() {
                    v.to_string()
                } else {
                    format!("{group}/{v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Lookup::UnservedVersion {
            kind: info.kind,
            served,
        };
    }
    if OTHER_KNOWN.iter().any(|(g, k)| *g == group && *k == kind) {
        return Lookup::NotRead;
    }
    let group_known = KINDS.iter().any(|i| i.group == group);
    if group_known {
        let mut names: Vec<&'static str> = KINDS
            .iter()
            .filter(|i| i.group == group)
            .map(|i| i.name)
            .collect();
        names.extend(
            OTHER_KNOWN
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, k)| *k),
        );
        return Lookup::UnknownKind {
            suggestion: did_you_mean(kind, &names),
        };
    }
    Lookup::NotRead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_versions() {
        assert_eq!(
            lookup("networking.istio.io/v1alpha3", "VirtualService"),
            Lookup::Known(Kind::VirtualService)
        );
        assert_eq!(
            lookup("networking.istio.io/v1", "Gateway"),
            Lookup::Known(Kind::Gateway)
        );
        assert_eq!(
            lookup("security.istio.io/v1beta1", "PeerAuthentication"),
            Lookup::Known(Kind::PeerAuthentication)
        );
        assert_eq!(
            lookup("telemetry.istio.io/v1alpha1", "Telemetry"),
            Lookup::Known(Kind::Telemetry)
        );
        assert!(matches!(
            lookup("networking.istio.io/v1", "EnvoyFilter"),
            Lookup::UnservedVersion { .. }
        ));
    }

    #[test]
    fn typos_and_others() {
        assert_eq!(
            lookup("networking.istio.io/v1", "VirtualServce"),
            Lookup::UnknownKind {
                suggestion: Some("VirtualService")
            }
        );
        assert_eq!(
            lookup("v1", "Servce"),
            Lookup::UnknownKind {
                suggestion: Some("Service")
            }
        );
        assert_eq!(lookup("cert-manager.io/v1", "Certificate"), Lookup::NotRead);
        assert_eq!(lookup("v1", "PersistentVolumeClaim"), Lookup::NotRead);
        assert!(matches!(
            lookup("extensions/v1beta1", "Deployment"),
            Lookup::Removed {
                kind: Kind::Deployment,
                ..
            }
        ));
    }
}
