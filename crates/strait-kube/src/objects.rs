//! What strait reads from an API server, and how objects read there become the same
//! [`Input`] a mesh directory gives: every object is written out as a YAML document and read
//! by the one loader, so typing, validation, unknown-field reports and positions are those of
//! local mode. A finding on an object read from a cluster points into that document, named
//! `kube://<cluster>/<namespace>/<Kind>/<name>` (`kube://<cluster>/<Kind>/<name>` for
//! cluster-scoped kinds): `kubectl get -o yaml` shows the same fields in the same order.

use std::sync::Arc;

use kube::discovery::ApiResource;
use serde_json::Value;
use strait_api::layout::{ClusterDecl, ClusterInput, Input, MeshFile, Role};
use strait_api::{Kind, Loader, ParseCache};

/// The API a kind is read through: the version strait types it as.
pub fn api_resource(kind: Kind) -> ApiResource {
    let gvk = kube::api::GroupVersionKind::gvk(
        kind.group(),
        kind.canonical_api_version()
            .rsplit('/')
            .next()
            .unwrap_or("v1"),
        kind.name(),
    );
    ApiResource::from_gvk(&gvk)
}

/// `&[Kind]` of the kinds named, followed by the mesh's configuration: every Istio kind strait
/// reads and the Gateway API (the same in every list that reads configuration).
macro_rules! with_mesh_config {
    ($($kind:ident),* $(,)?) => {
        &[
            $(Kind::$kind,)*
            Kind::Gateway,
            Kind::VirtualService,
            Kind::DestinationRule,
            Kind::ServiceEntry,
            Kind::WorkloadEntry,
            Kind::WorkloadGroup,
            Kind::Sidecar,
            Kind::EnvoyFilter,
            Kind::PeerAuthentication,
            Kind::AuthorizationPolicy,
            Kind::RequestAuthentication,
            Kind::Telemetry,
            Kind::WasmPlugin,
            Kind::ProxyConfig,
            Kind::KubeGateway,
            Kind::GatewayClass,
            Kind::HTTPRoute,
            Kind::GRPCRoute,
            Kind::TLSRoute,
            Kind::TCPRoute,
            Kind::ReferenceGrant,
        ]
    };
}

/// Every kind `strait analyze` reads from a cluster: the workloads with their controllers and
/// Services, Istio's configuration, the Gateway API, and what the analyzers look at
/// (webhooks, NetworkPolicies, Ingresses).
pub const OWN: &[Kind] = with_mesh_config!(
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
    EndpointSlice,
    Secret,
    ConfigMap,
    ServiceAccount,
    NetworkPolicy,
    Ingress,
    IngressClass,
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
);

/// What a control plane reads from its own cluster, as istiod does: where workloads are and
/// who they run as, the Istio and Gateway API configuration, Ingresses of class `istio`, the
/// mesh's ConfigMaps and the Secrets of its own namespace (`cacerts`, remote secrets, gateway
/// credentials; its RBAC grants no others). Not the workload controllers (Deployments and
/// the like): running pods say all a proxy's configuration needs, and `strait analyze`, which
/// reads [`OWN`] with the operator's credentials, looks at templates.
pub const CONTROL_PLANE: &[Kind] = with_mesh_config!(
    Namespace,
    Node,
    Service,
    Pod,
    EndpointSlice,
    ServiceAccount,
    Secret,
    ConfigMap,
    Ingress,
    IngressClass,
);

/// What a control plane reads from another cluster through a remote secret, as istiod does:
/// where its workloads are (Services, EndpointSlices, Pods, Nodes for locality), its
/// namespaces (network labels, injection), and its service accounts. Istio configuration
/// comes from the config cluster only.
pub const REMOTE: &[Kind] = &[
    Kind::Namespace,
    Kind::Node,
    Kind::Service,
    Kind::Pod,
    Kind::EndpointSlice,
    Kind::ServiceAccount,
];

/// Istio's namespace label for the network of a cluster's workloads.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
/// Istio's annotation on a remote cluster's Istio namespace: the clusters whose control plane
/// serves it (comma-separated).
pub const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";

/// A cluster's place in the mesh, as its own objects say it and istiod reads it: its network
/// is the `topology.istio.io/network` label of its Istio namespace (an explicit `network`
/// wins, as the control plane's `NETWORK` setting does); it is a remote of the first cluster
/// that namespace's `topology.istio.io/controlPlaneClusters` annotation names, other than
/// itself, and a primary otherwise.
pub fn declare(name: &str, istio_namespace: Option<&Value>, network: Option<&str>) -> ClusterDecl {
    let meta = istio_namespace.map(|ns| &ns["metadata"]);
    let label = meta.and_then(|m| m["labels"][NETWORK_LABEL].as_str());
    let primary = meta
        .and_then(|m| m["annotations"][CONTROL_PLANE_CLUSTERS].as_str())
        .and_then(|v| {
            v.split(',')
                .map(str::trim)
                .find(|c| !c.is_empty() && *c != "*" && *c != name)
        })
        .map(str::to_string);
    ClusterDecl {
        name: name.to_string(),
        network: network
            .or(label)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        role: if primary.is_some() {
            Role::Remote
        } else {
            Role::Primary
        },
        primary,
        ..ClusterDecl::default()
    }
}

/// One object written out for the loader.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// `kube://<cluster>/<namespace>/<Kind>/<name>`.
    pub name: String,
    pub text: Arc<str>,
}

/// Writes an object as the loader reads it. Server bookkeeping that no check reads and that
/// can be large (`managedFields`, the last-applied annotation) is left out; everything else,
/// `status` included (a Service's load-balancer address is how a gateway is reached), is kept.
/// `kind` and `apiVersion` are filled in when a list response left them out.
pub fn render(cluster: &str, kind: Kind, object: &Value) -> Rendered {
    let mut o = object.clone();
    if let Some(m) = o.as_object_mut() {
        m.entry("apiVersion")
            .or_insert_with(|| Value::String(kind.canonical_api_version()));
        m.entry("kind")
            .or_insert_with(|| Value::String(kind.name().to_string()));
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
    let meta = &o["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let name = match meta["namespace"].as_str() {
        Some(ns) if kind.is_namespaced() => format!("kube://{cluster}/{ns}/{kind}/{name}"),
        _ => format!("kube://{cluster}/{kind}/{name}"),
    };
    Rendered {
        name,
        text: crate::install::yaml::to_document(&o).into(),
    }
}

/// One cluster as read from its API server.
#[derive(Debug)]
pub struct ClusterObjects {
    /// Its name, network, role and locality as the mesh knows them.
    pub decl: ClusterDecl,
    pub objects: Vec<Rendered>,
}

/// The mesh as a directory would give it: `mesh` in place of `mesh.yaml`, one cluster per
/// entry. With a cache, only documents whose text changed since an earlier call are parsed
/// again.
pub fn to_input(
    mesh: MeshFile,
    clusters: Vec<ClusterObjects>,
    cache: Option<&Arc<ParseCache>>,
) -> Input {
    let mut loader = match cache {
        Some(c) => Loader::with_cache(c.clone()),
        None => Loader::new(),
    };
    let mut ranges = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let start = loader.objects().len();
        for r in &c.objects {
            loader.add_text(r.name.as_str(), &r.text);
        }
        ranges.push(start..loader.objects().len());
    }
    let mut loaded = loader.finish();
    let mut all: Vec<Option<strait_api::Object>> = std::mem::take(&mut loaded.objects)
        .into_iter()
        .map(Some)
        .collect();
    let clusters = clusters
        .into_iter()
        .zip(ranges)
        .map(|(c, range)| ClusterInput {
            name: c.decl.name.clone(),
            decl: Some(c.decl),
            decl_pos: None,
            dir: None,
            objects: all[range].iter_mut().filter_map(Option::take).collect(),
        })
        .collect();
    Input {
        loaded,
        mesh: Some(mesh),
        mesh_tree: None,
        clusters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cluster_declares_itself_through_its_istio_namespace() {
        let ns = json!({"metadata": {
            "name": "istio-system",
            "labels": {"topology.istio.io/network": "network2"},
            "annotations": {"topology.istio.io/controlPlaneClusters": "cluster1"},
        }});
        let d = declare("cluster2", Some(&ns), None);
        assert_eq!(d.network.as_deref(), Some("network2"));
        assert_eq!(d.role, Role::Remote);
        assert_eq!(d.primary.as_deref(), Some("cluster1"));
        let d = declare(
            "cluster1",
            Some(&json!({"metadata": {"name": "istio-system"}})),
            Some("network1"),
        );
        assert_eq!(
            (d.role, d.network.as_deref()),
            (Role::Primary, Some("network1"))
        );
        assert_eq!(declare("c", None, None).network, None);
    }

    #[test]
    fn plural_names_are_the_api_servers() {
        assert_eq!(api_resource(Kind::Service).plural, "services");
        assert_eq!(api_resource(Kind::Ingress).plural, "ingresses");
        assert_eq!(api_resource(Kind::NetworkPolicy).plural, "networkpolicies");
        assert_eq!(api_resource(Kind::ServiceEntry).plural, "serviceentries");
        assert_eq!(
            api_resource(Kind::KubeGateway).group,
            "gateway.networking.k8s.io"
        );
        assert_eq!(
            api_resource(Kind::EndpointSlice).api_version,
            "discovery.k8s.io/v1"
        );
        assert_eq!(
            api_resource(Kind::Gateway).api_version,
            "networking.istio.io/v1"
        );
    }

    #[test]
    fn objects_read_from_two_clusters_load_as_a_mesh() {
        let svc = json!({
            "metadata": {
                "name": "reviews", "namespace": "bookinfo",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            },
            "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "reviews"}},
        });
        let vs = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "bookinfo"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
        });
        let decl = |name: &str, role| ClusterDecl {
            name: name.into(),
            network: Some(format!("net-{name}")),
            role,
            ..ClusterDecl::default()
        };
        let input = to_input(
            MeshFile {
                clusters: vec![decl("east", Role::Primary), decl("west", Role::Primary)],
                ..MeshFile::default()
            },
            vec![
                ClusterObjects {
                    decl: decl("east", Role::Primary),
                    objects: vec![
                        render("east", Kind::Service, &svc),
                        render("east", Kind::VirtualService, &vs),
                    ],
                },
                ClusterObjects {
                    decl: decl("west", Role::Primary),
                    objects: vec![render("west", Kind::Service, &svc)],
                },
            ],
            None,
        );
        assert!(
            input.loaded.diagnostics.is_empty(),
            "{:?}",
            input.loaded.diagnostics
        );
        assert_eq!(input.clusters.len(), 2);
        assert_eq!(input.clusters[0].objects.len(), 2);
        assert_eq!(input.clusters[1].objects.len(), 1);
        let s = &input.clusters[0].objects[0];
        assert_eq!(s.display_name(), "Service bookinfo/reviews");
        assert!(
            s.annotation("kubectl.kubernetes.io/last-applied-configuration")
                .is_none()
        );
        let name = input.loaded.sources.name(s.source.file);
        assert_eq!(
            name.to_string_lossy(),
            "kube://east/bookinfo/Service/reviews"
        );
        let text = &input.loaded.sources.get(s.source.file).expect("file").text;
        assert!(!text.contains("managedFields"), "{text}");
    }
}
